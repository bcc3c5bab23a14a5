//! The analysis of a session, off the control thread: from each [`TickSample`] it computes the hand position
//! (forward kinematics), each trial's movement measures ([`crate::reach_metrics`]), its task-directed patient
//! effort and robot assistance ([`plexo_controller::effort`]), the per-trial table ([`TrialRow`]) and the
//! per-block statistics, and hands the writer its [`Sample`] and [`Event`]s.
//!
//! # Effort and the relaxed calibration block
//!
//! The estimate of the patient's voluntary torque subtracts a passive-tissue model fitted
//! ([`PassiveTissueFit`]) on the session's **relaxed block**: the first passive block of the protocol
//! ([`relaxed_block`]), during which the runtime does not ask the virtual patient to move (on hardware the
//! therapist asks the patient to relax). The fit is known at that block's end; the block's own trials are then
//! re-estimated with it (their windowed work is linear in the model's parameters, so the analysis keeps four
//! integrals per joint and window, see [`DeferredWindow`]) and enter the block table only then. Trials after it
//! use the fitted model; a protocol without a passive block uses no tissue model (the observer's torque as is).
//!
//! # Hand path
//!
//! The hand position is sampled every `decimation` ticks, at [`TRIAL_PATH_RATE`] (200 Hz at a 1 kHz loop),
//! from the trial's start (the go cue) to its end, and low-passed at [`TRIAL_PATH_CUTOFF`] (zero phase) before
//! the movement measures differentiate it. The joint positions are kept at the same rate for the range of motion.

use nalgebra::Vector3;
use plexo_controller::effort::{EFFORT_WINDOW, PassiveTissueFit, PassiveTissueModel, TaskEffortMeter, effort_share};
use plexo_controller::{AanLaw, Mode, TherapyEvent, TrialRecord};
use plexo_hal::{JointArray, MAX_JOINTS};
use plexo_kinematics::{Data, FrameId, Model, forward_kinematics};

use super::messages::{Event, Message, Sample, TickSample};
use crate::reach_metrics::{ReachAnalyzer, low_pass_zero_phase, range_of_motion};
use crate::summary::{BlockAccumulator, SessionSummary, TRIAL_PATH_CUTOFF, TRIAL_PATH_RATE, TrialRow, mode_label};

/// A trial the analysis has finished, for the patient store.
#[derive(Clone, Debug, PartialEq)]
pub struct FinishedTrial {
    /// The trial's measures.
    pub row: TrialRow,
    /// Its effort is provisional: a trial of the relaxed first passive block, sent at once and sent again with
    /// the final estimate when the block's end has fitted the passive-tissue model.
    pub effort_provisional: bool,
    /// Per joint, the lowest and highest position held during the trial [rad]: the positions the joint stayed at
    /// or beyond for at least [`HELD_EXTREME_TIME`] in total (order statistics of the trial's joint positions at
    /// [`TRIAL_PATH_RATE`]), so a spike or a tremor peak never counts. What a range-of-motion assessment
    /// measures (`crate::assessment`); `NaN` for a trial too short to hold anything.
    pub held_extremes_rad: Vec<[f64; 2]>,
}

/// How long a joint must stay at or beyond a position, in total over a trial, for it to count as held [s]
/// ([`FinishedTrial::held_extremes_rad`]). 0.5 s is several tremor periods (4–8 Hz) and several times the
/// voluntary reaction time: a position only passed through or touched by a jerk is not held.
pub const HELD_EXTREME_TIME: f64 = 0.5;

/// The analysis thread's sender of finished trials (unbounded: a slow store never holds up the analysis).
pub type TrialSink = crossbeam::channel::Sender<FinishedTrial>;

/// One block of the protocol as the analysis and the recording need it.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockPlan {
    /// Block name from the protocol.
    pub name: String,
    /// Therapy mode.
    pub mode: Mode,
    /// Assist-as-needed law (of an active-assisted block).
    pub law: AanLaw,
    /// Handle position of each trial's target in the world [m].
    pub targets: Vec<[f64; 3]>,
    /// Longest a trial of the block can last: timeout plus dwell [s].
    pub longest_trial: f64,
}

/// The relaxed block of a protocol whose blocks have `modes`: the first passive block. The patient is asked to
/// relax in it (the runtime gives the virtual patient no goal), the robot moves the arm, and the analysis fits the
/// passive-tissue model of the effort estimate on it. `None` without a passive block.
pub fn relaxed_block(modes: impl IntoIterator<Item = Mode>) -> Option<usize> {
    modes.into_iter().position(|m| m == Mode::Passive)
}

/// Work integrals of one effort window of a relaxed-block trial, per joint: ∫τ̂·q̇_ref, ∫q̇_ref, ∫q·q̇_ref,
/// ∫q̇·q̇_ref [J, rad, rad², rad²/s]. The window's estimated work with a tissue model (τ₀, k, b) is
/// Σ_j (∫τ̂q̇_ref − τ₀∫q̇_ref + k∫q q̇_ref + b∫q̇ q̇_ref), the meter's integrand integrated with the same windows.
type DeferredWindow = [[f64; 4]; MAX_JOINTS];

/// A relaxed-block trial waiting for the tissue fit: its row index and its windows.
#[derive(Clone, Copy, Debug)]
struct PendingTrial {
    row: usize,
    windows: (usize, usize),
}

/// The tissue-model calibration on the relaxed block.
struct Calibration {
    block: usize,
    fit: PassiveTissueFit,
    windows: Vec<DeferredWindow>,
    open: DeferredWindow,
    elapsed: f64,
    trial_start: usize,
    pending: Vec<PendingTrial>,
    done: bool,
}

impl Calibration {
    fn add(&mut self, s: &TickSample, dof: usize, dt: f64) {
        self.fit.add(&s.q, &s.qd, &s.tau_patient_est);
        for j in 0..dof {
            let v = s.qd_ref[j];
            let w = &mut self.open[j];
            w[0] += s.tau_patient_est[j] * v * dt;
            w[1] += v * dt;
            w[2] += s.q[j] * v * dt;
            w[3] += s.qd[j] * v * dt;
        }
        self.elapsed += dt;
        if self.elapsed >= EFFORT_WINDOW - 1e-9 {
            self.close_window();
        }
    }

    fn close_window(&mut self) {
        if self.windows.len() < self.windows.capacity() {
            self.windows.push(self.open);
        }
        self.open = [[0.0; 4]; MAX_JOINTS];
        self.elapsed = 0.0;
    }

    /// Estimated effort of `windows` with `model` [J].
    fn effort(&self, windows: (usize, usize), model: &PassiveTissueModel, dof: usize) -> f64 {
        self.windows[windows.0..windows.1]
            .iter()
            .map(|w| {
                (0..dof)
                    .map(|j| {
                        let [a, b, c, d] = w[j];
                        a - model.offset[j] * b + model.stiffness[j] * c + model.damping[j] * d
                    })
                    .sum::<f64>()
                    .max(0.0)
            })
            .sum()
    }
}

/// The analysis state of one session. Allocation-free per sample after [`Analysis::new`] (a trial's end adds
/// one row to the trial table, whose capacity is reserved for the protocol's trials).
pub struct Analysis {
    model: Model,
    data: Data,
    handle: FrameId,
    dof: usize,
    period: f64,
    plans: Vec<BlockPlan>,
    blocks: Vec<BlockAccumulator>,
    trials: Vec<TrialRow>,
    meter: TaskEffortMeter,
    calibration: Option<Calibration>,
    reach: ReachAnalyzer,
    decimation: u64,
    path_rate: f64,
    path: Vec<Vector3<f64>>,
    path_q: Vec<JointArray<f64>>,
    trial_ticks: u64,
    trial_block: usize,
    in_trial: bool,
    start: Vector3<f64>,
    target: Option<Vector3<f64>>,
    /// The patient store's writer, if any: each trial is sent when it ends (off the control thread).
    trial_sink: Option<TrialSink>,
    /// Scratch for the held extremes of one joint (capacity of the trial's joint path).
    scratch: Vec<f64>,
}

impl Analysis {
    /// The analysis of a session on `model` tracking frame `handle`, for `blocks`, at a control period of
    /// `period` [s]. Not real-time safe (sizes every buffer for the longest trial).
    pub fn new(model: &Model, handle: FrameId, blocks: &[BlockPlan], period: f64) -> Self {
        let dof = model.nv().min(MAX_JOINTS);
        let period = if period.is_finite() && period > 0.0 { period } else { 0.001 };
        let decimation = ((1.0 / (period * TRIAL_PATH_RATE)).round() as u64).max(1);
        let path_rate = 1.0 / (period * decimation as f64);
        let longest = blocks.iter().map(|b| b.longest_trial).fold(1.0, f64::max);
        let path_samples = (longest * path_rate) as usize + 64;
        let calibration = relaxed_block(blocks.iter().map(|b| b.mode)).map(|block| {
            let trials = blocks[block].targets.len().max(1);
            let per_trial = (blocks[block].longest_trial / EFFORT_WINDOW) as usize + 4;
            Calibration {
                block,
                fit: PassiveTissueFit::new(dof),
                windows: Vec::with_capacity(trials * per_trial),
                open: [[0.0; 4]; MAX_JOINTS],
                elapsed: 0.0,
                trial_start: 0,
                pending: Vec::with_capacity(trials),
                done: false,
            }
        });
        Self {
            model: model.clone(),
            data: Data::new(model),
            handle,
            dof,
            period,
            plans: blocks.to_vec(),
            blocks: blocks.iter().map(|b| BlockAccumulator::new(&b.name, b.mode, b.law)).collect(),
            trials: Vec::with_capacity(blocks.iter().map(|b| b.targets.len()).sum()),
            meter: TaskEffortMeter::new(dof, PassiveTissueModel::none(dof)),
            calibration,
            reach: ReachAnalyzer::new(path_samples),
            decimation,
            path_rate,
            path: Vec::with_capacity(path_samples),
            path_q: Vec::with_capacity(path_samples),
            trial_ticks: 0,
            trial_block: usize::MAX,
            in_trial: false,
            start: Vector3::zeros(),
            target: None,
            trial_sink: None,
            scratch: Vec::with_capacity(path_samples),
        }
    }

    /// Sends every finished trial to `sink` too (the patient store's writer; `None`: nowhere).
    pub fn set_trial_sink(&mut self, sink: Option<TrialSink>) {
        self.trial_sink = sink;
    }

    /// Hands a finished trial to the store's writer. A writer that has gone is not the session's problem: its
    /// own report says what was stored.
    fn send_trial(&mut self, index: usize, effort_provisional: bool) {
        if self.trial_sink.is_none() {
            return;
        }
        let held_extremes_rad = self.held_extremes();
        if let Some(sink) = &self.trial_sink {
            let _ = sink.send(FinishedTrial { row: self.trials[index].clone(), effort_provisional, held_extremes_rad });
        }
    }

    /// [`FinishedTrial::held_extremes_rad`] of the trial just ended (its joint path at `path_rate`).
    fn held_extremes(&mut self) -> Vec<[f64; 2]> {
        let n = self.path_q.len();
        let k = (HELD_EXTREME_TIME * self.path_rate).ceil() as usize;
        (0..self.dof)
            .map(|j| {
                if k == 0 || n < k {
                    return [f64::NAN; 2];
                }
                self.scratch.clear();
                self.scratch.extend(self.path_q.iter().map(|q| q[j]));
                held_extremes(&mut self.scratch, k)
            })
            .collect()
    }

    /// Analyses one tick and passes the writer's messages to `emit`: the safety event, the therapy's events,
    /// then the sample.
    pub fn on_tick(&mut self, s: &TickSample, mut emit: impl FnMut(Message)) {
        let (time, tick) = (s.time, s.tick);
        if let Some(outcome) = s.safety {
            emit(Message::Event(Event::Safety { outcome, time, tick }));
        }
        let mut target = None;
        let mut share = f64::NAN;
        if s.phase.in_session() {
            forward_kinematics(&self.model, &mut self.data, &s.q);
            let hand = self.data.world_T_frame[self.handle.0].translation.vector;
            if let TherapyEvent::TrialStarted { block, .. } = s.therapy {
                self.start_trial(block, &hand);
            }
            self.accumulate(s, &hand);
            self.on_therapy_event(&s.therapy, &hand, time, tick, &mut emit);
            target = self.target.map(|t| [t.x, t.y, t.z]);
            if self.in_trial {
                share = self.meter.current().share.unwrap_or(f64::NAN);
            }
        }
        let assistance = s.tau_mode.iter().map(|t| t * t).sum::<f64>().sqrt();
        emit(Message::Sample(Sample {
            tick,
            time,
            q: s.q,
            q_ref: s.q_ref,
            tau_cmd: s.tau_cmd,
            tau_patient_est: s.tau_patient_est,
            tau_patient_true: s.tau_patient_true,
            stiffness: s.stiffness,
            assistance,
            patient_effort_share: share,
            target,
        }));
    }

    /// A trial starts: the effort meter drops the rest before it, the hand path restarts.
    fn start_trial(&mut self, block: usize, hand: &Vector3<f64>) {
        self.meter.finish_trial();
        self.path.clear();
        self.path_q.clear();
        self.trial_ticks = 0;
        self.trial_block = block;
        self.in_trial = true;
        self.start = *hand;
        if let Some(c) = self.calibration.as_mut().filter(|c| c.block == block && !c.done) {
            c.open = [[0.0; 4]; MAX_JOINTS];
            c.elapsed = 0.0;
            c.trial_start = c.windows.len();
        }
    }

    /// Feeds this tick to the effort meter (and the tissue fit in the relaxed block) and samples the hand path.
    fn accumulate(&mut self, s: &TickSample, hand: &Vector3<f64>) {
        let dt = self.period;
        if let Some(truth) = &s.tau_voluntary_true {
            self.meter.add_true_voluntary(&s.qd_ref, truth, dt);
        }
        let counted = self.meter.update(&s.q, &s.qd, &s.qd_ref, &s.tau_patient_est, &s.tau_assist, dt);
        if !self.in_trial {
            return;
        }
        let block = self.trial_block;
        if counted && let Some(c) = self.calibration.as_mut().filter(|c| !c.done && c.block == block) {
            c.add(s, self.dof, dt);
        }
        if self.trial_ticks.is_multiple_of(self.decimation) && self.path.len() < self.path.capacity() {
            self.path.push(*hand);
            self.path_q.push(s.q);
        }
        self.trial_ticks += 1;
    }

    /// Trial and block bookkeeping on a therapy event.
    fn on_therapy_event(
        &mut self,
        event: &TherapyEvent,
        hand: &Vector3<f64>,
        time: f64,
        tick: u64,
        emit: &mut impl FnMut(Message),
    ) {
        match *event {
            TherapyEvent::None | TherapyEvent::SessionEnded => {}
            TherapyEvent::BlockStarted { block, .. } => {
                emit(Message::Event(Event::BlockStart { block, time, tick }));
            }
            TherapyEvent::TrialStarted { block, trial } => {
                let target = self.plans.get(block).and_then(|b| b.targets.get(trial)).copied().unwrap_or([f64::NAN; 3]);
                self.target = Some(Vector3::from(target));
                emit(Message::Event(Event::TrialStart { block, trial, target, time, tick }));
            }
            TherapyEvent::TrialEnded(record) => {
                let row = self.end_trial(&record, hand);
                emit(Message::Event(Event::TrialEnd {
                    block: record.block,
                    trial: record.trial,
                    success: record.reached,
                    final_error_m: row.final_error_m,
                    duration: record.metrics.duration,
                    peaks: row.speed_peaks,
                    sparc: row.sparc.unwrap_or(f64::NAN),
                    time,
                    tick,
                }));
            }
            TherapyEvent::BlockEnded { block, performance, .. } => {
                if self.calibration.as_ref().is_some_and(|c| c.block == block) {
                    self.finish_calibration();
                }
                emit(Message::Event(Event::BlockEnd {
                    block,
                    trials: performance.trials,
                    successes: performance.successes,
                    time,
                    tick,
                }));
            }
        }
    }

    /// A trial ends: its row (movement measures, effort, the controller's record) joins the trial table and its
    /// block's statistics (a relaxed-block trial: once the tissue model is fitted). Returns the row.
    fn end_trial(&mut self, record: &TrialRecord, hand: &Vector3<f64>) -> &TrialRow {
        self.in_trial = false;
        let effort = self.meter.finish_trial();
        let target = self.target.take().unwrap_or_else(|| Vector3::repeat(f64::NAN));
        low_pass_zero_phase(&mut self.path, self.path_rate, TRIAL_PATH_CUTOFF);
        let reach = self.reach.analyze(&self.path, self.path_rate, &self.start, &target);
        let rom = range_of_motion(&self.path_q, self.dof);
        let plan = self.plans.get(record.block);
        let m = &record.metrics;
        let joints = m.rms_error.len().max(1) as f64;
        let row = TrialRow {
            block: record.block,
            block_name: plan.map_or_else(String::new, |p| p.name.clone()),
            trial: record.trial,
            mode: plan.map_or_else(String::new, |p| mode_label(p.mode, p.law)),
            target_m: [target.x, target.y, target.z],
            reached: record.reached,
            duration_s: m.duration,
            final_error_m: (target - hand).norm(),
            rms_error_rad: (m.rms_error.iter().map(|e| e * e).sum::<f64>() / joints).sqrt(),
            reaction_time_s: reach.reaction_time,
            movement_time_s: reach.movement_time,
            peak_speed_m_s: reach.peak_speed,
            speed_peaks: reach.speed_peaks,
            path_length_ratio: reach.path_length_ratio,
            max_perpendicular_deviation_m: reach.max_perpendicular_deviation,
            initial_direction_error_rad: reach.initial_direction_error,
            sparc: reach.sparc,
            ldlj: reach.ldlj,
            normalized_jerk: reach.normalized_jerk,
            rom_rad: rom.to_vec(),
            effort_j: effort.effort,
            assistance_j: effort.assistance,
            effort_share: effort.share,
            true_effort_j: effort.true_effort,
            true_effort_share: effort.true_share,
            assistance_rms_nm: m.assistance_rms,
            emken_stiffness_nm_rad: m.mean_stiffness,
            arm_support: m.arm_support,
            law_weight_share: m.law_weight_share,
        };
        let index = self.trials.len();
        self.trials.push(row);
        let provisional = match self.calibration.as_mut().filter(|c| c.block == record.block && !c.done) {
            Some(c) => {
                c.close_window();
                c.pending.push(PendingTrial { row: index, windows: (c.trial_start, c.windows.len()) });
                true
            }
            None => {
                if let Some(acc) = self.blocks.get_mut(record.block) {
                    acc.add_trial(&self.trials[index]);
                }
                false
            }
        };
        self.send_trial(index, provisional);
        &self.trials[index]
    }

    /// The relaxed block is over: fits the tissue model, re-estimates the block's trials with it, adds them to
    /// the block table and uses the model from now on.
    fn finish_calibration(&mut self) {
        let Some(c) = self.calibration.as_mut().filter(|c| !c.done) else { return };
        c.done = true;
        let model = c.fit.solve().unwrap_or_else(|| {
            tracing::warn!("the relaxed block gave no samples for the passive-tissue fit: effort is not corrected");
            PassiveTissueModel::none(self.dof)
        });
        for p in &c.pending {
            let row = &mut self.trials[p.row];
            row.effort_j = c.effort(p.windows, &model, self.dof);
            row.effort_share = effort_share(row.effort_j, row.assistance_j);
            if let Some(acc) = self.blocks.get_mut(row.block) {
                acc.add_trial(row);
            }
        }
        if let Some(sink) = &self.trial_sink {
            // The re-estimate replaces the effort only: the held extremes went with the first send.
            for p in &c.pending {
                let _ = sink.send(FinishedTrial {
                    row: self.trials[p.row].clone(),
                    effort_provisional: false,
                    held_extremes_rad: Vec::new(),
                });
            }
        }
        self.meter.set_passive_model(model);
    }

    /// The session's block and trial tables. Not real-time safe.
    pub fn finish(mut self) -> SessionSummary {
        // A session that stopped inside the relaxed block: its trials so far calibrate.
        self.finish_calibration();
        let joints = self.model.joints().iter().map(|j| j.name.clone()).collect();
        SessionSummary::from_blocks(self.blocks, self.trials, joints)
    }
}

/// The lowest and highest value `values` stayed at or beyond for at least `k` samples: the `k`-th smallest and
/// the `k`-th largest (`1 <= k <= values.len()`; reorders `values`). Finite values only; `NaN` if any is not.
pub fn held_extremes(values: &mut [f64], k: usize) -> [f64; 2] {
    let n = values.len();
    if k == 0 || k > n || values.iter().any(|v| !v.is_finite()) {
        return [f64::NAN; 2];
    }
    let low = *values.select_nth_unstable_by(k - 1, f64::total_cmp).1;
    let high = *values.select_nth_unstable_by(n - k, f64::total_cmp).1;
    [low, high]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spike shorter than the hold never counts; a plateau held long enough does.
    #[test]
    fn held_extremes_ignore_a_spike_and_keep_a_plateau_held_long_enough() {
        // 200 Hz: 1 s ramp 0 -> 1, 0.6 s held at 1.0, one spike to 1.8, one dip to -0.7.
        let mut v: Vec<f64> = (0..200).map(|i| i as f64 / 200.0).collect();
        v.extend(std::iter::repeat_n(1.0, 120));
        v[50] = 1.8;
        v[10] = -0.7;
        let k = (HELD_EXTREME_TIME * 200.0).ceil() as usize;
        let [lo, hi] = held_extremes(&mut v.clone(), k);
        assert_eq!(hi, 1.0, "the plateau held 0.6 s counts, the spike does not");
        assert!(lo > 0.0 && lo < 0.6, "the dip does not count: {lo}");
        // Held for less than the hold: the plateau does not count either.
        let mut short: Vec<f64> = (0..200).map(|i| i as f64 / 200.0).collect();
        short.extend(std::iter::repeat_n(1.0, 20));
        assert!(held_extremes(&mut short, k)[1] < 1.0);
        assert!(held_extremes(&mut [0.1, f64::NAN, 0.2], 1)[0].is_nan());
    }

    /// The relaxed block's trials are re-estimated from their window integrals once the tissue model is known:
    /// the result equals the meter's own estimate run with that model from the start (same windows, same
    /// rectification), for a torque that is tissue plus a voluntary part.
    #[test]
    fn deferred_windows_reproduce_the_meter_with_the_fitted_model() {
        let dof = 2;
        let dt = 0.001;
        let mut model = PassiveTissueModel::none(dof);
        model.stiffness[0] = 2.0;
        model.damping[0] = 0.3;
        model.offset[0] = 0.5;
        model.stiffness[1] = 1.0;
        model.offset[1] = -0.2;
        let mut meter = TaskEffortMeter::new(dof, model);
        let mut calibration = Calibration {
            block: 0,
            fit: PassiveTissueFit::new(dof),
            windows: Vec::with_capacity(64),
            open: [[0.0; 4]; MAX_JOINTS],
            elapsed: 0.0,
            trial_start: 0,
            pending: Vec::new(),
            done: false,
        };
        for i in 0..2_345 {
            let t = i as f64 * dt;
            let mut s = TickSample::zeros(dof, i, t);
            for j in 0..dof {
                let w = 2.0 + j as f64;
                s.q[j] = 0.4 * (w * t).sin();
                s.qd[j] = 0.4 * w * (w * t).cos();
                s.qd_ref[j] = 0.35 * w * (w * t + 0.2).cos();
                let voluntary = 0.8 * (3.0 * t).sin() + 0.1 * j as f64;
                s.tau_patient_est[j] = model.torque(j, s.q[j], s.qd[j]) + voluntary;
            }
            assert!(meter.update(&s.q, &s.qd, &s.qd_ref, &s.tau_patient_est, &s.tau_assist, dt));
            calibration.add(&s, dof, dt);
        }
        calibration.close_window();
        let expected = meter.finish_trial().effort;
        let deferred = calibration.effort((0, calibration.windows.len()), &model, dof);
        assert!(expected > 0.05, "the voluntary part does positive work: {expected}");
        assert!((deferred - expected).abs() < 1e-9 * expected.max(1.0), "{deferred} J vs {expected} J");
        // Without the model the same windows give another (larger) effort: the model matters.
        let raw = calibration.effort((0, calibration.windows.len()), &PassiveTissueModel::none(dof), dof);
        assert!((raw - expected).abs() > 1e-3, "{raw} vs {expected}");
    }

    #[test]
    fn the_relaxed_block_is_the_first_passive_block() {
        use Mode::*;
        assert_eq!(relaxed_block([ActiveAssisted, Passive, Transparent, Passive]), Some(1));
        assert_eq!(relaxed_block([Transparent, Resistive]), None);
    }
}
