//! One session as `sim` and `run` drive it around the runtime loop: the telemetry pipeline, `--resume`, signals,
//! the progress bar and the real-time settings before; the report, the summary and the state after.

use std::sync::atomic::Ordering;
use std::time::Instant;

use plexo_hal::PatientHooks;
use plexo_kinematics::Model;

use crate::AppError;
use crate::assessment::AssessmentRun;
use crate::options::{OutputArgs, apply_realtime, start_telemetry};
use crate::report::{Outputs, finish_session};
use crate::runtime::{LoopConfig, LoopSignals, Runtime, run_session};
use crate::session_state::{SessionState, apply_state, resume_session, session_state};
use crate::setup::SessionParts;
use crate::store::binding::StoreBinding;
use crate::store::recorder::Recorder;
use crate::store::{NewSession, Store};
use crate::summary::mode_label;
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
    /// The patient store this session records itself in (`--patient-id`), if any.
    pub store: Option<StoreBinding>,
    /// A range-of-motion assessment (`--assess-rom`): measured from the finished trials, stored in the
    /// patient's spec after a completed run.
    pub assessment: Option<AssessmentRun>,
}

/// Runs one session on `plant` and reports it; the result is the session end's (`Ok` for an orderly end). Not
/// real-time safe around the loop.
pub fn run<P: PatientHooks>(setup: SessionSetup<'_>, mut plant: P) -> Result<(), AppError> {
    let SessionSetup {
        name,
        model,
        urdf,
        mut parts,
        loop_config,
        nominal,
        output,
        default_save,
        hardware,
        info,
        store,
        mut assessment,
    } = setup;
    let patient_id = store.as_ref().map(|b| b.patient_id.clone());
    // `--resume` (or the stored patient's last state) is read and applied before any output is created: a bad
    // state leaves the files alone.
    let resumed = match (&output.resume, &store) {
        (None, Some(binding)) => resume_from_store(binding, &mut parts.therapy, &mut plant)?,
        _ => resume_session(output.resume.as_deref(), &mut parts.therapy, &mut plant)?,
    };
    // The store records the session's start before the loop: a database that cannot be written refuses the
    // session before any torque, never during it.
    let recorder = match store {
        Some(binding) => Some(start_recording(binding, name, model, &info, &parts)?),
        None => None,
    };
    let period = loop_config.period.as_secs_f64();
    let sink = recorder.as_ref().map(|(r, _)| r.sink());
    // An assessment keeps each finished trial's held extremes and forwards the trial to the store's writer.
    // (The writer's sender moves into the collector: a sender left here would keep the writer waiting.)
    let sink = match assessment.as_mut() {
        Some(a) => match a.tee(sink) {
            Ok(tee) => Some(tee),
            Err(e) => {
                if let Some(recorder) = recorder {
                    finish_recording(recorder, &format!("failed before the start: {e}"), None);
                }
                return Err(e);
            }
        },
        None => sink,
    };
    let telemetry =
        match start_telemetry(output, name, info, model, urdf, &parts, default_save, period, loop_config.paced, sink) {
            Ok(telemetry) => telemetry,
            Err(e) => {
                // No torque was ever on: the stored session says why it did not run.
                if let Some(a) = assessment.as_mut() {
                    a.collect();
                }
                if let Some(recorder) = recorder {
                    finish_recording(recorder, &format!("failed before the start: {e}"), None);
                }
                return Err(e);
            }
        };
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
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            drop(telemetry);
            if let Some(a) = assessment.as_mut() {
                a.collect();
            }
            if let Some(recorder) = recorder {
                finish_recording(recorder, &format!("failed: {e}"), None);
            }
            return Err(e);
        }
    };
    let state = session_state(name, resumed.as_ref(), &rt);
    let state_toml = match toml::to_string(&state) {
        Ok(text) => Some(text),
        Err(e) => {
            // Not expected (the state file is written from the same serialization); the store misses the state.
            eprintln!("warning: the session state cannot be serialized for the patient store: {e}");
            None
        }
    };
    let end = report.end.to_string();
    let outputs = Outputs { args: output, state, hardware, assessment: assessment.as_mut() };
    let result = finish_session(name, report, telemetry, wall.elapsed(), realtime, loop_config.paced, outputs);
    // After the session's files: a store failure is reported, never costs them.
    let store = recorder.and_then(|recorder| finish_recording(recorder, &end, state_toml.as_deref()));
    // The assessment's measurement becomes the patient's range only after the session's end is recorded, and
    // only for a completed run (`AssessmentRun::finish` decided).
    if let (Some(a), Some(mut store), Some(id)) = (assessment, store, patient_id) {
        let stored = a.store(&mut store, &id, name);
        if let Err(e) = &stored {
            eprintln!("error: the assessment's ranges were not stored: {e}");
        }
        return result.and(stored.map(|_| ()));
    }
    result
}

/// Resumes the therapy (and the virtual patient) from the stored patient's last state, if they have one.
fn resume_from_store<P: PatientHooks>(
    binding: &StoreBinding,
    therapy: &mut plexo_controller::Therapy,
    plant: &mut P,
) -> Result<Option<SessionState>, AppError> {
    let Some((session, text)) = binding.store.last_state(&binding.patient_id)? else {
        println!("patient {}: first stored session (no adaptation state yet)", binding.patient_id);
        return Ok(None);
    };
    let source =
        format!("{} (patient {}, state after session {session})", binding.store.path().display(), binding.patient_id);
    let state: SessionState = toml::from_str(&text).map_err(|e| AppError::Config {
        file: source.clone(),
        key: "(session state)".into(),
        reason: e.to_string(),
    })?;
    apply_state(&state, std::path::Path::new(&source), therapy, plant)?;
    Ok(Some(state))
}

/// Records the session's start and its blocks, and starts the writer of its trials.
fn start_recording(
    mut binding: StoreBinding,
    name: &str,
    model: &Model,
    info: &RecordingInfo,
    parts: &crate::setup::SessionParts,
) -> Result<(Recorder, i64), AppError> {
    let new = NewSession {
        patient_id: binding.patient_id.clone(),
        name: name.to_owned(),
        kind: binding.kind.to_owned(),
        robot: info.robot.clone(),
        protocol: info.protocol.clone(),
        controller: info.controller.clone(),
        controller_toml: std::mem::take(&mut binding.controller_toml),
        seed: info.seed,
        joints: model.joints().iter().map(|j| j.name.clone()).collect(),
        notes: binding.notes.clone(),
        blocks: parts.blocks.iter().map(|b| (b.name.clone(), mode_label(b.mode, b.law), b.targets.len())).collect(),
    };
    let id = binding.store.begin_session(&new)?;
    println!("patient store {}: session {name} of patient {}", binding.store.path().display(), binding.patient_id);
    Ok((Recorder::start(binding.store, id)?, id))
}

/// Waits for the trial writer and records the session's end and state; failures are reported, not returned (the
/// session's own files are already written). Returns the store, unless it failed.
fn finish_recording((recorder, id): (Recorder, i64), end: &str, state_toml: Option<&str>) -> Option<Store> {
    let result = recorder.finish().and_then(|(mut store, report)| {
        store.end_session(id, end, state_toml)?;
        Ok((store, report))
    });
    match result {
        Ok((store, report)) => {
            println!(
                "patient store {}: {} trial writes committed{}",
                store.path().display(),
                report.stored,
                if report.failed > 0 {
                    format!(", {} FAILED (first: {})", report.failed, report.first_error.unwrap_or_default())
                } else {
                    String::new()
                }
            );
            Some(store)
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("error: {e} (the session's files are written; the store misses its end)");
            None
        }
    }
}
