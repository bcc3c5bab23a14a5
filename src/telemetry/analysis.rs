//! The analysis of a session, off the control thread: from each [`TickSample`] it computes the hand position
//! (forward kinematics), the trial's hand speed profile, its smoothness at the trial end (speed peaks, SPARC)
//! and the per-block statistics, and hands the writer its [`Sample`] and [`Event`]s.

use nalgebra::Vector3;
use plexo_controller::{AanLaw, Mode, TherapyEvent};
use plexo_kinematics::{Data, FrameId, Model, forward_kinematics};

use super::messages::{Event, Message, Sample, TickSample};
use crate::smoothness::SpeedProfile;
use crate::summary::{BlockAccumulator, SessionSummary};

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

/// The analysis state of one session. Allocation-free per sample after [`Analysis::new`].
pub struct Analysis {
    model: Model,
    data: Data,
    handle: FrameId,
    blocks: Vec<BlockAccumulator>,
    targets: Vec<Vec<[f64; 3]>>,
    speed: SpeedProfile,
    target: Option<Vector3<f64>>,
}

impl Analysis {
    /// The analysis of a session on `model` tracking frame `handle`, for `blocks`, at a control period of
    /// `period` [s]. Not real-time safe (sizes every buffer for the longest trial).
    pub fn new(model: &Model, handle: FrameId, blocks: &[BlockPlan], period: f64) -> Self {
        // Speed profile buffer sized for the longest trial (timeout + dwell) at 100 Hz.
        let longest = blocks.iter().map(|b| b.longest_trial).fold(1.0, f64::max);
        Self {
            model: model.clone(),
            data: Data::new(model),
            handle,
            blocks: blocks.iter().map(|b| BlockAccumulator::new(&b.name, b.mode, b.law)).collect(),
            targets: blocks.iter().map(|b| b.targets.clone()).collect(),
            speed: SpeedProfile::new((longest * 100.0) as usize + 200, 10, period),
            target: None,
        }
    }

    /// Analyses one tick and passes the writer's messages to `emit`: the safety event, the therapy's events,
    /// then the sample.
    pub fn on_tick(&mut self, s: &TickSample, mut emit: impl FnMut(Message)) {
        let (time, tick) = (s.time, s.tick);
        if let Some(outcome) = s.safety {
            emit(Message::Event(Event::Safety { outcome, time, tick }));
        }
        let mut target = None;
        if s.phase.in_session() {
            forward_kinematics(&self.model, &mut self.data, &s.q);
            let hand = self.data.world_T_frame[self.handle.0].translation.vector;
            self.speed.push(&hand);
            self.on_therapy_event(&s.therapy, &hand, time, tick, &mut emit);
            target = self.target.map(|t| [t.x, t.y, t.z]);
        }
        let effort = s.tau_patient_est.iter().map(|t| t * t).sum::<f64>().sqrt();
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
            patient_effort_share: if effort + assistance > 1e-9 { effort / (effort + assistance) } else { 0.0 },
            target,
        }));
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
                let target = self.targets.get(block).and_then(|b| b.get(trial)).copied().unwrap_or([f64::NAN; 3]);
                self.target = Some(Vector3::from(target));
                self.speed.reset();
                self.speed.push(hand);
                emit(Message::Event(Event::TrialStart { block, trial, target, time, tick }));
            }
            TherapyEvent::TrialEnded(record) => {
                let final_error = self.target.map_or(0.0, |t| (t - hand).norm());
                let peaks = self.speed.peaks();
                let sparc = self.speed.sparc();
                if let Some(acc) = self.blocks.get_mut(record.block) {
                    acc.add_trial(&record, final_error, peaks, sparc);
                }
                emit(Message::Event(Event::TrialEnd {
                    block: record.block,
                    trial: record.trial,
                    success: record.reached,
                    final_error_m: final_error,
                    duration: record.metrics.duration,
                    peaks,
                    sparc: sparc.unwrap_or(f64::NAN),
                    time,
                    tick,
                }));
                self.target = None;
            }
            TherapyEvent::BlockEnded { block, performance, .. } => {
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

    /// The session's block table. Not real-time safe.
    pub fn finish(self) -> SessionSummary {
        SessionSummary::from_blocks(self.blocks)
    }
}
