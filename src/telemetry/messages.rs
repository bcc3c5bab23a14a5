//! What flows through the telemetry pipeline, all `Copy` and heap-free:
//!
//! ```text
//! control thread --TickSample--> analysis thread --Message (Sample | Event)--> Rerun writer thread
//! ```
//!
//! The control thread builds one [`TickSample`] per tick (state, command, reference, events); the analysis
//! turns it into the writer's [`Sample`] and [`Event`]s, adding what needs the robot model or a trial's history
//! (hand position, target, smoothness, block statistics).

use plexo_controller::{SafetyOutcome, TherapyEvent};
use plexo_hal::JointArray;

/// Where the runtime loop is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoopPhase {
    /// Sensor check, torque off.
    #[default]
    PreEnable,
    /// The session runs.
    Session,
    /// The final safe stop.
    Stopping,
}

impl LoopPhase {
    /// True once enabled (the session or its final stop): the therapy runs and the hand is tracked.
    pub fn in_session(self) -> bool {
        matches!(self, LoopPhase::Session | LoopPhase::Stopping)
    }
}

/// One control tick as the control thread hands it over: fixed size, `Copy`, no heap. Real-time safe to build.
#[derive(Clone, Copy, Debug)]
pub struct TickSample {
    /// Control tick number.
    pub tick: u64,
    /// Time since the loop started [s].
    pub time: f64,
    /// The loop's phase during this tick.
    pub phase: LoopPhase,
    /// Measured joint positions [rad].
    pub q: JointArray<f64>,
    /// Measured joint velocities [rad/s].
    pub qd: JointArray<f64>,
    /// Reference joint positions [rad].
    pub q_ref: JointArray<f64>,
    /// Reference joint velocities q̇_ref [rad/s] (the desired motion the effort is projected on).
    pub qd_ref: JointArray<f64>,
    /// Commanded joint torques after the safety supervisor [Nm].
    pub tau_cmd: JointArray<f64>,
    /// Estimated patient joint torques (the momentum observer's human torque) [Nm].
    pub tau_patient_est: JointArray<f64>,
    /// Therapy-mode torque (gravity and weight support excluded) [Nm].
    pub tau_mode: JointArray<f64>,
    /// The robot's assistance torque towards the task [Nm]: the mode torque without the friction compensation
    /// of the patient-led modes (`plexo_controller::effort::assistance_torque`).
    pub tau_assist: JointArray<f64>,
    /// True patient joint torques [Nm] (simulation only).
    pub tau_patient_true: Option<JointArray<f64>>,
    /// True voluntary joint torques of the patient [Nm] (simulation only: the ground truth of the effort
    /// estimate, `PatientHooks::true_voluntary_torque`).
    pub tau_voluntary_true: Option<JointArray<f64>>,
    /// Assistance stiffness per joint [Nm/rad].
    pub stiffness: JointArray<f64>,
    /// What the therapy reported this tick (trial and block boundaries).
    pub therapy: TherapyEvent,
    /// The supervisor's outcome when its state changed this tick.
    pub safety: Option<SafetyOutcome>,
}

impl TickSample {
    /// A sample of `dof` zeros at `tick` and `time` [s], without events. Real-time safe.
    pub fn zeros(dof: usize, tick: u64, time: f64) -> Self {
        let zeros = JointArray::splat(dof, 0.0);
        Self {
            tick,
            time,
            phase: LoopPhase::PreEnable,
            q: zeros,
            qd: zeros,
            q_ref: zeros,
            qd_ref: zeros,
            tau_cmd: zeros,
            tau_patient_est: zeros,
            tau_mode: zeros,
            tau_assist: zeros,
            tau_patient_true: None,
            tau_voluntary_true: None,
            stiffness: zeros,
            therapy: TherapyEvent::None,
            safety: None,
        }
    }
}

/// One control tick as the writer logs it. `Copy`, no heap.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Control tick number.
    pub tick: u64,
    /// Time since the session started [s].
    pub time: f64,
    /// Measured joint positions [rad].
    pub q: JointArray<f64>,
    /// Reference joint positions [rad].
    pub q_ref: JointArray<f64>,
    /// Commanded joint torques after the safety supervisor [Nm].
    pub tau_cmd: JointArray<f64>,
    /// Estimated patient joint torques [Nm].
    pub tau_patient_est: JointArray<f64>,
    /// True patient joint torques [Nm] (simulation only).
    pub tau_patient_true: Option<JointArray<f64>>,
    /// Assistance stiffness per joint [Nm/rad].
    pub stiffness: JointArray<f64>,
    /// Assistance: norm of the therapy-mode torque (gravity and weight support excluded) [Nm].
    pub assistance: f64,
    /// Running task-effort share of the current trial so far, W_patient / (W_patient + W_assist) [0–1]
    /// (`plexo_controller::effort`; NaN outside a trial and before any task work).
    pub patient_effort_share: f64,
    /// Current target of the handle in the world [m], if a trial is running.
    pub target: Option<[f64; 3]>,
}

/// Discrete events: trial and block boundaries, safety outcomes. `Copy`, no heap.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A block starts.
    BlockStart {
        /// Block index in the protocol.
        block: usize,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A trial starts towards `target`.
    TrialStart {
        /// Block index.
        block: usize,
        /// Trial index within the block.
        trial: usize,
        /// Target of the handle [m].
        target: [f64; 3],
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A trial ends.
    TrialEnd {
        /// Block index.
        block: usize,
        /// Trial index.
        trial: usize,
        /// Target reached (with dwell) before the timeout.
        success: bool,
        /// Final distance of the handle to the target [m].
        final_error_m: f64,
        /// Trial duration [s].
        duration: f64,
        /// Hand-speed peaks of the reach (smoothness; 1 = one smooth movement).
        peaks: u32,
        /// SPARC of the hand speed (≈ −1.6 for a minimum-jerk reach; NaN without movement).
        sparc: f64,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A block ends.
    BlockEnd {
        /// Block index.
        block: usize,
        /// Trials in the block.
        trials: u32,
        /// Trials that reached the target.
        successes: u32,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// The safety supervisor changed state; `outcome` is its first outcome in the new state.
    Safety {
        /// The supervisor's outcome (state and reason).
        outcome: SafetyOutcome,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
}

/// What the analysis hands to the writer.
// A `Sample` is large (≈ 500 bytes) but boxing it would allocate per message; the channel's slots are sized
// once, before the session.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Message {
    /// One tick.
    Sample(Sample),
    /// An event.
    Event(Event),
}
