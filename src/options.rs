//! The output and real-time options `sim` and `run` share (`--save`, `--spawn`, `--resume`, `--fifo-priority`,
//! …) and how they are applied: the telemetry's sinks and the control thread's real-time settings.

use std::path::{Path, PathBuf};

use clap::Args;
use plexo_kinematics::Model;

use crate::AppError;
use crate::realtime::{RealtimeReport, RealtimeRequest};
use crate::setup::SessionParts;
use crate::telemetry::{RecordingInfo, Sinks, Telemetry, TelemetryConfig};

/// Default of `--pose-every` [ticks]: the 3D view at 25 Hz on a 1 kHz loop. At 100 Hz (every 10 ticks, before
/// issue 14) the link transforms were 10 % of a 1 kHz recording (BENCHMARKS.md).
pub const DEFAULT_POSE_EVERY: u64 = 40;

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
    /// Log the 3D view (link poses, hand, target) every N ticks: 40 = 25 Hz on a 1 kHz loop, a film's frame rate
    /// (the time series have their own rate, --telemetry-rate; the drawn hand paths take a point every 10 ticks).
    #[arg(long, default_value_t = DEFAULT_POSE_EVERY, value_parser = clap::value_parser!(u64).range(1..))]
    pub pose_every: u64,
    /// Rate of the joint and session time series in the recording [Hz]: 250 (default) is plenty to view a reach;
    /// 1000 keeps every tick of a 1 kHz loop (about 4 times the file size). A rate that does not divide the loop's
    /// rate is rounded to one that does (every n-th tick).
    #[arg(long, value_name = "HZ", default_value_t = crate::telemetry::DEFAULT_TELEMETRY_RATE, value_parser = positive_rate)]
    pub telemetry_rate: f64,
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
    /// Directory of the outputs no other option names [default: out]: the recording of `sim`
    /// (`<DIR>/<session>.rrd`) and, without a recording (`--no-save`), the summary (`<session>.summary.json`),
    /// the trial table (`<session>.trials.csv`) and, for `run`, the state.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where to write this session's state for `--resume` (default: beside the recording as
    /// `<recording>.state.toml`; `plexo run` without a recording: `out/<session>.state.toml`).
    #[arg(long, value_name = "STATE_FILE")]
    pub state: Option<PathBuf>,
    /// A patient of the store (`--db`; `plexo patient add`): the session loads their spec (and, for `sim`,
    /// their virtual profile) and their last adaptation state (unless `--resume` names a file), stores each
    /// trial as it ends and the new state at the end. The id is the session's patient id in names and
    /// recordings. Conflicts with `--patient`.
    #[arg(long, value_name = "ID", value_parser = pseudonymous_id, conflicts_with = "patient")]
    pub patient_id: Option<String>,
    /// The patient store (SQLite) of `--patient-id`.
    #[arg(long, value_name = "FILE", default_value = crate::store::DEFAULT_DB)]
    pub db: PathBuf,
    /// Run a range-of-motion assessment instead of a therapy protocol (`--patient-id` only): the embedded
    /// `rom-assessment`, or an assessment FILE (assets/protocols/rom-assessment.toml). The supervisor's walls
    /// open by the file's `widen` (at most 15 degrees) beyond the stored range, within the robot's limits, with
    /// velocity and torque limits below therapy's; after a completed run the measured ranges become the
    /// patient's stored range of motion (with its history). A stopped or aborted run stores nothing.
    #[arg(
        long,
        value_name = "FILE",
        num_args = 0..=1,
        default_missing_value = crate::assessment::DEFAULT_ASSESSMENT,
        requires = "patient_id",
        conflicts_with = "protocol"
    )]
    pub assess_rom: Option<String>,
    /// The operator's notes on this session, stored with it (`--patient-id` only; never a name).
    #[arg(long, value_name = "TEXT", requires = "patient_id")]
    pub notes: Option<String>,
}

impl OutputArgs {
    /// The patient id of this session's outputs: `--patient-id`, else the patient's own pseudonymous id.
    pub fn patient_id<'a>(&'a self, patient: &'a crate::setup::Patient) -> &'a str {
        self.patient_id.as_deref().unwrap_or_else(|| patient.name())
    }
}

/// Parses `--patient-id`: 1–64 characters of `A–Z a–z 0–9 - _ .` (the rule of `PatientSpec::id`), so that a
/// name with spaces or a path cannot slip into file names.
pub fn pseudonymous_id(s: &str) -> Result<String, String> {
    crate::store::validate_patient_id(s).map(|()| s.to_owned())
}

/// Starts the telemetry pipeline with the sinks the options ask for. `default_save`: save to out/<session>.rrd
/// unless `--no-save` (sim); hardware runs save only when asked. `period`: the control period [s]; `paced`:
/// the loop runs at wall clock; `info`: the recording's properties; `trials`: the patient store's writer. Not
/// real-time safe.
#[allow(clippy::too_many_arguments)]
pub fn start_telemetry(
    args: &OutputArgs,
    session: &str,
    info: RecordingInfo,
    model: &Model,
    urdf: &str,
    parts: &SessionParts,
    default_save: bool,
    period: f64,
    paced: bool,
    trials: Option<crate::telemetry::TrialSink>,
) -> Result<Telemetry, AppError> {
    let save = match (&args.save, args.no_save, default_save) {
        (Some(p), _, _) => Some(p.clone()),
        (None, false, true) => Some(args.out_dir().join(format!("{session}.rrd"))),
        _ => None,
    };
    Telemetry::start(TelemetryConfig {
        session_name: session.to_owned(),
        model: model.clone(),
        urdf: urdf.to_owned(),
        urdf_dir: crate::setup::robot_dir(&info.robot),
        patient_arm: Some(parts.arm),
        handle_frame: model.frames()[parts.handle.0].name.clone(),
        blocks: parts.blocks.clone(),
        period,
        pose_every: args.pose_every,
        telemetry_rate: args.telemetry_rate,
        info,
        capacity: args.telemetry_capacity,
        paced,
        sinks: Sinks { save, spawn: args.spawn, connect: args.connect.clone(), trials },
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

/// Parses a command-line rate [Hz]: a finite number above zero.
pub fn positive_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite rate above 0 Hz")),
        Err(e) => Err(format!("`{text}` is not a number ({e}); expected a rate in Hz above 0")),
    }
}

/// Parses a command-line duration [s]: a finite number above zero (`nan`, `inf` and `0` are refused, so a typo
/// never turns into an unlimited session).
pub fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        Ok(v) => Err(format!("{v} is not a finite number of seconds above 0")),
        Err(e) => Err(format!("`{text}` is not a number ({e}); expected a finite number of seconds above 0")),
    }
}

impl OutputArgs {
    /// The directory of the outputs no other option names (`--out`, default `out`).
    pub fn out_dir(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| PathBuf::from("out"))
    }

    /// Refuses, before any file is created, an output path given for two roles or equal to an input: `inputs`
    /// and `extra_outputs` (e.g. `--candump`) as `(option, path)`, besides `--resume` (an input) and `--save`
    /// (with the summary, trial table and state files written beside it) and `--state` (outputs). See
    /// [`crate::files::check_distinct`].
    pub fn check_paths(&self, inputs: &[(&str, &Path)], extra_outputs: &[(&str, &Path)]) -> Result<(), AppError> {
        let mut all_inputs = inputs.to_vec();
        if self.patient_id.is_some() {
            all_inputs.push(("--db", &self.db));
        }
        if let Some(resume) = &self.resume {
            all_inputs.push(("--resume", resume));
        }
        let summary = self.save.as_ref().map(|p| p.with_extension("summary.json"));
        let trials = self.save.as_ref().map(|p| p.with_extension("trials.csv"));
        let state_beside = self.save.as_ref().filter(|_| self.state.is_none()).map(|p| p.with_extension("state.toml"));
        let mut outputs: Vec<(&str, &Path)> = extra_outputs.to_vec();
        outputs.extend(self.save.as_deref().map(|p| ("--save", p)));
        outputs.extend(summary.as_deref().map(|p| ("the summary beside --save", p)));
        outputs.extend(trials.as_deref().map(|p| ("the trial table beside --save", p)));
        outputs.extend(state_beside.as_deref().map(|p| ("the state beside --save", p)));
        outputs.extend(self.state.as_deref().map(|p| ("--state", p)));
        crate::files::check_distinct(&all_inputs, &outputs)
    }
}

/// The `(option, path)` of each argument that names an existing file (an embedded default's name is none).
pub fn file_inputs<'a>(args: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a Path)> {
    args.iter().map(|(role, a)| (*role, Path::new(*a))).filter(|(_, p)| p.exists()).collect()
}
