//! The end of a session: the report printed to the operator (block table, loop timing, safety, telemetry), the
//! `<recording>.summary.json` and the trial table `<recording>.trials.csv` beside the recording (without a
//! recording: `<out>/<session>.summary.json` and `<out>/<session>.trials.csv`, `--out` default `out`), and the
//! state saved for `--resume`.

use std::path::Path;
use std::time::Duration;

use crate::AppError;
use crate::options::OutputArgs;
use crate::realtime::RealtimeReport;
use crate::runtime::SessionReport;
use crate::session_state::SessionState;
use crate::telemetry::{Finished, Telemetry};

/// What a session leaves behind besides the recording.
pub struct Outputs<'a> {
    /// The output options (`--state`).
    pub args: &'a OutputArgs,
    /// The state for the next session.
    pub state: SessionState,
    /// A hardware session: its state is saved even without a recording (a patient's therapy progress must not be
    /// lost because no recording was asked for).
    pub hardware: bool,
    /// A range-of-motion assessment: measured once the analysis has finished, reported in the summary.
    pub assessment: Option<&'a mut crate::assessment::AssessmentRun>,
}

/// Stops the telemetry (its analysis yields the block table), prints the end-of-session report (block table,
/// loop timing, telemetry, where the recording is), writes the summary JSON and the trial table CSV (next to the
/// recording, else in `--out`) and the state for `--resume` (see [`Outputs`]), and maps the session end to the
/// process result. Not real-time safe.
pub fn finish_session(
    session: &str,
    report: SessionReport,
    telemetry: Telemetry,
    wall: Duration,
    realtime: RealtimeReport,
    paced: bool,
    outputs: Outputs<'_>,
) -> Result<(), AppError> {
    // The rrd path asked for: summary, trial table and state go beside it even if the writer failed.
    let save = telemetry.save_path().map(Path::to_path_buf);
    let Finished { report: telemetry_report, summary, writer_error } = telemetry.finish_all()?;
    if let Some(e) = &writer_error {
        // Reported now, returned after the summary and the state are safe.
        tracing::error!("the recording was not completed: {e}");
    }
    let dropped = telemetry_report.dropped;
    // Every trial has been analysed: the assessment's measurement (and whether it may be stored).
    let assessment = outputs.assessment.map(|a| a.finish(&report.end));
    let t = &report.timing;
    println!(
        "session {session}: {} after {:.1} s of session time ({:.1} s wall)",
        report.end,
        report.session_time,
        wall.as_secs_f64()
    );
    println!();
    print!("{}", summary.render_table());
    println!();
    println!(
        "loop ({}): {} ticks; wake-up jitter p50 {:.1} us, p99 {:.1} us, p99.9 {:.1} us, max {:.1} us; {} deadline misses (wake-up + compute > period); max compute {:.1} us{}",
        if paced { "paced at wall clock" } else { "unpaced: jitter is zero by construction" },
        t.ticks,
        t.p50_us,
        t.p99_us,
        t.p999_us,
        t.max_us,
        t.deadline_misses,
        t.max_compute_us,
        if realtime.warnings().is_empty() { "" } else { " (real-time settings refused: see warnings)" }
    );
    println!(
        "tick compute (controller + supervisor + bookkeeping; plant/bus I/O and telemetry hand-over excluded): p50 {:.2} us, p99 {:.2} us, max {:.1} us",
        t.tick_compute_p50_us, t.tick_compute_p99_us, t.tick_compute_max_us
    );
    println!(
        "safety: {} active ticks limited by the supervisor (by stage, soft start included: rate limit {}, walls {}, saturation {}, velocity fade {}); telemetry: {} samples, {} events, {dropped} dropped{}",
        report.active_ticks_limited,
        report.safety.limited_by.rate,
        report.safety.limited_by.walls,
        report.safety.limited_by.saturation,
        report.safety.limited_by.velocity_fade,
        telemetry_report.samples,
        telemetry_report.events,
        if paced {
            String::new()
        } else {
            format!(" (the unpaced loop waited {} times for the analysis)", telemetry_report.waits)
        }
    );
    tracing::info!(
        ticks = t.ticks,
        p50_us = t.p50_us,
        p99_us = t.p99_us,
        p999_us = t.p999_us,
        max_us = t.max_us,
        deadline_misses = t.deadline_misses,
        tick_compute_p50_us = t.tick_compute_p50_us,
        tick_compute_p99_us = t.tick_compute_p99_us,
        tick_compute_max_us = t.tick_compute_max_us,
        dropped,
        "loop statistics"
    );
    if let Some(path) = &telemetry_report.saved_to {
        let size = std::fs::metadata(path).map(|m| m.len() as f64 / 1e6).unwrap_or(f64::NAN);
        println!(
            "recording saved to {} (open with: rerun {}): {size:.1} MB, time series at {:.0} Hz ({} rows), written in {:.1} s",
            path.display(),
            path.display(),
            telemetry_report.series_rate,
            telemetry_report.series_rows,
            telemetry_report.write_seconds
        );
    }
    for live in &telemetry_report.live {
        println!(
            "live viewer {}: {} messages streamed{}",
            live.url,
            live.forwarded,
            if live.failed {
                format!(", {} dropped (stream given up, see the warning)", live.dropped)
            } else {
                String::new()
            }
        );
    }
    // The summary and the trial table: beside the recording, or in --out without one.
    let (json_path, trials_path) = match &save {
        Some(rrd) => (rrd.with_extension("summary.json"), rrd.with_extension("trials.csv")),
        None => {
            let dir = outputs.args.out_dir();
            (dir.join(format!("{session}.summary.json")), dir.join(format!("{session}.trials.csv")))
        }
    };
    {
        let mut json = serde_json::json!({
            "session": session,
            "end": report.end.to_string(),
            "session_time_s": report.session_time,
            "blocks": summary.blocks,
            "timing": {
                "ticks": t.ticks, "p50_us": t.p50_us, "p99_us": t.p99_us, "p999_us": t.p999_us,
                "max_us": t.max_us, "deadline_misses": t.deadline_misses,
                "tick_compute_p50_us": t.tick_compute_p50_us, "tick_compute_p99_us": t.tick_compute_p99_us,
                "tick_compute_max_us": t.tick_compute_max_us,
            },
            "safety": {
                "active_ticks_limited": report.active_ticks_limited,
                "limited_by": {
                    "rate": report.safety.limited_by.rate, "walls": report.safety.limited_by.walls,
                    "saturation": report.safety.limited_by.saturation,
                    "velocity_fade": report.safety.limited_by.velocity_fade,
                },
            },
            "telemetry": {
                "samples": telemetry_report.samples, "events": telemetry_report.events, "dropped": dropped,
                "waits": telemetry_report.waits, "series_rows": telemetry_report.series_rows,
                "series_rate_hz": telemetry_report.series_rate, "write_s": telemetry_report.write_seconds,
                "recording_complete": save.as_ref().map(|_| writer_error.is_none() && telemetry_report.saved_to.is_some()),
                "live_viewers": telemetry_report.live.iter().map(|l| serde_json::json!({
                    "url": l.url, "forwarded": l.forwarded, "dropped": l.dropped, "given_up": l.failed,
                })).collect::<Vec<_>>(),
            },
        });
        if let Some(a) = assessment {
            json["assessment"] = a;
        }
        let text = serde_json::to_string_pretty(&json).expect("a JSON value always serializes");
        crate::files::write_atomically(&json_path, text.as_bytes())?;
        println!("summary saved to {}", json_path.display());
        summary.write_trials_csv(&trials_path)?;
        println!("trial table saved to {} ({} trials)", trials_path.display(), summary.trials.len());
    }
    let state_path = match (&outputs.args.state, &save) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(rrd)) => Some(rrd.with_extension("state.toml")),
        (None, None) if outputs.hardware => Some(outputs.args.out_dir().join(format!("{session}.state.toml"))),
        (None, None) => None,
    };
    if let Some(path) = state_path {
        outputs.state.save(&path)?;
        println!("session state saved to {} (continue with --resume {})", path.display(), path.display());
    }
    if let Some(e) = writer_error {
        return Err(e);
    }
    report.end.into_result()
}
