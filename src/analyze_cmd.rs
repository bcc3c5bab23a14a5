//! `plexo analyze FILE.csv`: the movement measures of a recording made elsewhere (a motion-capture system,
//! another robot), with the same definitions as Plexo's own trials ([`crate::reach_metrics`]).
//!
//! The file: CSV, one header line, `#` comment lines and blank lines ignored, comma-separated numbers.
//! - column `t`: time [s], strictly increasing (need not be uniform: the samples are linearly resampled at the
//!   file's mean rate);
//! - either columns `x`, `y`, `z`: the hand position [m] — one reach from the first sample (start, the go cue) to
//!   the last (target); the reach measures of a trial (reaction and movement time, peak speed, speed peaks,
//!   path-length ratio, perpendicular deviation, initial direction error, SPARC, LDLJ, normalised jerk);
//! - or any other columns: joint angles [rad], one per column named after the joint — per joint the range of
//!   motion [rad] and the peak speed [rad/s], and the SPARC and speed peaks of the joint-space speed ‖q̇‖.
//!
//! As for Plexo's trials, the hand path is low-passed at 10 Hz (zero-phase Butterworth) before it is
//! differentiated; `--no-filter` analyses the samples as given. A malformed file is an error naming its line.

use std::path::PathBuf;

use clap::Args;
use nalgebra::Vector3;
use serde::Serialize;

use crate::AppError;
use crate::reach_metrics::{ReachAnalyzer, ReachMetrics, low_pass_zero_phase};
use crate::smoothness::{Sparc, count_peaks};
use crate::summary::TRIAL_PATH_CUTOFF;

/// Options of `plexo analyze`.
#[derive(Args, Debug, Clone)]
pub struct AnalyzeArgs {
    /// The recording (.csv): columns t [s] and x,y,z [m], or t and joint angles [rad].
    pub file: PathBuf,
    /// Machine-readable JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Do not low-pass the signals at 10 Hz before differentiating them.
    #[arg(long)]
    pub no_filter: bool,
}

/// A parsed recording: column names (without `t`), times [s] and rows.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// The signal columns, in file order.
    pub columns: Vec<String>,
    /// Sample times [s].
    pub t: Vec<f64>,
    /// One row of values per sample, in `columns` order.
    pub rows: Vec<Vec<f64>>,
}

/// What `plexo analyze` finds.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Analysis {
    /// A hand path.
    Hand {
        /// Samples.
        samples: usize,
        /// Rate after resampling [Hz].
        rate_hz: f64,
        /// The reach measures.
        metrics: ReachMetrics,
    },
    /// Joint angles.
    Joints {
        /// Samples.
        samples: usize,
        /// Rate after resampling [Hz].
        rate_hz: f64,
        /// Per joint: name, range of motion [rad], peak speed [rad/s].
        joints: Vec<(String, f64, f64)>,
        /// SPARC of the joint-space speed.
        sparc: Option<f64>,
        /// Peaks of the joint-space speed.
        speed_peaks: u32,
    },
}

fn bad(file: &str, line: usize, reason: String) -> AppError {
    AppError::Recording { file: file.to_owned(), line, reason }
}

/// Parses the CSV text of a recording; `file` names it in errors (with the 1-based line).
pub fn parse(text: &str, file: &str) -> Result<Recording, AppError> {
    let mut lines =
        text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
    let (header_line, header) =
        lines.next().ok_or_else(|| bad(file, 0, "empty: expected a header line (t,x,y,z or t,<joint>,...)".into()))?;
    let names: Vec<String> = header.split(',').map(|s| s.trim().to_owned()).collect();
    let t_col = names
        .iter()
        .position(|n| n == "t")
        .ok_or_else(|| bad(file, header_line, format!("no column `t` (time [s]) in the header {names:?}")))?;
    for (i, n) in names.iter().enumerate() {
        if n.is_empty() || names[..i].contains(n) {
            return Err(bad(
                file,
                header_line,
                format!(
                    "column {} is {}",
                    i + 1,
                    if n.is_empty() { "unnamed".to_owned() } else { format!("`{n}` again") }
                ),
            ));
        }
    }
    if names.len() < 2 {
        return Err(bad(file, header_line, "only `t`: expected x,y,z [m] or joint angle columns [rad]".into()));
    }
    let columns: Vec<String> = names.iter().filter(|n| *n != "t").cloned().collect();
    let hand_names = ["x", "y", "z"];
    let hand_like = columns.iter().filter(|c| hand_names.contains(&c.as_str())).count();
    if hand_like > 0 && (hand_like < 3 || columns.len() != 3) {
        return Err(bad(
            file,
            header_line,
            format!("columns {columns:?}: a hand path has exactly x, y, z [m]; joint angles use the joints' names"),
        ));
    }
    let (mut t, mut rows) = (Vec::new(), Vec::new());
    for (line, text) in lines {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        if fields.len() != names.len() {
            return Err(bad(file, line, format!("{} fields, the header has {}", fields.len(), names.len())));
        }
        let mut values = Vec::with_capacity(fields.len());
        for (f, name) in fields.iter().zip(&names) {
            let v: f64 = f.parse().map_err(|_| bad(file, line, format!("column `{name}`: `{f}` is not a number")))?;
            if !v.is_finite() {
                return Err(bad(file, line, format!("column `{name}`: {v} is not finite")));
            }
            values.push(v);
        }
        let time = values.remove(t_col);
        if let Some(&last) = t.last()
            && time <= last
        {
            return Err(bad(file, line, format!("t = {time} s does not increase (previous {last} s)")));
        }
        t.push(time);
        rows.push(values);
    }
    if t.len() < 3 {
        return Err(bad(file, 0, format!("{} samples: at least 3 are needed", t.len())));
    }
    Ok(Recording { columns, t, rows })
}

/// The samples linearly resampled at the recording's mean rate; returns them and the rate [Hz].
fn resample(rec: &Recording) -> (Vec<Vec<f64>>, f64) {
    let n = rec.t.len();
    let (t0, t1) = (rec.t[0], rec.t[n - 1]);
    let rate = (n - 1) as f64 / (t1 - t0);
    let mut out = Vec::with_capacity(n);
    let mut k = 0;
    for i in 0..n {
        let ti = t0 + i as f64 / rate;
        while k + 2 < n && rec.t[k + 1] < ti {
            k += 1;
        }
        let w = ((ti - rec.t[k]) / (rec.t[k + 1] - rec.t[k])).clamp(0.0, 1.0);
        out.push(rec.rows[k].iter().zip(&rec.rows[k + 1]).map(|(a, b)| a + w * (b - a)).collect());
    }
    (out, rate)
}

/// The measures of a recording (see the module doc).
pub fn analyze(rec: &Recording, filter: bool) -> Analysis {
    let (rows, rate) = resample(rec);
    let cutoff = if filter { TRIAL_PATH_CUTOFF } else { f64::INFINITY };
    if rec.columns.iter().any(|c| c == "x") {
        let idx = |name: &str| rec.columns.iter().position(|c| c == name).expect("a hand recording has x, y, z");
        let (ix, iy, iz) = (idx("x"), idx("y"), idx("z"));
        let mut path: Vec<Vector3<f64>> = rows.iter().map(|r| Vector3::new(r[ix], r[iy], r[iz])).collect();
        low_pass_zero_phase(&mut path, rate, cutoff);
        let (start, target) = (path[0], path[path.len() - 1]);
        let metrics = ReachAnalyzer::new(path.len()).analyze(&path, rate, &start, &target);
        return Analysis::Hand { samples: path.len(), rate_hz: rate, metrics };
    }
    // Joint angles: each column filtered as one coordinate of a path (the same filter, per axis).
    let dof = rec.columns.len();
    let mut q: Vec<Vec<f64>> = vec![Vec::with_capacity(rows.len()); dof];
    for j in 0..dof {
        let mut col: Vec<Vector3<f64>> = rows.iter().map(|r| Vector3::new(r[j], 0.0, 0.0)).collect();
        low_pass_zero_phase(&mut col, rate, cutoff);
        q[j] = col.iter().map(|v| v.x).collect();
    }
    let speed_of = |col: &[f64], i: usize| {
        let (a, b) = (i.saturating_sub(1), (i + 1).min(col.len() - 1));
        (col[b] - col[a]) * rate / (b - a) as f64
    };
    let n = rows.len();
    let norm: Vec<f64> = (0..n).map(|i| q.iter().map(|c| speed_of(c, i).powi(2)).sum::<f64>().sqrt()).collect();
    let joints = rec
        .columns
        .iter()
        .zip(&q)
        .map(|(name, col)| {
            let (lo, hi) = col.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
            let peak = (0..n).map(|i| speed_of(col, i).abs()).fold(0.0, f64::max);
            (name.clone(), hi - lo, peak)
        })
        .collect();
    Analysis::Joints {
        samples: n,
        rate_hz: rate,
        joints,
        sparc: Sparc::new(n).compute(&norm, rate),
        speed_peaks: count_peaks(&norm),
    }
}

/// The smallest and largest angle [rad] of each joint column of a joint-angle recording (low-passed at 10 Hz
/// first when `filter`, so a noise spike does not widen a range); `None` for a hand path.
pub fn joint_extents(rec: &Recording, filter: bool) -> Option<Vec<(String, [f64; 2])>> {
    if rec.columns.iter().any(|c| c == "x") {
        return None;
    }
    let (rows, rate) = resample(rec);
    let cutoff = if filter { TRIAL_PATH_CUTOFF } else { f64::INFINITY };
    Some(
        rec.columns
            .iter()
            .enumerate()
            .map(|(j, name)| {
                let mut col: Vec<Vector3<f64>> = rows.iter().map(|r| Vector3::new(r[j], 0.0, 0.0)).collect();
                low_pass_zero_phase(&mut col, rate, cutoff);
                let (lo, hi) =
                    col.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(v.x), h.max(v.x)));
                (name.clone(), [lo, hi])
            })
            .collect(),
    )
}

fn opt(v: Option<f64>, unit: &str) -> String {
    v.map_or_else(|| "- (no movement)".to_owned(), |v| format!("{v:.4} {unit}"))
}

/// The table `plexo analyze` prints.
pub fn render(a: &Analysis) -> String {
    match a {
        Analysis::Hand { samples, rate_hz, metrics: m } => format!(
            "hand path: {samples} samples at {rate_hz:.1} Hz\n\
             reaction time            {}\nmovement time            {}\npeak speed               {:.4} m/s\n\
             speed peaks              {}\npath-length ratio        {}\nmax perpendicular dev.   {}\n\
             initial direction error  {}\nSPARC                    {}\nLDLJ                     {}\n\
             normalised jerk          {}\n",
            opt(m.reaction_time, "s"),
            opt(m.movement_time, "s"),
            m.peak_speed,
            m.speed_peaks,
            opt(m.path_length_ratio, ""),
            opt(m.max_perpendicular_deviation, "m"),
            opt(m.initial_direction_error, "rad"),
            opt(m.sparc, ""),
            opt(m.ldlj, ""),
            opt(m.normalized_jerk, ""),
        ),
        Analysis::Joints { samples, rate_hz, joints, sparc, speed_peaks } => {
            let mut out = format!(
                "joint angles: {samples} samples at {rate_hz:.1} Hz\n{:<24} {:>10} {:>16}\n",
                "joint", "ROM [rad]", "peak speed [rad/s]"
            );
            for (name, rom, peak) in joints {
                out.push_str(&format!("{name:<24} {rom:>10.4} {peak:>16.4}\n"));
            }
            out.push_str(&format!("joint-space speed: SPARC {}, {speed_peaks} speed peaks\n", opt(*sparc, "")));
            out
        }
    }
}

/// Runs `plexo analyze`.
pub fn run(args: &AnalyzeArgs) -> Result<(), AppError> {
    let text = crate::files::read_input(&args.file, 512 * 1024 * 1024)?;
    let rec = parse(&text, &args.file.display().to_string())?;
    let a = analyze(&rec, !args.no_filter);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&a).expect("the analysis serializes"));
    } else {
        print!("{}", render(&a));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Minimum-jerk position 10s³ − 15s⁴ + 6s⁵ (Flash & Hogan 1985).
    fn min_jerk(s: f64) -> f64 {
        let s = s.clamp(0.0, 1.0);
        10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5)
    }

    /// A 0.2 m minimum-jerk reach along x in 1 s after 0.3 s of rest, at 200 Hz.
    fn reach_csv() -> String {
        let mut s = String::from("# a minimum-jerk reach\nt,x,y,z\n");
        for i in 0..=360 {
            let t = i as f64 / 200.0;
            s.push_str(&format!("{t},{},0.1,0.05\n", 0.2 * min_jerk((t - 0.3) / 1.0)));
        }
        s
    }

    #[test]
    fn a_minimum_jerk_reach_has_its_analytic_measures() {
        let rec = parse(&reach_csv(), "reach.csv").unwrap();
        let Analysis::Hand { metrics: m, rate_hz, .. } = analyze(&rec, false) else { panic!("a hand path") };
        approx::assert_abs_diff_eq!(rate_hz, 200.0, epsilon = 1e-9);
        // Peak speed 1.875 d / T; onset/offset at 10 % of it, phase p with 30 p²(1−p)² = 0.1875.
        approx::assert_abs_diff_eq!(m.peak_speed, 1.875 * 0.2, epsilon = 2e-3);
        let p = (1.0 - (1.0 - 4.0 * (0.1875f64 / 30.0).sqrt()).sqrt()) / 2.0;
        approx::assert_abs_diff_eq!(m.movement_time.unwrap(), 1.0 - 2.0 * p, epsilon = 2.0 / 200.0);
        approx::assert_abs_diff_eq!(m.reaction_time.unwrap(), 0.3 + p, epsilon = 2.0 / 200.0);
        assert_eq!(m.speed_peaks, 1);
        approx::assert_abs_diff_eq!(m.max_perpendicular_deviation.unwrap(), 0.0, epsilon = 1e-9);
        let sparc = m.sparc.unwrap();
        assert!((-1.75..=-1.45).contains(&sparc), "SPARC {sparc}");
        // The 10 Hz filter changes a reach whose power is below 5 Hz only a little.
        let Analysis::Hand { metrics: f, .. } = analyze(&rec, true) else { panic!() };
        approx::assert_relative_eq!(f.movement_time.unwrap(), m.movement_time.unwrap(), max_relative = 0.03);
    }

    #[test]
    fn joint_angles_give_their_range_and_peak_speed() {
        // Elbow: 0.2 -> 1.4 rad minimum-jerk in 1 s; wrist still at 0.1 rad.
        let mut s = String::from("t,elbow_flexion,wrist_flexion\n");
        for i in 0..=300 {
            let t = i as f64 / 100.0;
            s.push_str(&format!("{t},{},0.1\n", 0.2 + 1.2 * min_jerk(t - 0.5)));
        }
        let Analysis::Joints { joints, speed_peaks, .. } = analyze(&parse(&s, "j.csv").unwrap(), false) else {
            panic!("joint angles")
        };
        approx::assert_abs_diff_eq!(joints[0].1, 1.2, epsilon = 1e-9);
        approx::assert_abs_diff_eq!(joints[0].2, 1.875 * 1.2, epsilon = 0.01);
        assert_eq!((joints[1].1, joints[1].2), (0.0, 0.0));
        assert_eq!(speed_peaks, 1);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let cases = [
            ("t,x,y,z\n0,0,0,0\n0.1,0,0\n", 3, "3 fields"),
            ("t,x,y,z\n0,0,0,0\n0.1,0,abc,0\n", 3, "`abc` is not a number"),
            ("# c\n\nt,x,y,z\n0,0,0,0\n0.1,0,0,0\n0.1,0,0,0\n", 6, "does not increase"),
            ("x,y,z\n0,0,0\n", 1, "no column `t`"),
            ("t,x,y\n0,0,0\n", 1, "exactly x, y, z"),
            ("t,x,y,z\n0,0,0,0\n1,0,0,NaN\n", 3, "not finite"),
        ];
        for (text, line, what) in cases {
            let e = parse(text, "rec.csv").unwrap_err().to_string();
            assert!(e.starts_with(&format!("rec.csv:{line}:")) && e.contains(what), "{text:?}: {e}");
        }
    }
}
