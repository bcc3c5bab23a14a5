//! What `sim` and `run` share around the loop: output options (Rerun sinks, summary), real-time options, the
//! progress bar, Ctrl-C, and the end-of-session report.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use plexo_kinematics::Model;

use crate::AppError;
use crate::realtime::{RealtimeReport, RealtimeRequest};
use crate::runtime::{LoopSignals, SessionReport};
use crate::session_state::SessionState;
use crate::setup::SessionParts;
use crate::telemetry::{Sinks, Telemetry, TelemetryConfig};

/// Output and real-time options shared by `sim` and `run`.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Save the recording to this .rrd file (default for `sim`: out/<session>.rrd).
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Do not save a recording (`sim` saves one by default).
    #[arg(long, conflicts_with = "save")]
    pub no_save: bool,
    /// Start a Rerun viewer (listening on 127.0.0.1 only) and stream to it.
    #[arg(long)]
    pub spawn: bool,
    /// Stream to a running Rerun viewer (default rerun+http://127.0.0.1:9876/proxy).
    #[arg(long, num_args = 0..=1, default_missing_value = "rerun+http://127.0.0.1:9876/proxy")]
    pub connect: Option<String>,
    /// Log the 3D arm every N ticks (time series are logged every tick).
    #[arg(long, default_value_t = 10)]
    pub pose_every: u64,
    /// Telemetry channel capacity [messages]; when full, a paced loop drops samples (counted) and never blocks, an
    /// unpaced simulation waits for the writer (nothing is lost).
    #[arg(long, default_value_t = 65_536)]
    pub telemetry_capacity: usize,
    /// Run the control loop with SCHED_FIFO at this priority (1–99), if permitted.
    #[arg(long)]
    pub fifo_priority: Option<i32>,
    /// Lock memory (mlockall) so page faults never stall a tick, if permitted.
    #[arg(long)]
    pub lock_memory: bool,
    /// Pin the control thread to this CPU.
    #[arg(long)]
    pub cpu: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Resume from the state an earlier session wrote (`<recording>.state.toml`): the assist-as-needed laws start
    /// where they ended and, in simulation, so does the virtual patient (learning, effort, fatigue).
    #[arg(long, value_name = "STATE_FILE")]
    pub resume: Option<PathBuf>,
    /// Where to write this session's state for `--resume` (default: beside the recording as
    /// `<recording>.state.toml`; `plexo run` without a recording: `out/<session>.state.toml`).
    #[arg(long, value_name = "STATE_FILE")]
    pub state: Option<PathBuf>,
}

/// Loads `--resume` and applies it before the session starts: the therapy's adaptation and, when the plant has
/// one, the virtual patient's state. Returns the loaded state (`None` without `--resume`). Not real-time safe.
pub fn resume_session<P: crate::runtime::Plant>(
    args: &OutputArgs,
    therapy: &mut plexo_controller::Therapy,
    plant: &mut P,
) -> Result<Option<SessionState>, AppError> {
    let Some(path) = &args.resume else { return Ok(None) };
    let state = SessionState::load(path)?;
    let clamped = state.resume(therapy, path)?;
    crate::session_state::report_resume(path, &state, &clamped);
    match state.virtual_patient {
        Some(patient) => {
            let restored = plant.restore_patient(patient).map_err(|e| AppError::Config {
                file: path.display().to_string(),
                key: "virtual_patient".into(),
                reason: e.to_string(),
            })?;
            if !restored {
                eprintln!("note: {} holds a virtual patient's state; it is ignored on hardware", path.display());
            }
        }
        None if plant.patient_state().is_some() => {
            eprintln!("note: {} holds no virtual patient's state; the patient starts from its profile", path.display());
        }
        None => {}
    }
    Ok(Some(state))
}

/// This session's state to carry to the next one. Not real-time safe.
pub fn session_state<P: crate::runtime::Plant>(
    session: &str,
    previous: Option<&SessionState>,
    rt: &crate::runtime::Runtime<P>,
) -> SessionState {
    SessionState {
        session: session.to_owned(),
        sessions: previous.map_or(1, |p| p.sessions + 1),
        adaptation: rt.therapy.adaptation_state(),
        virtual_patient: rt.plant.patient_state(),
    }
}

/// What a session leaves behind besides the recording.
pub struct Outputs<'a> {
    /// The output options (`--state`).
    pub args: &'a OutputArgs,
    /// The state for the next session.
    pub state: SessionState,
    /// A hardware session: its state is saved even without a recording (a patient's therapy progress must not be
    /// lost because no recording was asked for).
    pub hardware: bool,
}

/// Starts the telemetry thread with the sinks the options ask for. `default_save`: save to out/<session>.rrd
/// unless `--no-save` (sim); hardware runs save only when asked.
pub fn start_telemetry(
    args: &OutputArgs,
    session: &str,
    model: &Model,
    urdf: &str,
    parts: &SessionParts,
    default_save: bool,
) -> Result<Telemetry, AppError> {
    let save = match (&args.save, args.no_save, default_save) {
        (Some(p), _, _) => Some(p.clone()),
        (None, false, true) => Some(PathBuf::from("out").join(format!("{session}.rrd"))),
        _ => None,
    };
    Telemetry::start(TelemetryConfig {
        session_name: session.to_owned(),
        model: model.clone(),
        urdf: urdf.to_owned(),
        handle_frame: model.frames()[parts.handle.0].name.clone(),
        block_names: parts.block_names.clone(),
        block_targets: parts.block_targets.clone(),
        pose_every: args.pose_every,
        capacity: args.telemetry_capacity,
        sinks: Sinks { save, spawn: args.spawn, connect: args.connect.clone() },
    })
}

/// Applies the requested real-time settings to the calling (control) thread; warns about what was refused.
pub fn apply_realtime(args: &OutputArgs) -> RealtimeReport {
    let report = crate::realtime::apply(RealtimeRequest {
        fifo_priority: args.fifo_priority,
        lock_memory: args.lock_memory,
        cpu: args.cpu,
    });
    for w in report.warnings() {
        tracing::warn!("{w}");
        eprintln!("warning: {w}");
    }
    report
}

static CTRL_C: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    CTRL_C.store(true, Ordering::Relaxed);
}

/// Ctrl-C (SIGINT) requests an operator stop: the loop makes a controlled stop and switches torque off.
/// A watcher thread forwards the signal flag to `signals.stop`.
pub fn install_ctrl_c(signals: &LoopSignals) {
    // SAFETY: `on_sigint` only stores to an atomic (async-signal-safe); the handler has the C ABI `signal`
    // expects.
    let previous = unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    if previous == libc::SIG_ERR {
        tracing::warn!("cannot install the Ctrl-C handler: Ctrl-C will kill the process without a controlled stop");
        return;
    }
    let stop = signals.stop.clone();
    let _ = std::thread::Builder::new().name("plexo-ctrl-c".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if CTRL_C.load(Ordering::Relaxed) {
                eprintln!("\nCtrl-C: controlled stop, then torque off");
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}

/// A progress bar over session time on its own thread (the loop only stores an atomic). `None` when quiet or
/// when stderr is not a terminal.
pub fn progress_bar(signals: &LoopSignals, nominal_s: f64, quiet: bool) -> Option<ProgressHandle> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new((nominal_s.max(1.0) * 1000.0) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg} sim {pos}/{len} ms")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let (ms, stop, done2, bar2) = (signals.session_ms.clone(), signals.stop.clone(), done.clone(), bar.clone());
    let thread = std::thread::spawn(move || {
        while !done2.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            let pos = ms.load(Ordering::Relaxed);
            if pos > bar2.length().unwrap_or(0) {
                bar2.set_length(pos);
            }
            bar2.set_position(pos);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Some(ProgressHandle { bar, done, thread: Some(thread) })
}

/// The running progress bar.
pub struct ProgressHandle {
    bar: indicatif::ProgressBar,
    done: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressHandle {
    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}

/// Prints the end-of-session report (block table, loop timing, telemetry, where the recording is), writes
/// `<recording>.summary.json` next to the recording and the state for `--resume` (see [`Outputs`]), and maps the
/// session end to the process result.
pub fn finish_session(
    session: &str,
    report: SessionReport,
    telemetry: Telemetry,
    wall: Duration,
    realtime: RealtimeReport,
    paced: bool,
    outputs: Outputs<'_>,
) -> Result<(), AppError> {
    let (telemetry_report, dropped) = telemetry.finish()?;
    let t = &report.timing;
    println!(
        "session {session}: {} after {:.1} s of session time ({:.1} s wall)",
        report.end,
        report.session_time,
        wall.as_secs_f64()
    );
    println!();
    print!("{}", report.summary.render_table());
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
        "safety: {} ticks limited by the supervisor (by stage, soft start included: rate limit {}, walls {}, saturation {}, velocity fade {}); telemetry: {} samples, {} events, {dropped} dropped{}",
        report.limited_ticks,
        report.safety.limited_by.rate,
        report.safety.limited_by.walls,
        report.safety.limited_by.saturation,
        report.safety.limited_by.velocity_fade,
        telemetry_report.samples,
        telemetry_report.events,
        if paced {
            String::new()
        } else {
            format!(" (the unpaced loop waited {} times for the writer)", telemetry_report.waits)
        }
    );
    tracing::info!(
        ticks = t.ticks,
        p50_us = t.p50_us,
        p99_us = t.p99_us,
        p999_us = t.p999_us,
        max_us = t.max_us,
        deadline_misses = t.deadline_misses,
        dropped,
        "loop statistics"
    );
    if let Some(path) = &telemetry_report.saved_to {
        println!("recording saved to {} (open with: rerun {})", path.display(), path.display());
        let json_path = path.with_extension("summary.json");
        let json = serde_json::json!({
            "session": session,
            "end": report.end.to_string(),
            "session_time_s": report.session_time,
            "blocks": report.summary.blocks,
            "timing": {
                "ticks": t.ticks, "p50_us": t.p50_us, "p99_us": t.p99_us, "p999_us": t.p999_us,
                "max_us": t.max_us, "deadline_misses": t.deadline_misses,
            },
            "safety": {
                "limited_ticks": report.limited_ticks,
                "limited_by": {
                    "rate": report.safety.limited_by.rate, "walls": report.safety.limited_by.walls,
                    "saturation": report.safety.limited_by.saturation,
                    "velocity_fade": report.safety.limited_by.velocity_fade,
                },
            },
            "telemetry": {
                "samples": telemetry_report.samples, "events": telemetry_report.events, "dropped": dropped,
                "waits": telemetry_report.waits,
            },
        });
        std::fs::write(&json_path, serde_json::to_string_pretty(&json).expect("a JSON value always serializes"))
            .map_err(|e| AppError::Io { path: json_path.display().to_string(), source: e })?;
        println!("summary saved to {}", json_path.display());
    }
    let state_path = match (&outputs.args.state, &telemetry_report.saved_to) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(rrd)) => Some(rrd.with_extension("state.toml")),
        (None, None) if outputs.hardware => Some(PathBuf::from("out").join(format!("{session}.state.toml"))),
        (None, None) => None,
    };
    if let Some(path) = state_path {
        outputs.state.save(&path)?;
        println!("session state saved to {} (continue with --resume {})", path.display(), path.display());
    }
    report.end.into_result()
}
