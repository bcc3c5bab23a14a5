//! What the pipeline is started with ([`TelemetryConfig`], [`Sinks`]) and what it reports ([`TelemetryReport`]).

use std::path::PathBuf;

use plexo_kinematics::Model;

use super::analysis::BlockPlan;

/// Where the recording goes.
#[derive(Clone, Debug, Default)]
pub struct Sinks {
    /// Save to this `.rrd` file.
    pub save: Option<PathBuf>,
    /// Spawn a viewer bound to loopback.
    pub spawn: bool,
    /// Connect to a running viewer at this gRPC URL (`rerun+http://127.0.0.1:9876/proxy`).
    pub connect: Option<String>,
}

/// Static context the analysis and the writer need.
pub struct TelemetryConfig {
    /// Recording name (application id) and session id.
    pub session_name: String,
    /// Model for link poses and the hand (with the patient's payloads or without: only kinematics are used).
    pub model: Model,
    /// The URDF text, for link geometry.
    pub urdf: String,
    /// Name of the handle frame.
    pub handle_frame: String,
    /// The protocol's blocks, in order.
    pub blocks: Vec<BlockPlan>,
    /// Control period [s].
    pub period: f64,
    /// Every how many ticks the 3D arm pose is logged (time series are logged every tick).
    pub pose_every: u64,
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
    /// Messages lost: samples the control thread dropped (channel full or pipeline stopped) plus recording
    /// messages the analysis dropped for a writer that fell behind.
    pub dropped: u64,
}
