//! The runtime loop, one for simulation and hardware (ros2_control / libfranka style): the runtime owns the loop
//! and every cycle is
//!
//! ```text
//! robot.read(&mut state)                                    // sensors
//! (cmd, event) = therapy.update(&state, t)                  // session + controller: a pure step
//! outcome = supervisor.apply(&state, report, &mut cmd, now) // ALWAYS, in every state and mode
//! robot.write(&cmd)                                         // only the supervised command reaches the joints
//! ```
//!
//! at the configured rate with absolute deadlines (`--realtime`/hardware) or as fast as possible (simulation).
//! The tick does control and nothing else: it hands one fixed-size [`TickSample`] (state, command, reference,
//! events) to the telemetry pipeline over a bounded channel, where hand paths, trial smoothness and the block
//! table are computed ([`crate::telemetry`]). It allocates nothing (counting-allocator test
//! `tests/runtime_no_alloc.rs`); progress goes through an atomic.
//!
//! Phases: a sensor check with the supervisor disabled (`pre_enable`), the enable (the controller re-latches on
//! the measured state, the supervisor fades torque in from zero), the session, and the stop: a category-2 safe
//! stop (damped hold with gravity and weight support) until standstill, then torque off.

use std::sync::atomic::Ordering;
use std::time::Duration;

use plexo_controller::{SafetyOutcome, SafetyState, SafetySupervisor, StopReason, Therapy, TherapyEvent};
use plexo_hal::{JointCommand, JointState, Lifecycle, PatientHooks, RobotError};

use crate::AppError;
use crate::realtime::{monotonic_ns, sleep_until_ns};
pub use crate::signals::LoopSignals;
use crate::telemetry::TelemetrySender;
use crate::telemetry::analysis::relaxed_block;
use crate::telemetry::messages::{LoopPhase, TickSample};
use crate::timing::{LoopStats, TimingSummary};

/// Loop settings.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Control period.
    pub period: Duration,
    /// Pace at wall clock with absolute deadlines (hardware always; simulation with `--realtime`).
    pub paced: bool,
    /// Ticks with the supervisor disabled before enabling: sensors are read and checked, no torque [ticks].
    pub pre_enable_ticks: u64,
    /// Stop the session after this much session time [s].
    pub max_session_time: Option<f64>,
    /// Stop the session after this many completed trials.
    pub max_trials: Option<usize>,
    /// After a spasm release, resume automatically after this long [s] (simulation; in the clinic the
    /// therapist resumes). `None`: the release stops the session.
    pub auto_resume_after: Option<f64>,
    /// Longest time the final safe stop may take before torque is switched off anyway [s].
    pub stop_timeout: f64,
    /// The wall clock that paces the loop and that the supervisor's watchdog measures whenever the loop is paced
    /// or drives hardware ([`LoopClock::MONOTONIC`]; tests inject a stall with their own).
    pub clock: LoopClock,
}

/// The clock of a paced loop: its time [ns] and an absolute sleep to a deadline [ns]. Plain function pointers
/// (no allocation, `Copy`) so that a test can substitute a clock it advances itself.
#[derive(Clone, Copy)]
pub struct LoopClock {
    /// Current time [ns], monotonic.
    pub now_ns: fn() -> u64,
    /// Returns at (or after) the absolute time `deadline` [ns]; at once if it has passed.
    pub sleep_until_ns: fn(u64),
}

impl LoopClock {
    /// CLOCK_MONOTONIC with `clock_nanosleep(TIMER_ABSTIME)` ([`monotonic_ns`], [`sleep_until_ns`]).
    pub const MONOTONIC: LoopClock = LoopClock { now_ns: monotonic_ns, sleep_until_ns };
}

impl std::fmt::Debug for LoopClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let monotonic = std::ptr::fn_addr_eq(self.now_ns, LoopClock::MONOTONIC.now_ns);
        f.write_str(if monotonic { "LoopClock::MONOTONIC" } else { "LoopClock(custom)" })
    }
}

impl LoopConfig {
    /// Defaults for a period: 0.5 s sensor check, 3 s stop timeout, no limits, unpaced.
    pub fn new(period: Duration) -> Self {
        let per_second = (1.0 / period.as_secs_f64()).round() as u64;
        Self {
            period,
            paced: false,
            pre_enable_ticks: per_second / 2,
            max_session_time: None,
            max_trials: None,
            auto_resume_after: Some(3.0),
            stop_timeout: 3.0,
            clock: LoopClock::MONOTONIC,
        }
    }
}

/// How the session ended.
#[derive(Clone, Debug, PartialEq)]
pub enum SessionEnd {
    /// Every block of the protocol ran.
    Completed,
    /// `--trials` reached.
    TrialLimit,
    /// `--duration` reached.
    TimeLimit,
    /// The operator stopped (stop request).
    OperatorStop,
    /// A signal (SIGINT = Ctrl-C, SIGTERM, SIGHUP; the number) stopped the session: category-2 stop, then torque
    /// off, as for an operator stop.
    Signal(i32),
    /// A second signal during the stop (the number): torque was switched off at once (category-0 stop).
    SignalTorqueOff(i32),
    /// The safety supervisor stopped the session (a safe stop or a fault latched).
    Safety(StopReason),
    /// The backend reported an error (read/write failed, drive fault): torque was switched off.
    Robot(String),
}

impl SessionEnd {
    /// True for an orderly end (complete, a requested limit, or an operator or signal stop).
    pub fn is_orderly(&self) -> bool {
        matches!(
            self,
            SessionEnd::Completed
                | SessionEnd::TrialLimit
                | SessionEnd::TimeLimit
                | SessionEnd::OperatorStop
                | SessionEnd::Signal(_)
        )
    }
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Completed => write!(f, "completed"),
            SessionEnd::TrialLimit => write!(f, "trial limit reached"),
            SessionEnd::TimeLimit => write!(f, "time limit reached"),
            SessionEnd::OperatorStop => write!(f, "stopped by the operator"),
            SessionEnd::Signal(signal) => {
                write!(f, "stopped by {} (controlled stop, then torque off)", crate::signals::name(*signal))
            }
            SessionEnd::SignalTorqueOff(signal) => write!(
                f,
                "STOPPED BY A SECOND {}: torque switched off at once (category-0 stop)",
                crate::signals::name(*signal)
            ),
            SessionEnd::Safety(reason) => write!(f, "SAFETY STOP: {reason:?}"),
            SessionEnd::Robot(e) => write!(f, "ROBOT ERROR: {e}"),
        }
    }
}

impl SessionEnd {
    /// Maps a session end to the process result: `Ok` for an orderly end, [`AppError::Signal`] for a stop by a
    /// signal (the process exits with 128 + the signal's number), else [`AppError::SessionAborted`].
    pub fn into_result(self) -> Result<(), AppError> {
        match self {
            SessionEnd::Signal(signal) | SessionEnd::SignalTorqueOff(signal) => {
                Err(AppError::Signal { signal, end: self.to_string() })
            }
            end if end.is_orderly() => Ok(()),
            end => Err(AppError::SessionAborted(end.to_string())),
        }
    }
}

/// Everything the loop drives. Built by `sim`/`run`, consumed by [`run_session`]. The backend is any [`Robot`]
/// with the simulation hooks of [`PatientHooks`] (a simulated plant implements them; hardware is wrapped in
/// [`plexo_hal::WithoutPatient`]), so the runtime never names a simulator type.
pub struct Runtime<P: PatientHooks> {
    /// The backend.
    pub plant: P,
    /// Session + controller.
    pub therapy: Therapy,
    /// The supervisor every command goes through.
    pub supervisor: SafetySupervisor,
}

/// Result of [`run_session`].
#[derive(Debug)]
pub struct SessionReport {
    /// How it ended.
    pub end: SessionEnd,
    /// Trials completed.
    pub trials: usize,
    /// Loop timing, the tick's own compute time included.
    pub timing: TimingSummary,
    /// Control ticks run (all phases).
    pub ticks: u64,
    /// Session time (from enable) [s].
    pub session_time: f64,
    /// Supervisor counters.
    pub safety: plexo_controller::SafetyStats,
    /// Ticks in normal operation (supervisor `Active`: soft start, compliant release and stops excluded) in
    /// which the supervisor's shaping changed the command (walls, rate limit, saturation, velocity fade). Not
    /// [`plexo_controller::SafetyStats::limited_ticks`], which also counts the soft start's ticks.
    pub active_ticks_limited: u64,
}

enum Phase {
    PreEnable,
    Session,
    Stopping { since: f64 },
}

impl Phase {
    fn loop_phase(&self) -> LoopPhase {
        match self {
            Phase::PreEnable => LoopPhase::PreEnable,
            Phase::Session => LoopPhase::Session,
            Phase::Stopping { .. } => LoopPhase::Stopping,
        }
    }
}

/// Runs one session on `rt` until the protocol ends, a limit, an operator stop or a safety stop; always ends
/// with the robot torque-free (disabled, or e-stopped on a backend error). Real-time safe inside the loop;
/// allocation happens only before and after it.
pub fn run_session<P: PatientHooks>(
    rt: &mut Runtime<P>,
    config: &LoopConfig,
    telemetry: &TelemetrySender,
    signals: &LoopSignals,
) -> Result<SessionReport, AppError> {
    let n = rt.plant.dof();
    let dt = config.period.as_secs_f64();
    let mut stats = LoopStats::new();
    let mut state = JointState::zeros(n);
    let mut trials_done = 0usize;
    let mut active_ticks_limited = 0u64;
    let mut last_safety = SafetyState::Disabled;
    let mut release_since: Option<f64> = None;
    let mut end: Option<SessionEnd> = None;

    let mut phase = Phase::PreEnable;
    let mut tick: u64 = 0;
    let mut session_t0 = f64::INFINITY; // set at enable
    if config.paced
        && let Err(e) = crate::realtime::minimize_timer_slack()
    {
        tracing::warn!("timer slack not reduced ({e}): every wake-up may be up to 50 us late");
    }
    let clock = config.clock;
    let wall_start = (clock.now_ns)();
    let period_ns = config.period.as_nanos() as u64;
    // The watchdog's clock: simulated time only for an unpaced simulation (no wall clock to keep up with). A
    // paced loop is measured at wall clock, so a stalled process (`kill -STOP`, a page fault storm) stops the
    // session even when the plant is simulated (`run --emulate`, `sim --realtime`).
    let wall_watchdog = config.paced || !rt.plant.is_simulated();
    let supervisor_now = |state: &JointState| {
        if wall_watchdog { Duration::from_nanos((clock.now_ns)()) } else { Duration::from_secs(1) + state.stamp }
    };

    loop {
        // --- pace
        let deadline = wall_start + tick * period_ns;
        let lateness = if config.paced {
            (clock.sleep_until_ns)(deadline);
            Duration::from_nanos((clock.now_ns)().saturating_sub(deadline))
        } else {
            Duration::ZERO
        };
        let work_start = monotonic_ns();
        let time = tick as f64 * dt;
        if signals.torque_off_now.load(Ordering::Relaxed) {
            rt.supervisor.estop();
            let signal = signals.stop_signal.load(Ordering::Relaxed);
            end = Some(match rt.plant.estop() {
                Ok(()) => SessionEnd::SignalTorqueOff(signal),
                Err(e) => SessionEnd::Robot(format!("{}{}", SessionEnd::SignalTorqueOff(signal), estop_note(Err(e)))),
            });
            break;
        }

        // --- read
        let read = rt.plant.read(&mut state);
        let read_done = monotonic_ns();
        let now = supervisor_now(&state);
        if let Err(e) = read {
            // The supervisor cannot act on a state it does not have: torque off at once.
            rt.supervisor.estop();
            let estop = estop_note(rt.plant.estop());
            end = Some(SessionEnd::Robot(format!("read failed ({:?}): {e}{estop}", e.kind())));
            break;
        }

        // --- update (the controller only runs once enabled; before, the command is zero)
        let (mut cmd, event) = match phase {
            Phase::PreEnable => (JointCommand::zeros(n), TherapyEvent::None),
            Phase::Session | Phase::Stopping { .. } => rt.therapy.update(&state, time - session_t0),
        };

        // --- safety: every tick, every phase
        let outcome = rt.supervisor.apply(&state, rt.therapy.controller().report(), &mut cmd, now);

        // --- write
        let write_start = monotonic_ns();
        let written = rt.plant.write(&cmd);
        let mut backend_ns = monotonic_ns().saturating_sub(write_start);
        if let Err(e) = written {
            rt.supervisor.estop();
            let estop = estop_note(rt.plant.estop());
            end = Some(SessionEnd::Robot(format!("write failed ({:?}): {e}{estop}", e.kind())));
            break;
        }
        if matches!(rt.plant.lifecycle(), Lifecycle::Fault | Lifecycle::EStopped) {
            rt.supervisor.estop();
            end = Some(SessionEnd::Robot(format!("backend entered {:?}", rt.plant.lifecycle())));
            break;
        }

        // --- bookkeeping (allocation-free); the sample is built before the phase transitions change the reference
        if matches!(outcome, SafetyOutcome::Active { limited: true }) {
            active_ticks_limited += 1;
        }
        let safety_state = rt.supervisor.state();
        let safety_changed = safety_state != last_safety;
        last_safety = safety_state;
        let session_time = time - session_t0;
        if matches!(phase, Phase::Session | Phase::Stopping { .. }) {
            signals.session_ms.store((session_time * 1000.0) as u64, Ordering::Relaxed);
            if let TherapyEvent::TrialEnded(_) = event {
                trials_done += 1;
            }
            if let Err(e) = on_therapy_event(rt, &event) {
                // The session cannot go on as planned: torque off at once, as on any backend failure (returning
                // from here would leave the drives enabled).
                rt.supervisor.estop();
                let estop = estop_note(rt.plant.estop());
                end = Some(SessionEnd::Robot(format!("{e}{estop}")));
                break;
            }
        }
        let sample = tick_sample(rt, &state, &cmd, &phase, event, safety_changed.then_some(outcome), time, tick);

        // --- phase transitions (`finished`: this tick's sample is the last)
        let mut finished = false;
        match phase {
            Phase::PreEnable => {
                if tick + 1 >= config.pre_enable_ticks {
                    // Before enable every drive is (correctly) not enabled; any other fault flag refuses the enable.
                    let faulted = state.flags.iter().position(|f| {
                        let mut f = *f;
                        f.remove(plexo_hal::JointFlags::NOT_ENABLED);
                        f.is_fault()
                    });
                    if let Some(joint) = faulted {
                        end = Some(SessionEnd::Robot(format!(
                            "joint {} reports {:?} before enable",
                            rt.plant.joints()[joint].name,
                            state.flags[joint]
                        )));
                        finished = true;
                    } else {
                        let enable_start = monotonic_ns();
                        rt.plant.enable().map_err(|e| AppError::Robot(format!("enable failed: {e}")))?;
                        rt.plant.read(&mut state).map_err(|e| AppError::Robot(format!("read after enable: {e}")))?;
                        backend_ns += monotonic_ns().saturating_sub(enable_start);
                        // The reference holds the measured posture; the supervisor fades the hold torque in.
                        rt.therapy.start(&state);
                        rt.supervisor.request_enable().map_err(|e| AppError::Robot(format!("enable refused: {e}")))?;
                        session_t0 = time + dt;
                        phase = Phase::Session;
                    }
                }
            }
            Phase::Session => {
                let limit = if matches!(event, TherapyEvent::SessionEnded) {
                    Some(SessionEnd::Completed)
                } else if config.max_trials.is_some_and(|m| trials_done >= m) {
                    Some(SessionEnd::TrialLimit)
                } else if config.max_session_time.is_some_and(|m| session_time >= m) {
                    Some(SessionEnd::TimeLimit)
                } else if signals.stop.load(Ordering::Relaxed) {
                    match signals.stop_signal.load(Ordering::Relaxed) {
                        0 => Some(SessionEnd::OperatorStop),
                        signal => Some(SessionEnd::Signal(signal)),
                    }
                } else {
                    None
                };
                match outcome {
                    SafetyOutcome::SafeStop { reason, .. } | SafetyOutcome::Fault { reason } => {
                        end = Some(SessionEnd::Safety(reason));
                        phase = Phase::Stopping { since: time };
                    }
                    SafetyOutcome::CompliantRelease { .. } => {
                        let since = *release_since.get_or_insert(time);
                        match config.auto_resume_after {
                            Some(wait) if time - since >= wait => {
                                rt.therapy.start(&state);
                                rt.supervisor
                                    .request_resume()
                                    .map_err(|e| AppError::Robot(format!("resume refused: {e}")))?;
                                release_since = None;
                            }
                            Some(_) => {}
                            None => {
                                end = Some(SessionEnd::Safety(StopReason::OperatorStop));
                                rt.supervisor.request_stop(now);
                                phase = Phase::Stopping { since: time };
                            }
                        }
                    }
                    _ => {}
                }
                if let (Some(limit), Phase::Session) = (limit, &phase) {
                    end = Some(limit);
                    rt.supervisor.request_stop(now);
                    phase = Phase::Stopping { since: time };
                }
            }
            Phase::Stopping { since } => {
                let standstill = matches!(outcome, SafetyOutcome::SafeStop { standstill: true, .. });
                if standstill || outcome.torque_off() || time - since >= config.stop_timeout {
                    finished = true;
                }
            }
        }

        // --- hand the sample over (an unpaced simulation may wait here for the analysis: not compute)
        let compute_ns = monotonic_ns().saturating_sub(read_done).saturating_sub(backend_ns);
        telemetry.send(sample);
        if finished {
            break;
        }
        let work = Duration::from_nanos(monotonic_ns().saturating_sub(work_start));
        stats.record(lateness, work, Duration::from_nanos(compute_ns), config.period);
        tick += 1;
    }

    // --- torque off (not real-time from here on)
    if rt.supervisor.state() != SafetyState::Fault
        && let Err(e) = rt.supervisor.request_disable()
    {
        // The supervisor refuses a disable only from states that already give zero torque (Fault).
        tracing::warn!("supervisor disable refused ({e}); torque is removed below regardless");
    }
    let mut zero = JointCommand::zeros(n);
    let now = supervisor_now(&state);
    rt.supervisor.apply(&state, rt.therapy.controller().report(), &mut zero, now);
    if rt.plant.lifecycle() == Lifecycle::Active {
        if let Err(e) = rt.plant.write(&zero) {
            tracing::error!("writing the final zero command failed ({e}); disabling anyway");
        }
        if let Err(e) = rt.plant.disable() {
            tracing::error!("disable failed ({e}); e-stopping");
            if let Err(e) = rt.plant.estop() {
                tracing::error!("e-stop failed too ({e}): switch the drives' power off");
                eprintln!("error: the robot could not be e-stopped ({e}): switch the drives' power off");
            }
        }
    }
    Ok(SessionReport {
        end: end.unwrap_or(SessionEnd::Completed),
        trials: trials_done,
        timing: stats.summary(),
        ticks: tick,
        session_time: if session_t0.is_finite() { (tick as f64 * dt - session_t0).max(0.0) } else { 0.0 },
        safety: rt.supervisor.stats(),
        active_ticks_limited,
    })
}

/// Text appended to a backend failure when the e-stop that followed it failed too (empty when it worked).
fn estop_note<E: std::fmt::Display>(result: Result<(), E>) -> String {
    match result {
        Ok(()) => String::new(),
        Err(e) => format!("; the e-stop failed too ({e}): switch the drives' power off"),
    }
}

/// Forwards a trial's start and end to the virtual patient (simulation; no-op on hardware). Real-time safe.
fn on_therapy_event<P: PatientHooks>(rt: &mut Runtime<P>, event: &TherapyEvent) -> Result<(), AppError> {
    match *event {
        TherapyEvent::TrialStarted { block, trial } => {
            let blocks = rt.therapy.session().blocks();
            if relaxed_block(blocks.iter().map(|b| b.spec.mode)) == Some(block) {
                // The relaxed block: the patient is asked to relax while the robot moves the arm (the effort
                // estimate's passive-tissue calibration, crate::telemetry::analysis): no goal to move to.
                return Ok(());
            }
            // One source of truth for the trial: the plan the reference follows (its goal, and its movement time
            // after the progression's duration scale), so the patient is asked for the movement the robot guides.
            let (goal, duration) = match rt.therapy.current_trial_plan() {
                Some(plan) => (plan.goal, plan.duration),
                None => (blocks[block].trial_targets[trial], blocks[block].spec.movement_time),
            };
            rt.plant.patient_goal(&goal, duration).map_err(|e| patient_error("goal", &e))?;
        }
        TherapyEvent::TrialEnded(record) => {
            // The trial's joint-space RMS tracking error [rad] drives the virtual patient's learning and slacking.
            let error = record.metrics.rms_error.iter().map(|e| e * e).sum::<f64>().sqrt();
            rt.plant
                .patient_trial_end(error, record.reached, record.metrics.duration.max(1e-3))
                .map_err(|e| patient_error("trial end", &e))?;
        }
        _ => {}
    }
    Ok(())
}

/// A virtual patient's refusal of a hook call (`what`), e.g. a non-finite goal.
fn patient_error(what: &str, e: &dyn std::fmt::Display) -> AppError {
    AppError::Robot(format!("virtual patient ({what}): {e}"))
}

/// This tick's sample for the telemetry pipeline. Real-time safe.
#[allow(clippy::too_many_arguments)]
fn tick_sample<P: PatientHooks>(
    rt: &Runtime<P>,
    state: &JointState,
    cmd: &JointCommand,
    phase: &Phase,
    therapy: TherapyEvent,
    safety: Option<SafetyOutcome>,
    time: f64,
    tick: u64,
) -> TickSample {
    let controller = rt.therapy.controller();
    let mut tau_assist = plexo_hal::JointArray::splat(state.position.len(), 0.0);
    plexo_controller::effort::assistance_torque(controller, &state.velocity, &mut tau_assist);
    TickSample {
        tick,
        time,
        phase: phase.loop_phase(),
        q: state.position,
        qd: state.velocity,
        q_ref: controller.reference().position,
        qd_ref: controller.reference().velocity,
        tau_cmd: cmd.torque,
        tau_patient_est: *controller.patient_torque(),
        tau_mode: *controller.mode_torque(),
        tau_assist,
        tau_patient_true: rt.plant.true_patient_torque(),
        tau_voluntary_true: rt.plant.true_voluntary_torque(),
        stiffness: controller.assist_stiffness(),
        therapy,
        safety,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::setup;
    use crate::telemetry::{Sinks, Telemetry, TelemetryConfig};
    use plexo_hal::Robot;

    /// A backend whose virtual patient refuses every trial goal.
    struct RefusingPatient(plexo_sim::ArticulatedPlant);

    impl Robot for RefusingPatient {
        type Error = plexo_sim::SimError;
        fn dof(&self) -> usize {
            self.0.dof()
        }
        fn joints(&self) -> &[plexo_hal::JointInfo] {
            self.0.joints()
        }
        fn lifecycle(&self) -> Lifecycle {
            self.0.lifecycle()
        }
        fn read(&mut self, state: &mut JointState) -> Result<(), Self::Error> {
            self.0.read(state)
        }
        fn write(&mut self, command: &JointCommand) -> Result<(), Self::Error> {
            self.0.write(command)
        }
        fn enable(&mut self) -> Result<(), Self::Error> {
            self.0.enable()
        }
        fn disable(&mut self) -> Result<(), Self::Error> {
            self.0.disable()
        }
        fn estop(&mut self) -> Result<(), Self::Error> {
            self.0.estop()
        }
        fn reset(&mut self) -> Result<(), Self::Error> {
            self.0.reset()
        }
    }

    impl PatientHooks for RefusingPatient {
        fn is_simulated(&self) -> bool {
            true
        }
        fn patient_goal(&mut self, goal: &plexo_hal::JointArray<f64>, _: f64) -> Result<(), Self::Error> {
            // A NaN duration is refused by the virtual patient, naming the value.
            self.0.patient_goal(goal, f64::NAN)
        }
    }

    /// The default center-out session on the moderate patient for `plant` (plexo-arm4), and its telemetry
    /// pipeline (no sink, unpaced), as `plexo sim` builds them.
    fn session_on<P: PatientHooks>(plant: &P, name: &str) -> (setup::SessionParts, Telemetry) {
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let patient = setup::load_patient("moderate").unwrap();
        let (model, urdf) = &robot.value;
        let parts = setup::build_session(
            model,
            &setup::load_controller(None, "plexo-arm4").unwrap(),
            &setup::load_protocol("center-out").unwrap(),
            &setup::patient_arm(&patient).unwrap(),
            &setup::patient_rom(model, &patient).unwrap(),
            &setup::patient_limits(model, &patient),
            plant.joints(),
        )
        .unwrap();
        let telemetry = Telemetry::start(TelemetryConfig {
            session_name: name.into(),
            model: model.clone(),
            urdf: urdf.clone(),
            urdf_dir: None,
            patient_arm: None,
            handle_frame: "handle".into(),
            blocks: parts.blocks.clone(),
            period: 0.001,
            pose_every: 10,
            telemetry_rate: crate::telemetry::DEFAULT_TELEMETRY_RATE,
            info: Default::default(),
            capacity: 1024,
            paced: false,
            sinks: Sinks::default(),
        })
        .unwrap();
        (parts, telemetry)
    }

    /// A session on the moderate patient and `plant`, unpaced, with the telemetry pipeline.
    fn run_on<P: PatientHooks>(plant: P, signals: &LoopSignals, seconds: f64) -> (SessionReport, Runtime<P>) {
        let (parts, telemetry) = session_on(&plant, "test");
        let mut rt = Runtime { plant, therapy: parts.therapy, supervisor: parts.supervisor };
        let mut config = LoopConfig::new(Duration::from_millis(1));
        config.max_session_time = Some(seconds);
        let report = run_session(&mut rt, &config, &telemetry.sender_for(false), signals).unwrap();
        telemetry.finish().unwrap();
        (report, rt)
    }

    fn moderate_plant() -> plexo_sim::ArticulatedPlant {
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let profile = setup::load_virtual_patient("moderate").unwrap();
        let rest = setup::patient_rest(&robot.value.0, &profile).unwrap();
        let config =
            plexo_sim::PlantConfig { initial_position: Some(rest), ..Default::default() }.with_patient(profile.value);
        plexo_sim::ArticulatedPlant::new(&robot.value.0, config).unwrap()
    }

    #[test]
    fn a_virtual_patient_refusing_a_trial_ends_the_session_torque_free() {
        // Regression: the hook's error returned from the loop with the drives still enabled.
        // The first goal is given after the relaxed passive warm-up block (≈ 50 s of session time).
        let (report, rt) = run_on(RefusingPatient(moderate_plant()), &LoopSignals::default(), 120.0);
        match &report.end {
            SessionEnd::Robot(text) => assert!(text.contains("virtual patient (goal)"), "{text}"),
            other => panic!("expected a robot error end, got {other:?}"),
        }
        assert_eq!(rt.plant.lifecycle(), Lifecycle::EStopped, "the drives are switched off");
        assert_eq!(rt.supervisor.state(), SafetyState::Fault);
    }

    #[test]
    fn a_second_signal_switches_torque_off_at_once_without_the_controlled_stop() {
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let patient = setup::load_patient("moderate").unwrap();
        let profile = setup::virtual_patient(&patient).unwrap();
        let model = &robot.value.0;
        let rest = setup::patient_rest(model, &profile).unwrap();
        let config =
            plexo_sim::PlantConfig { initial_position: Some(rest), ..Default::default() }.with_patient(profile.value);
        let plant = plexo_sim::ArticulatedPlant::new(model, config).unwrap();
        let (parts, telemetry) = session_on(&plant, "signal");
        let mut rt = Runtime { plant, therapy: parts.therapy, supervisor: parts.supervisor };
        let signals = LoopSignals::default();
        // Two SIGTERMs arrive while the session runs (the watcher sets these flags).
        let flags = signals.clone();
        let sender = telemetry.sender_for(false);
        let watcher = std::thread::spawn(move || {
            while flags.session_ms.load(Ordering::Relaxed) < 1500 {
                std::thread::yield_now();
            }
            flags.stop_signal.store(libc::SIGTERM, Ordering::Relaxed);
            flags.stop.store(true, Ordering::Relaxed);
            flags.torque_off_now.store(true, Ordering::Relaxed);
        });
        let mut config = LoopConfig::new(Duration::from_millis(1));
        config.max_session_time = Some(30.0);
        let report = run_session(&mut rt, &config, &sender, &signals).unwrap();
        watcher.join().unwrap();
        assert_eq!(report.end, SessionEnd::SignalTorqueOff(libc::SIGTERM));
        // The unpaced loop runs ahead of the thread that sets the flags by a few simulated seconds at most; a
        // controlled stop or the full session would take longer.
        assert!(report.session_time < 10.0, "torque off at once, not after a 30 s session: {}", report.session_time);
        assert_eq!(rt.plant.lifecycle(), Lifecycle::EStopped, "category 0: the drives are switched off");
        assert_eq!(rt.supervisor.state(), SafetyState::Fault);
        match report.end.into_result() {
            Err(e @ AppError::Signal { .. }) => assert_eq!(e.exit_code(), 143),
            other => panic!("a signal stop maps to AppError::Signal, got {other:?}"),
        }
        telemetry.finish().unwrap();
    }

    /// The fake wall clock of [`watchdog_trips_on_a_gap_just_above_its_threshold_and_not_just_below`] [ns].
    static FAKE_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1_000_000_000);
    const FAKE_CLOCK: LoopClock = LoopClock {
        now_ns: || FAKE_NS.load(Ordering::SeqCst),
        sleep_until_ns: |deadline| {
            FAKE_NS.fetch_max(deadline, Ordering::SeqCst);
        },
    };

    /// A simulated plant whose `stall_at`-th read stalls the process for `stall_ns` of the fake wall clock (as
    /// `kill -STOP` would).
    struct StallingPlant {
        plant: plexo_sim::ArticulatedPlant,
        reads: u64,
        stall_at: u64,
        stall_ns: u64,
    }

    impl Robot for StallingPlant {
        type Error = plexo_sim::SimError;
        fn dof(&self) -> usize {
            self.plant.dof()
        }
        fn joints(&self) -> &[plexo_hal::JointInfo] {
            self.plant.joints()
        }
        fn lifecycle(&self) -> Lifecycle {
            self.plant.lifecycle()
        }
        fn read(&mut self, state: &mut JointState) -> Result<(), Self::Error> {
            self.reads += 1;
            if self.reads == self.stall_at {
                FAKE_NS.fetch_add(self.stall_ns, Ordering::SeqCst);
            }
            self.plant.read(state)
        }
        fn write(&mut self, command: &JointCommand) -> Result<(), Self::Error> {
            self.plant.write(command)
        }
        fn enable(&mut self) -> Result<(), Self::Error> {
            self.plant.enable()
        }
        fn disable(&mut self) -> Result<(), Self::Error> {
            self.plant.disable()
        }
        fn estop(&mut self) -> Result<(), Self::Error> {
            self.plant.estop()
        }
        fn reset(&mut self) -> Result<(), Self::Error> {
            self.plant.reset()
        }
    }

    impl PatientHooks for StallingPlant {
        fn is_simulated(&self) -> bool {
            true
        }
    }

    /// A paced session on a simulated plant (as `run --emulate`, `sim --realtime`) whose process stalls once,
    /// 0.3 s into the session, so that the interval between two supervisor calls is `interval_ns`.
    fn paced_session_with_a_stall(interval_ns: u64) -> SessionReport {
        let period_ns = 1_000_000;
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let patient = setup::load_patient("moderate").unwrap();
        let (model, urdf) = &robot.value;
        let plant = moderate_plant();
        let parts = setup::build_session(
            model,
            &setup::load_controller(None, "plexo-arm4").unwrap(),
            &setup::load_protocol("center-out").unwrap(),
            &setup::patient_arm(&patient).unwrap(),
            &setup::patient_rom(model, &patient).unwrap(),
            &setup::patient_limits(model, &patient),
            plant.joints(),
        )
        .unwrap();
        let telemetry = Telemetry::start(TelemetryConfig {
            session_name: "stall".into(),
            model: model.clone(),
            urdf: urdf.clone(),
            urdf_dir: None,
            patient_arm: None,
            handle_frame: "handle".into(),
            blocks: parts.blocks.clone(),
            period: 0.001,
            pose_every: 10,
            telemetry_rate: crate::telemetry::DEFAULT_TELEMETRY_RATE,
            info: Default::default(),
            capacity: 1024,
            paced: true,
            sinks: Sinks::default(),
        })
        .unwrap();
        let mut config = LoopConfig::new(Duration::from_nanos(period_ns));
        config.paced = true;
        config.clock = FAKE_CLOCK;
        config.max_session_time = Some(0.6);
        // The stalled read comes one period after the previous supervisor call: the stall adds the rest.
        let plant = StallingPlant {
            plant,
            reads: 0,
            stall_at: config.pre_enable_ticks + 300,
            stall_ns: interval_ns - period_ns,
        };
        let mut rt = Runtime { plant, therapy: parts.therapy, supervisor: parts.supervisor };
        let report = run_session(&mut rt, &config, &telemetry.sender_for(true), &LoopSignals::default()).unwrap();
        telemetry.finish().unwrap();
        report
    }

    #[test]
    fn watchdog_trips_on_a_gap_just_above_its_threshold_and_not_just_below() {
        // Regression (issue 13 §1): a paced loop on a simulated plant measured the watchdog in simulated time, so
        // a stalled process (`kill -STOP` 0.5 s during `run --emulate`) went unnoticed.
        let threshold = setup::load_controller(None, "plexo-arm4").unwrap().value.safety.watchdog_timeout;
        let threshold_ns = (threshold * 1e9).round() as u64;
        let below = paced_session_with_a_stall(threshold_ns - 1_000);
        assert_eq!(below.end, SessionEnd::TimeLimit, "a gap 1 us below {threshold} s is tolerated");
        assert!(below.safety.max_interval < threshold, "{}", below.safety.max_interval);
        let above = paced_session_with_a_stall(threshold_ns + 1_000);
        match above.end {
            SessionEnd::Safety(StopReason::Watchdog { interval }) => {
                assert!((interval - (threshold + 1e-6)).abs() < 1e-9, "the gap measured: {interval} s")
            }
            other => panic!("a gap 1 us above {threshold} s must stop the session (watchdog), got {other:?}"),
        }
    }
}
