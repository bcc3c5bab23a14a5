//! The study's tables from the raw course results: `sessions.csv` (one row per course × session × block, plus
//! the assisted blocks' aggregate), `cohort.csv` (mean and 95 % t-interval across seeds per controller ×
//! patient × session) and the rows the report and the plots use. Columns and units: docs/studies.md.

use super::raw::{ASSISTED, BlockResult, CourseResult};

/// The per-session measures the cohort statistics, the plots and the report use (of the assisted blocks'
/// aggregate): key (CSV column stem) and label with unit.
pub const MEASURES: [(&str, &str); 11] = [
    ("success_rate", "success rate [-]"),
    ("final_error_mm", "final handle error [mm]"),
    ("assistance_nm", "assistance, RMS torque [Nm]"),
    ("assistance_j", "assistance work per trial [J]"),
    ("effort_share_est", "patient effort share, estimate [-]"),
    ("effort_share_true", "patient effort share, true [-]"),
    ("sparc", "SPARC [-]"),
    ("speed_peaks", "speed peaks per trial [-]"),
    ("movement_time_s", "movement time [s]"),
    ("stiffness_nm_rad", "Emken stiffness [Nm/rad]"),
    ("arm_support", "arm-weight support [-]"),
];

/// The assisted blocks' aggregate of a session, if it had assisted trials.
pub fn assisted(blocks: &[BlockResult]) -> Option<&BlockResult> {
    blocks.iter().find(|b| b.name == ASSISTED)
}

/// The value of measure `key` ([`MEASURES`]) of a block.
pub fn measure(b: &BlockResult, key: &str) -> Option<f64> {
    match key {
        "success_rate" => Some(f64::from(b.successes) / f64::from(b.trials.max(1))),
        "final_error_mm" => Some(b.final_error_m * 1000.0),
        "assistance_nm" => Some(b.assistance_nm),
        "assistance_j" => Some(b.assistance_j),
        "effort_share_est" => b.effort_share,
        "effort_share_true" => b.true_effort_share,
        "sparc" => b.sparc,
        "speed_peaks" => Some(b.speed_peaks),
        "movement_time_s" => b.movement_time_s,
        "stiffness_nm_rad" => Some(b.stiffness_nm_rad),
        "arm_support" => b.arm_support,
        _ => None,
    }
}

/// A CSV field: quoted (with doubled quotes) when it holds a comma, a quote or a line break (RFC 4180); the same
/// writer as the session's trial table.
pub use crate::summary::csv_field as field;

fn num(v: f64) -> String {
    format!("{v:.6}")
}

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, num)
}

/// Header of `sessions.csv`.
pub const SESSIONS_HEADER: &str = "controller,patient,seed,session,session_seed,end,session_time_s,block,mode,trials,\
successes,success_rate,final_error_mm,rms_error_deg,assistance_nm,assistance_j,effort_j,effort_share_est,\
effort_share_true,speed_peaks,sparc,movement_time_s,stiffness_nm_rad,arm_support,duration_s";

/// `sessions.csv`: per course (in course order), session and block (the assisted aggregate last).
pub fn sessions_csv(courses: &[CourseResult]) -> String {
    let mut out = format!("{SESSIONS_HEADER}\n");
    for c in courses {
        for s in &c.sessions {
            for b in &s.blocks {
                let cols = [
                    field(&c.controller),
                    field(&c.patient),
                    c.seed.to_string(),
                    s.session.to_string(),
                    s.seed.to_string(),
                    field(&s.end),
                    num(s.session_time_s),
                    field(&b.name),
                    field(&b.mode),
                    b.trials.to_string(),
                    b.successes.to_string(),
                    opt(measure(b, "success_rate")),
                    num(b.final_error_m * 1000.0),
                    num(b.rms_error_rad.to_degrees()),
                    num(b.assistance_nm),
                    num(b.assistance_j),
                    num(b.effort_j),
                    opt(b.effort_share),
                    opt(b.true_effort_share),
                    num(b.speed_peaks),
                    opt(b.sparc),
                    opt(b.movement_time_s),
                    num(b.stiffness_nm_rad),
                    opt(b.arm_support),
                    num(b.duration_s),
                ];
                out.push_str(&cols.join(","));
                out.push('\n');
            }
        }
    }
    out
}

/// `trials.csv`: the course keys, then the columns of `<session>.trials.csv` ([`crate::TRIAL_COLUMNS`]), one row
/// per trial of every session of every course.
pub fn trials_csv(courses: &[CourseResult]) -> String {
    let joints = courses.first().map(|c| c.joints.clone()).unwrap_or_default();
    let mut out = format!("controller,patient,seed,session,{}\n", crate::summary::trials_csv_header(&joints).join(","));
    for c in courses {
        for s in &c.sessions {
            for t in &s.trials {
                out.push_str(&format!("{},{},{},{},{t}\n", field(&c.controller), field(&c.patient), c.seed, s.session));
            }
        }
    }
    out
}

/// Two-sided 97.5 % quantile of Student's t with `df` degrees of freedom (table to 30, then the Cornish-Fisher
/// expansion around the normal quantile; error < 1e-4).
pub fn t975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
        2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518,
        2.0484, 2.0452, 2.0423,
    ];
    if (1..=30).contains(&df) {
        return TABLE[df - 1];
    }
    let z: f64 = 1.959_964;
    let d = df as f64;
    z + (z.powi(3) + z) / (4.0 * d) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * d * d)
}

/// Mean and 95 % t-interval `(mean, low, high)` of `values`; the interval is `None` for fewer than 2 values.
pub fn mean_ci(values: &[f64]) -> Option<(f64, Option<(f64, f64)>)> {
    if values.is_empty() {
        return None;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return Some((mean, None));
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let half = t975(values.len() - 1) * (var / n).sqrt();
    Some((mean, Some((mean - half, mean + half))))
}

/// The mean [95 % interval] of `values` as a table cell with `digits` decimals: "m [lo, hi]", "m" with one value,
/// "–" with none.
pub fn mean_ci_text(values: &[f64], digits: usize) -> String {
    match mean_ci(values) {
        None => "–".into(),
        Some((m, None)) => format!("{m:.digits$}"),
        Some((m, Some((lo, hi)))) => format!("{m:.digits$} [{lo:.digits$}, {hi:.digits$}]"),
    }
}

/// One cohort cell: a controller × patient × session, each measure's values across seeds.
#[derive(Clone, Debug)]
pub struct Cell {
    /// Controller name.
    pub controller: String,
    /// Patient name.
    pub patient: String,
    /// Session index (1-based).
    pub session: u32,
    /// Courses (seeds) in the cell.
    pub seeds: usize,
    /// Per measure of [`MEASURES`]: the values of the seeds that have one.
    pub values: Vec<Vec<f64>>,
}

/// Names in order of first appearance.
pub fn ordered(names: impl Iterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// The cohort cells in order controller, patient, session.
pub fn cells(courses: &[CourseResult]) -> Vec<Cell> {
    let controllers = ordered(courses.iter().map(|c| c.controller.clone()));
    let patients = ordered(courses.iter().map(|c| c.patient.clone()));
    let sessions = courses.iter().map(|c| c.sessions.len()).max().unwrap_or(0) as u32;
    let mut out = Vec::new();
    for ctrl in &controllers {
        for pat in &patients {
            let group: Vec<&CourseResult> =
                courses.iter().filter(|c| &c.controller == ctrl && &c.patient == pat).collect();
            for k in 1..=sessions {
                let aggregates: Vec<Option<BlockResult>> = group
                    .iter()
                    .filter_map(|c| c.sessions.iter().find(|s| s.session == k))
                    .map(|s| assisted(&s.blocks).cloned())
                    .collect();
                let values = MEASURES
                    .iter()
                    .map(|(key, _)| aggregates.iter().flatten().filter_map(|b| measure(b, key)).collect())
                    .collect();
                out.push(Cell {
                    controller: ctrl.clone(),
                    patient: pat.clone(),
                    session: k,
                    seeds: aggregates.len(),
                    values,
                });
            }
        }
    }
    out
}

/// `cohort.csv`: per cell, each measure's mean, 95 % interval and count.
pub fn cohort_csv(cells: &[Cell]) -> String {
    let mut out = String::from("controller,patient,session,seeds");
    for (key, _) in MEASURES {
        out.push_str(&format!(",{key}_n,{key}_mean,{key}_ci95_low,{key}_ci95_high"));
    }
    out.push('\n');
    for c in cells {
        out.push_str(&format!("{},{},{},{}", field(&c.controller), field(&c.patient), c.session, c.seeds));
        for v in &c.values {
            let (mean, ci) = match mean_ci(v) {
                Some((m, ci)) => (num(m), ci),
                None => (String::new(), None),
            };
            let (lo, hi) = ci.map_or((String::new(), String::new()), |(l, h)| (num(l), num(h)));
            out.push_str(&format!(",{},{mean},{lo},{hi}", v.len()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_of_known_values() {
        // Values 1, 2, 3: mean 2, s = 1, half width t(2) / sqrt(3) = 4.3027 / 1.7321 = 2.4842.
        let (m, ci) = mean_ci(&[1.0, 2.0, 3.0]).unwrap();
        let (lo, hi) = ci.unwrap();
        assert!((m - 2.0).abs() < 1e-12);
        assert!((hi - 2.0 - 2.4842).abs() < 1e-4 && (2.0 - lo - 2.4842).abs() < 1e-4);
        assert!(mean_ci(&[5.0]).unwrap().1.is_none());
        assert!((t975(40) - 2.0211).abs() < 2e-4, "{}", t975(40));
        assert!((t975(120) - 1.9799).abs() < 1e-4);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(field("plain"), "plain");
    }
}
