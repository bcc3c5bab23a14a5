//! `plexo report --patient-id P`: a patient's course as one self-contained HTML file a clinician opens in any
//! browser without Plexo — the spec and its history, one row per session (date, protocol, controller, how it
//! ended; success, SPARC, movement time, path-length ratio, assistance, task effort, range of motion per joint),
//! the trend of each measure across sessions (least-squares slope per session), and one inline SVG plot per
//! measure (plotters) with the sessions where the controller configuration changed marked.
//!
//! Per-session values are over all the session's trials: means of the trials where the measure is defined,
//! success = reached / trials, effort share = ΣW_patient / (ΣW_patient + ΣW_assist) (as the block table), range
//! of motion per joint = the largest of the trials' ranges [rad]. [`session_metrics`] computes them; the
//! end-to-end test recomputes them from the store and compares with the report.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use plotters::prelude::*;

use crate::AppError;
use crate::store::{self, Store, StoredTrial};

/// Options of `plexo report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The patient's pseudonymous id.
    #[arg(long, value_name = "ID")]
    pub patient_id: String,
    /// The patient store (SQLite).
    #[arg(long, value_name = "FILE", default_value = store::DEFAULT_DB)]
    pub db: PathBuf,
    /// The HTML file to write (0600) [default: out/<id>.report.html].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One session's measures (see the module doc for how each is taken over the trials).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SessionMetrics {
    /// Trials stored.
    pub trials: usize,
    /// Reached / trials [-].
    pub success: Option<f64>,
    /// Mean SPARC [-].
    pub sparc: Option<f64>,
    /// Mean movement time [s].
    pub movement_time_s: Option<f64>,
    /// Mean path-length ratio [-].
    pub path_length_ratio: Option<f64>,
    /// Mean assistance work per trial W_assist [J].
    pub assistance_j: Option<f64>,
    /// Mean RMS therapy-mode torque [Nm].
    pub assistance_rms_nm: Option<f64>,
    /// Task-effort share ΣW_patient / (ΣW_patient + ΣW_assist) [-].
    pub effort_share: Option<f64>,
    /// Largest trial range of motion per joint [rad], in the session's joint order.
    pub rom_rad: Vec<Option<f64>>,
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (sum, n) = values.flatten().filter(|v| v.is_finite()).fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The measures of one session from its stored trials; `joints`: the session's joint count.
pub fn session_metrics(trials: &[StoredTrial], joints: usize) -> SessionMetrics {
    let rows = || trials.iter().map(|t| &t.row);
    let finite = |v: f64| v.is_finite().then_some(v);
    let effort: f64 = rows().filter_map(|r| finite(r.effort_j)).sum();
    let assist: f64 = rows().filter_map(|r| finite(r.assistance_j)).sum();
    SessionMetrics {
        trials: trials.len(),
        success: (!trials.is_empty()).then(|| rows().filter(|r| r.reached).count() as f64 / trials.len() as f64),
        sparc: mean(rows().map(|r| r.sparc)),
        movement_time_s: mean(rows().map(|r| r.movement_time_s)),
        path_length_ratio: mean(rows().map(|r| r.path_length_ratio)),
        assistance_j: mean(rows().map(|r| finite(r.assistance_j))),
        assistance_rms_nm: mean(rows().map(|r| finite(r.assistance_rms_nm))),
        effort_share: (effort + assist > 0.0).then(|| effort / (effort + assist)),
        rom_rad: (0..joints)
            .map(|j| rows().filter_map(|r| r.rom_rad.get(j).copied().and_then(finite)).reduce(f64::max))
            .collect(),
    }
}

/// Least-squares slope of `values` against their session number (1, 2, …), over the defined values; `None`
/// with fewer than two.
pub fn trend(values: &[Option<f64>]) -> Option<f64> {
    let points: Vec<(f64, f64)> =
        values.iter().enumerate().filter_map(|(i, v)| v.map(|v| ((i + 1) as f64, v))).collect();
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The measures of the report: key (the `data-key` of the table cells), title, unit, and getter.
type Getter = fn(&SessionMetrics) -> Option<f64>;
const MEASURES: [(&str, &str, &str, Getter); 7] = [
    ("success", "success rate", "-", |m| m.success),
    ("sparc", "SPARC (smoothness; higher = smoother)", "-", |m| m.sparc),
    ("movement_time_s", "movement time", "s", |m| m.movement_time_s),
    ("path_length_ratio", "path-length ratio (1 = straight)", "-", |m| m.path_length_ratio),
    ("assistance_j", "assistance work per trial W_assist", "J", |m| m.assistance_j),
    ("assistance_rms_nm", "assistance RMS torque", "Nm", |m| m.assistance_rms_nm),
    ("effort_share", "task-effort share W_patient/(W_patient+W_assist)", "-", |m| m.effort_share),
];

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.4}"))
}

/// Runs `plexo report`.
pub fn run(args: &ReportArgs) -> Result<(), AppError> {
    let store = Store::open_existing(&args.db)?;
    store.begin_read()?;
    let html = render(&store, &args.patient_id)?;
    store.end_read()?;
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("out/{}.report.html", args.patient_id)));
    crate::files::write_atomically(&out, html.as_bytes())?;
    println!("report of patient {} written to {} (open it in any browser)", args.patient_id, out.display());
    Ok(())
}

/// The report's HTML.
pub fn render(store: &Store, id: &str) -> Result<String, AppError> {
    let patient = store.patient(id)?;
    let sessions = store.sessions(id)?;
    let mut metrics = Vec::with_capacity(sessions.len());
    for s in &sessions {
        metrics.push(session_metrics(&store.trials(s.id)?, s.joints.len()));
    }
    let changed: Vec<bool> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| i > 0 && sessions[i - 1].controller_hash != s.controller_hash)
        .collect();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Plexo report: patient {id}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1400px}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #bbb;padding:3px 8px;text-align:right}}th{{background:#eee}}td.l,th.l{{text-align:left}}\
         tr.changed td{{background:#fff3cd}}.plots{{display:flex;flex-wrap:wrap;gap:1em}}</style></head><body>\n\
         <h1>Patient {id}: course of therapy</h1>\n<p>{} patient, added {}; {} sessions stored. Report generated {} \
         by Plexo {} from {} (schema version {}).</p>\n",
        if patient.virtual_profile_toml.is_some() { "Virtual (simulated)" } else { "Clinical" },
        html_escape(&patient.created_at),
        sessions.len(),
        store::now_utc(),
        env!("CARGO_PKG_VERSION"),
        html_escape(&store.path().display().to_string()),
        store.schema_version()?,
        id = html_escape(id),
    );
    // The spec.
    let spec = &patient.spec;
    let _ = write!(
        h,
        "<h2>Patient spec</h2><p>Side: {:?}; height {} m; mass {} kg.</p><table><tr><th class=\"l\">joint</th>\
         <th>measured ROM lower [rad]</th><th>upper [rad]</th><th>personal max velocity [rad/s]</th>\
         <th>personal max torque [Nm]</th></tr>",
        spec.side, spec.height, spec.mass
    );
    for (joint, [lo, hi]) in &spec.range_of_motion {
        let l = spec.limits_of(joint);
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td>{lo:.3}</td><td>{hi:.3}</td><td>{}</td><td>{}</td></tr>",
            html_escape(joint),
            num(l.max_velocity),
            num(l.max_torque)
        );
    }
    h.push_str("</table><p>Spec history:</p><ul>");
    for c in store.spec_history(id)? {
        let _ = write!(h, "<li>{}: {}</li>", html_escape(&c.changed_at), html_escape(&c.reason));
    }
    h.push_str("</ul>\n");
    // Sessions.
    h.push_str(
        "<h2>Sessions</h2><p>Rows in yellow: the controller configuration changed from the session before (its \
         SHA-256 prefix differs).</p><table id=\"sessions\"><tr><th>#</th><th class=\"l\">date (UTC)</th>\
         <th class=\"l\">session</th><th class=\"l\">protocol</th><th class=\"l\">controller</th><th class=\"l\">ended</th>\
         <th>trials</th>",
    );
    for (_, title, unit, _) in MEASURES {
        let _ = write!(h, "<th>{} [{unit}]</th>", html_escape(title));
    }
    let joints: Vec<String> = sessions.first().map(|s| s.joints.clone()).unwrap_or_default();
    for j in &joints {
        let _ = write!(h, "<th>ROM {} [rad]</th>", html_escape(j));
    }
    h.push_str("</tr>\n");
    for (i, (s, m)) in sessions.iter().zip(&metrics).enumerate() {
        let _ = write!(
            h,
            "<tr data-session=\"{}\"{}><td>{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>\
             <td class=\"l\">{}{}</td><td class=\"l\">{}</td><td data-key=\"trials\">{}</td>",
            html_escape(&s.name),
            if changed[i] { " class=\"changed\"" } else { "" },
            i + 1,
            html_escape(&s.started_at),
            html_escape(&s.name),
            html_escape(&s.protocol),
            html_escape(&s.controller_hash),
            if changed[i] { " (changed)" } else { "" },
            html_escape(s.outcome.as_deref().unwrap_or("no end recorded")),
            m.trials
        );
        for (key, _, _, get) in MEASURES {
            let _ = write!(h, "<td data-key=\"{key}\">{}</td>", num(get(m)));
        }
        for name in &joints {
            let v = s.joints.iter().position(|n| n == name).and_then(|k| m.rom_rad.get(k).copied().flatten());
            let _ = write!(h, "<td data-key=\"rom_{}\">{}</td>", html_escape(name), num(v));
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
    // Trends.
    h.push_str(
        "<h2>Trends</h2><p>Least-squares slope per session over all sessions, first and last session.</p>\
         <table id=\"trends\"><tr><th class=\"l\">measure</th><th>first</th><th>last</th><th>slope per session</th></tr>",
    );
    for (key, title, unit, get) in MEASURES {
        let values: Vec<Option<f64>> = metrics.iter().map(get).collect();
        let _ = write!(
            h,
            "<tr data-key=\"{key}\"><td class=\"l\">{} [{unit}]</td><td>{}</td><td>{}</td><td data-key=\"slope\">{}</td></tr>",
            html_escape(title),
            num(values.first().copied().flatten()),
            num(values.last().copied().flatten()),
            num(trend(&values))
        );
    }
    h.push_str("</table>\n<h2>Plots</h2>\n");
    match crate::study::plots::font() {
        Ok(_) => {
            h.push_str("<div class=\"plots\">");
            for (key, title, unit, get) in MEASURES {
                let values: Vec<Option<f64>> = metrics.iter().map(get).collect();
                h.push_str(&plot_svg(key, &format!("{title} [{unit}]"), &values, &changed)?);
            }
            h.push_str("</div>\n");
        }
        Err(why) => {
            let _ = write!(h, "<p>No plots: {} (the tables hold every number).</p>", html_escape(&why));
        }
    }
    h.push_str(
        "<h2>Sessions in detail</h2><table><tr><th class=\"l\">session</th><th class=\"l\">robot</th>\
                <th class=\"l\">controller source</th><th class=\"l\">software</th><th class=\"l\">notes</th></tr>",
    );
    for s in &sessions {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td></tr>",
            html_escape(&s.name),
            html_escape(&s.robot),
            html_escape(&s.controller),
            html_escape(&s.software_version),
            html_escape(s.notes.as_deref().unwrap_or(""))
        );
    }
    h.push_str(
        "</table>\n<p>Definitions: see Plexo's README (the trial table) and src/patient_report.rs.</p></body></html>\n",
    );
    Ok(h)
}

/// One measure across sessions as an inline SVG: the values, and a dashed vertical line before each session whose
/// controller configuration changed.
fn plot_svg(key: &str, title: &str, values: &[Option<f64>], changed: &[bool]) -> Result<String, AppError> {
    let err = |e: String| AppError::Telemetry(format!("report plot {key}: {e}"));
    let n = values.len().max(1);
    let defined: Vec<f64> = values.iter().flatten().copied().collect();
    let (lo, hi) = defined.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
    let pad = ((hi - lo) * 0.1).max(1e-3 * lo.abs().max(hi.abs())).max(1e-3);
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (460, 300)).into_drawing_area();
        area.fill(&WHITE).map_err(|e| err(e.to_string()))?;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5..n as f64 + 0.5, (lo - pad)..(hi + pad))
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("session")
            .x_labels(n.min(12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, c) in changed.iter().enumerate() {
            if *c {
                let x = i as f64 + 0.5;
                chart
                    .draw_series(DashedLineSeries::new([(x, lo - pad), (x, hi + pad)], 4, 3, RED.stroke_width(1)))
                    .map_err(|e| err(e.to_string()))?;
            }
        }
        let points: Vec<(f64, f64)> =
            values.iter().enumerate().filter_map(|(i, v)| v.map(|v| ((i + 1) as f64, v))).collect();
        chart.draw_series(LineSeries::new(points.clone(), BLUE.stroke_width(2))).map_err(|e| err(e.to_string()))?;
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, BLUE.filled()))).map_err(|e| err(e.to_string()))?;
        area.present().map_err(|e| err(e.to_string()))?;
    }
    // The XML declaration is for files; inline in HTML it would be text.
    let body = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
    Ok(format!("<figure data-plot=\"{key}\">{body}</figure>"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_is_the_least_squares_slope_over_defined_sessions() {
        assert_eq!(trend(&[Some(1.0), Some(3.0), Some(5.0)]), Some(2.0));
        assert_eq!(trend(&[Some(1.0), None, Some(5.0)]), Some(2.0));
        assert_eq!(trend(&[Some(1.0), None]), None);
    }
}
