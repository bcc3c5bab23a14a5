//! The cohort plots (plotters): one figure per patient, six panels — assistance, patient effort share
//! (estimate and true), success rate, SPARC and Emken stiffness of the assisted blocks across sessions, one line per controller (mean across seeds,
//! with the 95 % interval as thin lines). Written as SVG (text left to the viewer) and PNG (text rendered with
//! a TrueType font found at run time: `PLEXO_FONT`, else common system paths; without one no plot is drawn
//! and the report says so).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::tables::{Cell, MEASURES, mean_ci};
use crate::AppError;

/// The measures plotted (keys of [`MEASURES`]).
pub const PLOTTED: [&str; 6] =
    ["assistance_nm", "effort_share_est", "effort_share_true", "success_rate", "sparc", "stiffness_nm_rad"];

const SIZE: (u32, u32) = (1500, 900);
const FONT_PATHS: [&str; 5] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers a TrueType font for plotters' `sans-serif` once; returns where it came from (`Err`: why none).
pub fn font() -> Result<&'static str, String> {
    static FONT: OnceLock<Result<String, String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<String> = match std::env::var("PLEXO_FONT") {
            Ok(p) => vec![p],
            Err(_) => FONT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        };
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                // Registered once per process; plotters keeps a 'static reference.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                    .map(|()| path.clone())
                    .map_err(|_| format!("{path} is not a TrueType/OpenType font"));
            }
        }
        Err(format!("no TrueType font found (tried {}; set PLEXO_FONT to a .ttf file)", candidates.join(", ")))
    })
    .as_ref()
    .map(String::as_str)
    .map_err(Clone::clone)
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> AppError {
    AppError::Io { path: path.display().to_string(), source: std::io::Error::other(e.to_string()) }
}

/// Draws the figure of `patient` into `area`.
fn draw<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    patient: &str,
    controllers: &[String],
    cells: &[Cell],
) -> Result<(), String> {
    area.fill(&WHITE).map_err(|e| e.to_string())?;
    let area = area
        .titled(&format!("patient {patient}: assisted blocks across sessions"), ("sans-serif", 28))
        .map_err(|e| e.to_string())?;
    let sessions = cells.iter().map(|c| c.session).max().unwrap_or(1);
    for (panel, key) in area.split_evenly((2, 3)).iter().zip(PLOTTED) {
        let m = MEASURES.iter().position(|(k, _)| *k == key).expect("plotted measures are measures");
        let series: Vec<(usize, Vec<Point>)> = controllers
            .iter()
            .enumerate()
            .map(|(i, ctrl)| {
                let points = cells
                    .iter()
                    .filter(|c| &c.controller == ctrl && c.patient == patient)
                    .filter_map(|c| mean_ci(&c.values[m]).map(|(mean, ci)| (f64::from(c.session), mean, ci)))
                    .collect();
                (i, points)
            })
            .collect();
        let all = series.iter().flat_map(|(_, p)| {
            p.iter().flat_map(|(_, m, ci)| [Some(*m), ci.map(|c| c.0), ci.map(|c| c.1)].into_iter().flatten())
        });
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v), h.max(v)));
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.1).max(0.02 * lo.abs().max(hi.abs())).max(1e-3);
        let mut chart = ChartBuilder::on(panel)
            .caption(MEASURES[m].1, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5..f64::from(sessions) + 0.5, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("session")
            .x_labels(sessions.min(12) as usize)
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, points) in &series {
            let color = Palette99::pick(*i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().map(|(x, y, _)| (*x, *y)), color.stroke_width(3)))
                .map_err(|e| e.to_string())?
                .label(controllers[*i].as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
            for bound in [0, 1] {
                let line = points.iter().filter_map(|(x, _, ci)| ci.map(|c| (*x, if bound == 0 { c.0 } else { c.1 })));
                chart.draw_series(LineSeries::new(line, color.mix(0.4))).map_err(|e| e.to_string())?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    area.present().map_err(|e| e.to_string())
}

/// A plotted point: session, mean, 95 % interval.
type Point = (f64, f64, Option<(f64, f64)>);

/// File stem of a patient's figure.
pub fn stem(patient: &str) -> String {
    let safe: String =
        patient.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    format!("plots/{safe}")
}

/// Writes an RGB image of `size` (8 bits per channel) as a PNG file, atomically. Not real-time safe.
pub fn write_png(path: &Path, rgb: &[u8], size: (u32, u32)) -> Result<(), AppError> {
    crate::files::write_atomically_with(path, |f| {
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(f), size.0, size.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().map_err(std::io::Error::other)?;
        writer.write_image_data(rgb).map_err(std::io::Error::other)?;
        writer.finish().map_err(std::io::Error::other)
    })
}

/// Writes `plots/<patient>.svg` and `.png` for every patient (atomically). Returns the written files relative to
/// `dir`, or why there are no plots (no font). Not real-time safe.
pub fn write_plots(
    dir: &Path,
    controllers: &[String],
    patients: &[String],
    cells: &[Cell],
) -> Result<Result<Vec<PathBuf>, String>, AppError> {
    if let Err(why) = font() {
        return Ok(Err(why));
    }
    let mut written = Vec::new();
    for patient in patients {
        let stem = stem(patient);
        let svg_rel = PathBuf::from(format!("{stem}.svg"));
        let svg_path = dir.join(&svg_rel);
        let mut svg = String::new();
        {
            let area = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(&area, patient, controllers, cells).map_err(|e| plot_error(&svg_path, e))?;
        }
        crate::files::write_atomically(&svg_path, svg.as_bytes())?;
        written.push(svg_rel);

        let png_rel = PathBuf::from(format!("{stem}.png"));
        let png_path = dir.join(&png_rel);
        let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
        {
            let area = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
            draw(&area, patient, controllers, cells).map_err(|e| plot_error(&png_path, e))?;
        }
        write_png(&png_path, &rgb, SIZE)?;
        written.push(png_rel);
    }
    Ok(Ok(written))
}
