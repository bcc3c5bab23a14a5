//! Per-block session statistics: the table at the end of `plexo sim`/`run` and the `blocks` of
//! `<session>.summary.json`.
//!
//! Per block: trials, success rate, mean final handle error [mm], mean RMS joint tracking error [deg], mean
//! assistance (RMS norm of the mode torque, gravity and weight support excluded) [Nm], patient effort share
//! `effort / (effort + assistance)` of the RMS torque norms [-], and the smoothness of the hand speed profile
//! ([`crate::smoothness`]: speed peaks per reach and SPARC).

use plexo_controller::{AanLaw, Mode, TrialRecord};
use serde::Serialize;

/// Running sums of one block. Updated by the analysis at each trial end, without allocation.
#[derive(Clone, Debug)]
pub struct BlockAccumulator {
    name: String,
    mode: Mode,
    law: AanLaw,
    trials: u32,
    successes: u32,
    final_error_m: f64,
    rms_error_rad: f64,
    assistance_nm: f64,
    effort_nm: f64,
    share: f64,
    peaks: u64,
    sparc: f64,
    sparc_trials: u32,
    duration: f64,
}

impl BlockAccumulator {
    /// An empty block. Not real-time safe (copies the name).
    pub fn new(name: &str, mode: Mode, law: AanLaw) -> Self {
        Self {
            name: name.to_owned(),
            mode,
            law,
            trials: 0,
            successes: 0,
            final_error_m: 0.0,
            rms_error_rad: 0.0,
            assistance_nm: 0.0,
            effort_nm: 0.0,
            share: 0.0,
            peaks: 0,
            sparc: 0.0,
            sparc_trials: 0,
            duration: 0.0,
        }
    }

    /// Adds one trial: the controller's record, the final handle distance to the target [m], the number of
    /// speed peaks and the SPARC (`None` for a trial without movement). Real-time safe.
    pub fn add_trial(&mut self, record: &TrialRecord, final_error_m: f64, peaks: u32, sparc: Option<f64>) {
        let m = &record.metrics;
        self.trials += 1;
        self.successes += u32::from(record.reached);
        self.final_error_m += final_error_m;
        let n = m.rms_error.len().max(1) as f64;
        self.rms_error_rad += (m.rms_error.iter().map(|e| e * e).sum::<f64>() / n).sqrt();
        self.assistance_nm += m.assistance_rms;
        self.effort_nm += m.effort_rms;
        let total = m.assistance_rms + m.effort_rms;
        self.share += if total > 1e-9 { m.effort_rms / total } else { 0.0 };
        self.peaks += u64::from(peaks);
        if let Some(v) = sparc {
            self.sparc += v;
            self.sparc_trials += 1;
        }
        self.duration += m.duration;
    }
}

/// Statistics of one block (means over its trials).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct BlockSummary {
    /// Block name from the protocol.
    pub name: String,
    /// Mode and law, e.g. `ActiveAssisted/Emken`.
    pub mode: String,
    /// Trials completed.
    pub trials: u32,
    /// Trials that reached the target in time.
    pub successes: u32,
    /// Success rate [-].
    pub success_rate: f64,
    /// Mean final distance of the handle to the target [m].
    pub mean_final_error_m: f64,
    /// Mean RMS joint tracking error (root mean square over joints) [rad].
    pub mean_rms_error_rad: f64,
    /// Mean RMS assistance torque norm [Nm].
    pub mean_assistance_nm: f64,
    /// Mean RMS patient torque norm (estimate) [Nm].
    pub mean_patient_effort_nm: f64,
    /// Mean patient effort share [-].
    pub patient_effort_share: f64,
    /// Mean hand-speed peaks per trial [-] (1 = smooth).
    pub mean_speed_peaks: f64,
    /// Mean SPARC of the hand speed over the trials that moved [-] (≈ −1.6 for a minimum-jerk reach; more
    /// negative = less smooth); `null` if no trial moved.
    pub mean_sparc: Option<f64>,
    /// Mean trial duration [s].
    pub mean_duration_s: f64,
}

/// The session's blocks (only those with at least one trial).
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct SessionSummary {
    /// Per-block statistics in protocol order.
    pub blocks: Vec<BlockSummary>,
}

impl SessionSummary {
    /// Means from the accumulators. Not real-time safe.
    pub fn from_blocks(blocks: Vec<BlockAccumulator>) -> Self {
        let blocks = blocks
            .into_iter()
            .filter(|b| b.trials > 0)
            .map(|b| {
                let n = f64::from(b.trials);
                BlockSummary {
                    name: b.name,
                    mode: format!(
                        "{:?}{}",
                        b.mode,
                        if b.mode == Mode::ActiveAssisted { format!("/{:?}", b.law) } else { String::new() }
                    ),
                    trials: b.trials,
                    successes: b.successes,
                    success_rate: f64::from(b.successes) / n,
                    mean_final_error_m: b.final_error_m / n,
                    mean_rms_error_rad: b.rms_error_rad / n,
                    mean_assistance_nm: b.assistance_nm / n,
                    mean_patient_effort_nm: b.effort_nm / n,
                    patient_effort_share: b.share / n,
                    mean_speed_peaks: b.peaks as f64 / n,
                    mean_sparc: (b.sparc_trials > 0).then(|| b.sparc / f64::from(b.sparc_trials)),
                    mean_duration_s: b.duration / n,
                }
            })
            .collect();
        Self { blocks }
    }

    /// Total trials.
    pub fn trials(&self) -> u32 {
        self.blocks.iter().map(|b| b.trials).sum()
    }

    /// The table printed at the end of a session.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "{:<20} {:<22} {:>6} {:>8} {:>10} {:>9} {:>10} {:>8} {:>7} {:>7}\n",
            "block", "mode", "trials", "success", "error[mm]", "rms[deg]", "assist[Nm]", "effort%", "peaks", "SPARC"
        ));
        for b in &self.blocks {
            let sparc = b.mean_sparc.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            out.push_str(&format!(
                "{:<20} {:<22} {:>6} {:>7.0}% {:>10.1} {:>9.2} {:>10.2} {:>7.0}% {:>7.2} {:>7}\n",
                truncate(&b.name, 20),
                truncate(&b.mode, 22),
                b.trials,
                b.success_rate * 100.0,
                b.mean_final_error_m * 1000.0,
                b.mean_rms_error_rad.to_degrees(),
                b.mean_assistance_nm,
                b.patient_effort_share * 100.0,
                b.mean_speed_peaks,
                sparc
            ));
        }
        out
    }
}

fn truncate(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_means_and_effort_share() {
        use plexo_controller::TrialMetrics;
        use plexo_hal::JointArray;
        let mut acc = BlockAccumulator::new("assist", Mode::ActiveAssisted, AanLaw::Emken);
        let metrics = |assist: f64, effort: f64| TrialMetrics {
            rms_error: JointArray::from_slice(&[0.1, 0.1, 0.1, 0.1]).unwrap(),
            assistance_rms: assist,
            effort_rms: effort,
            mean_stiffness: 10.0,
            duration: 2.0,
            ticks: 2000,
        };
        let record = |trial, reached, m| TrialRecord { block: 0, trial, reached, metrics: m };
        acc.add_trial(&record(0, true, metrics(3.0, 1.0)), 0.01, 1, Some(-1.6));
        acc.add_trial(&record(1, false, metrics(1.0, 3.0)), 0.03, 3, None);
        let s = SessionSummary::from_blocks(vec![acc, BlockAccumulator::new("empty", Mode::Passive, AanLaw::Fixed)]);
        assert_eq!(s.blocks.len(), 1, "blocks without trials are left out");
        let b = &s.blocks[0];
        assert_eq!((b.trials, b.successes), (2, 1));
        assert!((b.success_rate - 0.5).abs() < 1e-12);
        assert!((b.mean_final_error_m - 0.02).abs() < 1e-12);
        assert!((b.mean_rms_error_rad - 0.1).abs() < 1e-12);
        assert!((b.patient_effort_share - 0.5).abs() < 1e-12, "(0.25 + 0.75) / 2");
        assert!((b.mean_speed_peaks - 2.0).abs() < 1e-12);
        assert_eq!(b.mean_sparc, Some(-1.6), "the trial without movement is left out of the SPARC mean");
        assert_eq!(b.mode, "ActiveAssisted/Emken");
        assert!(s.render_table().contains("assist"));
    }
}
