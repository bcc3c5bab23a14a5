//! The tuning plots (plotters, PNG and SVG, the study plots' font): the objective against each parameter (one
//! panel per parameter; feasible candidates blue, infeasible red, the start black, the best green; log ranges on
//! a log10 axis, choices by index) and the best feasible objective so far against the evaluation index.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::eval::{Evaluation, Score};
use super::file::{Range, Scale, Tuning};
use crate::AppError;
use crate::study::plots::{font, write_png};

const SIZE: (u32, u32) = (1500, 900);

/// One evaluation as plotted.
pub struct Point<'a> {
    /// The evaluation.
    pub eval: &'a Evaluation,
    /// Its score.
    pub score: Score,
}

fn axis_value(tuning: &Tuning, i: usize, e: &Evaluation) -> f64 {
    let p = &tuning.parameters[i];
    let x = e.values.get(i).map_or(f64::NAN, |v| v.axis(p));
    match p.range {
        Range::Numeric { scale: Scale::Log, .. } => x.log10(),
        _ => x,
    }
}

fn axis_label(tuning: &Tuning, i: usize) -> String {
    let p = &tuning.parameters[i];
    match &p.range {
        Range::Numeric { scale: Scale::Log, .. } => format!("log10 {}", p.key),
        Range::Choices(c) => {
            format!(
                "{} ({})",
                p.key,
                c.iter().enumerate().map(|(k, c)| format!("{k}={c}")).collect::<Vec<_>>().join(", ")
            )
        }
        _ => p.key.clone(),
    }
}

fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        values.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-3 * lo.abs().max(hi.abs())).max(1e-6);
    (lo - pad, hi + pad)
}

fn draw_objective<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    tuning: &Tuning,
    points: &[Point],
    best: Option<usize>,
) -> Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let area = area
        .titled(&format!("{}: objective against each parameter", tuning.name), ("sans-serif", 28))
        .map_err(|e| e.to_string())?;
    let k = tuning.parameters.len();
    let cols = (k as f64).sqrt().ceil() as usize;
    let rows = k.div_ceil(cols);
    let scored: Vec<&Point> = points.iter().filter(|p| p.score.objective.is_some()).collect();
    let (ylo, yhi) = bounds(scored.iter().filter_map(|p| p.score.objective));
    for (i, panel) in area.split_evenly((rows, cols)).iter().enumerate().take(k) {
        let (xlo, xhi) = bounds(scored.iter().map(|p| axis_value(tuning, i, p.eval)));
        let mut chart = ChartBuilder::on(panel)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(xlo..xhi, ylo..yhi)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc(axis_label(tuning, i)).y_desc("objective").draw().map_err(|e| e.to_string())?;
        for p in &scored {
            let x = axis_value(tuning, i, p.eval);
            let y = p.score.objective.unwrap_or(f64::NAN);
            let (color, size) = if Some(p.eval.index) == best {
                (GREEN.mix(1.0), 8)
            } else if p.eval.index == 0 {
                (BLACK.mix(1.0), 7)
            } else if p.score.feasible() {
                (BLUE.mix(0.6), 4)
            } else {
                (RED.mix(0.5), 4)
            };
            chart.draw_series(std::iter::once(Circle::new((x, y), size, color.filled()))).map_err(|e| e.to_string())?;
        }
    }
    area.present().map_err(|e| e.to_string())
}

fn draw_best_so_far<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    tuning: &Tuning,
    points: &[Point],
) -> Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let scored: Vec<&Point> = points.iter().filter(|p| p.score.objective.is_some()).collect();
    let (ylo, yhi) = bounds(scored.iter().filter_map(|p| p.score.objective));
    let n = points.iter().map(|p| p.eval.index).max().unwrap_or(0) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(format!("{}: best feasible objective so far", tuning.name), ("sans-serif", 28))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(-0.5..n + 0.5, ylo..yhi)
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("evaluation").y_desc("objective").draw().map_err(|e| e.to_string())?;
    chart
        .draw_series(scored.iter().map(|p| {
            let color = if p.score.feasible() { BLUE.mix(0.5) } else { RED.mix(0.4) };
            Circle::new((p.eval.index as f64, p.score.objective.unwrap_or(f64::NAN)), 4, color.filled())
        }))
        .map_err(|e| e.to_string())?;
    let mut best = f64::INFINITY;
    let mut line = Vec::new();
    for p in points {
        let x = p.eval.index as f64;
        // A step: the best so far holds until an evaluation improves on it.
        if best.is_finite() {
            line.push((x, best));
        }
        if p.score.feasible() {
            best = best.min(p.score.objective.unwrap_or(f64::INFINITY));
        }
        if best.is_finite() {
            line.push((x, best));
        }
    }
    chart.draw_series(LineSeries::new(line, GREEN.stroke_width(3))).map_err(|e| e.to_string())?;
    area.present().map_err(|e| e.to_string())
}

/// Writes `plots/objective.{svg,png}` and `plots/best-so-far.{svg,png}`; `points` in index order. Returns the
/// files written (relative to `dir`) or why none (no font). Not real-time safe.
pub fn write_plots(
    dir: &Path,
    tuning: &Tuning,
    points: &[Point],
    best: Option<usize>,
) -> Result<Result<Vec<PathBuf>, String>, AppError> {
    if let Err(why) = font() {
        return Ok(Err(why));
    }
    let mut written = Vec::new();
    for stem in ["plots/objective", "plots/best-so-far"] {
        let draw_svg = |svg: &mut String| {
            let area = SVGBackend::with_string(svg, SIZE).into_drawing_area();
            if stem.ends_with("objective") {
                draw_objective(&area, tuning, points, best)
            } else {
                draw_best_so_far(&area, tuning, points)
            }
        };
        let svg_rel = PathBuf::from(format!("{stem}.svg"));
        let mut svg = String::new();
        draw_svg(&mut svg).map_err(|e| plot_error(&dir.join(&svg_rel), e))?;
        crate::files::write_atomically(&dir.join(&svg_rel), svg.as_bytes())?;
        written.push(svg_rel);
        let png_rel = PathBuf::from(format!("{stem}.png"));
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let area = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            let drawn = if stem.ends_with("objective") {
                draw_objective(&area, tuning, points, best)
            } else {
                draw_best_so_far(&area, tuning, points)
            };
            drawn.map_err(|e| plot_error(&dir.join(&png_rel), e))?;
        }
        write_png(&dir.join(&png_rel), &rgb, SIZE)?;
        written.push(png_rel);
    }
    Ok(Ok(written))
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) }
}
