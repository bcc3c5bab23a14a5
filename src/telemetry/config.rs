//! What the pipeline is started with ([`TelemetryConfig`], [`Sinks`]) and what it reports ([`TelemetryReport`]).

use std::path::PathBuf;

use plexo_kinematics::Model;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;

use super::analysis::{BlockPlan, TrialSink};

/// Where the recording goes.
#[derive(Clone, Debug, Default)]
pub struct Sinks {
    /// Save to this `.rrd` file.
    pub save: Option<PathBuf>,
    /// Spawn a viewer bound to loopback.
    pub spawn: bool,
    /// Connect to a running viewer at this gRPC URL (`rerun+http://127.0.0.1:9876/proxy`).
    pub connect: Option<String>,
    /// Where each finished trial goes besides the trial table: the patient store's writer
    /// ([`crate::store::recorder`]), `None` without a store.
    pub trials: Option<TrialSink>,
}

/// What the recording says about its session, as the viewer shows it (recording properties). Only the patient's
/// pseudonymous id: never a name, never the path of the patient file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordingInfo {
    /// The robot (embedded name or URDF path).
    pub robot: String,
    /// The protocol (embedded name or file).
    pub protocol: String,
    /// The patient's pseudonymous id.
    pub patient: String,
    /// The controller configuration (embedded or file).
    pub controller: String,
    /// Seed of the simulation's random parts (none on hardware).
    pub seed: Option<u64>,
}

/// Default rate of the joint time series in a recording [Hz]: what a viewer needs to follow a reach (the loop's
/// 1 kHz on request, `--telemetry-rate 1000`).
pub const DEFAULT_TELEMETRY_RATE: f64 = 250.0;

/// Static context the analysis and the writer need.
pub struct TelemetryConfig {
    /// Recording name (application id) and session id.
    pub session_name: String,
    /// Model for link poses and the hand (with the patient's payloads or without: only kinematics are used).
    pub model: Model,
    /// The URDF text, for link geometry.
    pub urdf: String,
    /// Directory of the URDF file: its mesh file names are resolved against it (`None`: an embedded robot, whose
    /// visuals are primitives).
    pub urdf_dir: Option<PathBuf>,
    /// The patient's arm, drawn in the 3D view as capsules attached to the robot's links (`None`: not drawn).
    pub patient_arm: Option<ArmAnthropometrics>,
    /// Name of the handle frame.
    pub handle_frame: String,
    /// The protocol's blocks, in order.
    pub blocks: Vec<BlockPlan>,
    /// Control period [s].
    pub period: f64,
    /// Every how many ticks the 3D arm pose (moving links, hand, target) is logged.
    pub pose_every: u64,
    /// Rate of the joint and session time series in the recording [Hz]: every tick at or above the loop's rate,
    /// else every n-th tick, n = round(loop rate / this rate) (the analysis sees every tick regardless).
    pub telemetry_rate: f64,
    /// The recording's properties.
    pub info: RecordingInfo,
    /// Capacity of each channel [messages].
    pub capacity: usize,
    /// The control loop is paced at wall clock: a writer that falls behind loses recording messages (counted)
    /// instead of holding up the analysis. Unpaced: nothing is lost.
    pub paced: bool,
    /// Sinks.
    pub sinks: Sinks,
}

/// What the pipeline did.
#[derive(Clone, Debug, Default)]
pub struct TelemetryReport {
    /// Samples the writer received.
    pub samples: u64,
    /// Events the writer received.
    pub events: u64,
    /// Where the recording was saved, if it was.
    pub saved_to: Option<PathBuf>,
    /// Sends of the control thread that waited for room in the channel (lossless sender of an unpaced run).
    pub waits: u64,
    /// Samples logged as time-series rows (every n-th sample, see [`TelemetryConfig::telemetry_rate`]).
    pub series_rows: u64,
    /// Rate of the logged time series [Hz] (the requested rate rounded to a divisor of the loop's rate).
    pub series_rate: f64,
    /// Wall time the writer thread spent logging and flushing, waiting for messages excluded [s].
    pub write_seconds: f64,
    /// Messages lost: samples the control thread dropped (channel full or pipeline stopped) plus recording
    /// messages the analysis dropped for a writer that fell behind.
    pub dropped: u64,
    /// What each live viewer's stream did (`--spawn`, `--connect`).
    pub live: Vec<LiveReport>,
}

/// What one live viewer's stream did ([`super::live`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveReport {
    /// The viewer's address.
    pub url: String,
    /// Messages handed to the viewer's connection.
    pub forwarded: u64,
    /// Messages the live stream dropped (the viewer did not read, was gone or unreachable).
    pub dropped: u64,
    /// The live stream was given up during the session (one WARN said why).
    pub failed: bool,
}
