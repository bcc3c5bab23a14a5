//! One session as `sim` and `run` drive it around the runtime loop: the telemetry pipeline, `--resume`, signals,
//! the progress bar and the real-time settings before; the report, the summary and the state after.

use std::sync::atomic::Ordering;
use std::time::Instant;

use plexo_hal::PatientHooks;
use plexo_kinematics::Model;

use crate::AppError;
use crate::options::{OutputArgs, apply_realtime, start_telemetry};
use crate::report::{Outputs, finish_session};
use crate::runtime::{LoopConfig, LoopSignals, Runtime, run_session};
use crate::session_state::{resume_session, session_state};
use crate::setup::SessionParts;
use crate::telemetry::RecordingInfo;
use crate::{progress, signals};

/// What a session is run with.
pub struct SessionSetup<'a> {
    /// The session's name (`<protocol>_<patient>_<UTC stamp>`).
    pub name: &'a str,
    /// The robot model.
    pub model: &'a Model,
    /// The robot's URDF text (link geometry for the recording).
    pub urdf: &'a str,
    /// Controller, supervisor, therapy and the blocks' targets.
    pub parts: SessionParts,
    /// Loop settings.
    pub loop_config: LoopConfig,
    /// The session's nominal length, for the progress bar [s].
    pub nominal: f64,
    /// Output and real-time options.
    pub output: &'a OutputArgs,
    /// Save a recording to out/<session>.rrd unless `--no-save` (sim); hardware saves only when asked.
    pub default_save: bool,
    /// A hardware session: its state is saved even without a recording.
    pub hardware: bool,
    /// The recording's properties (robot, protocol, patient id, controller, seed).
    pub info: RecordingInfo,
}

/// Runs one session on `plant` and reports it; the result is the session end's (`Ok` for an orderly end). Not
/// real-time safe around the loop.
pub fn run<P: PatientHooks>(setup: SessionSetup<'_>, mut plant: P) -> Result<(), AppError> {
    let SessionSetup { name, model, urdf, mut parts, loop_config, nominal, output, default_save, hardware, info } =
        setup;
    // `--resume` is read and applied before any output is created: a bad state file leaves the files alone.
    let resumed = resume_session(output.resume.as_deref(), &mut parts.therapy, &mut plant)?;
    let period = loop_config.period.as_secs_f64();
    let telemetry = start_telemetry(output, name, info, model, urdf, &parts, default_save, period, loop_config.paced)?;
    let mut rt = Runtime { plant, therapy: parts.therapy, supervisor: parts.supervisor };
    let loop_signals = LoopSignals::default();
    let watcher = signals::install(&loop_signals);
    let progress = progress::progress_bar(&loop_signals, nominal, output.quiet);
    let realtime = apply_realtime(output);
    let wall = Instant::now();
    let report = run_session(&mut rt, &loop_config, &telemetry.sender_for(loop_config.paced), &loop_signals);
    watcher.finish();
    loop_signals.stop.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        p.finish();
    }
    let report = report?;
    let state = session_state(name, resumed.as_ref(), &rt);
    let outputs = Outputs { args: output, state, hardware };
    finish_session(name, report, telemetry, wall.elapsed(), realtime, loop_config.paced, outputs)
}
