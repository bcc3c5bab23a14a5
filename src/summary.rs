//! Per-trial and per-block session statistics: the trial table `<session>.trials.csv` ([`TrialRow`]), the block
//! table at the end of `plexo sim`/`run` and the `blocks` of `<session>.summary.json`.
//!
//! Per block: trials, success rate, mean final handle error [mm], mean RMS joint tracking error [deg], mean
//! assistance (RMS norm of the mode torque, gravity and weight support excluded) [Nm], assistance work [J], the
//! task-directed patient effort share estimated in clinic and (simulation) its truth
//! ([`plexo_controller::effort`]: positive work along the desired motion, W_patient / (W_patient + W_assist),
//! summed over the block's trials), and the smoothness of the hand movement (speed peaks per reach, SPARC) and
//! its timing (movement time, path-length ratio) from the per-trial measures.

use std::path::Path;

use plexo_controller::{AanLaw, Mode};
use serde::{Deserialize, Serialize};

use crate::AppError;

/// One trial of a session: a row of `<session>.trials.csv` ([`TRIAL_COLUMNS`] documents each column with its unit)
/// and of [`SessionSummary::trials`]. Measures a trial does not define (no movement, a simulation-only value on
/// hardware) are `None`, written as an empty CSV field.
///
/// Movement measures come from the hand path sampled at [`TRIAL_PATH_RATE`] and low-passed at
/// [`TRIAL_PATH_CUTOFF`] (definitions and sources: `src/reach_metrics.rs`); effort and assistance from
/// [`plexo_controller::effort`] (positive work along the desired motion; estimate = observer torque minus the
/// passive-tissue model fitted on the session's first passive block; truth = the virtual patient's voluntary
/// torque).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialRow {
    /// Block index in the protocol (0-based).
    pub block: usize,
    /// Block name from the protocol.
    pub block_name: String,
    /// Trial index within the block (0-based).
    pub trial: usize,
    /// Therapy mode and law, e.g. `ActiveAssisted/Emken` (as in the block table).
    pub mode: String,
    /// Target of the handle in the world [m].
    pub target_m: [f64; 3],
    /// Target reached (with dwell) before the timeout.
    pub reached: bool,
    /// Trial duration [s].
    pub duration_s: f64,
    /// Final distance of the handle to the target [m].
    pub final_error_m: f64,
    /// RMS joint tracking error (root mean square over joints) [rad].
    pub rms_error_rad: f64,
    /// Go cue (trial start) to movement onset [s].
    pub reaction_time_s: Option<f64>,
    /// Movement onset to offset [s].
    pub movement_time_s: Option<f64>,
    /// Largest hand speed [m/s].
    pub peak_speed_m_s: f64,
    /// Hand-speed maxima between onset and offset [-] (1 = one smooth movement).
    pub speed_peaks: u32,
    /// Hand path length (onset..offset) over the start-to-target distance [-].
    pub path_length_ratio: Option<f64>,
    /// Largest distance of the hand from the straight start-target line [m].
    pub max_perpendicular_deviation_m: Option<f64>,
    /// Initial direction error [rad], 0..π.
    pub initial_direction_error_rad: Option<f64>,
    /// Spectral arc length of the hand speed [-] (≈ −1.6 for one minimum-jerk reach; more negative = less smooth).
    pub sparc: Option<f64>,
    /// Log dimensionless jerk, speed-based [-] (more negative = less smooth).
    pub ldlj: Option<f64>,
    /// Normalised jerk (Teulings et al. 1997) [-] (√360 ≈ 19 for a minimum-jerk reach; larger = less smooth).
    pub normalized_jerk: Option<f64>,
    /// Range of motion per joint in the trial [rad], in the robot's joint order.
    pub rom_rad: Vec<f64>,
    /// Estimated patient task effort W_patient [J].
    pub effort_j: f64,
    /// Assistance W_assist [J] (the robot's therapy-mode torque along the desired motion).
    pub assistance_j: f64,
    /// Estimated effort share W_patient / (W_patient + W_assist) [-]; `None` without task work.
    pub effort_share: Option<f64>,
    /// True patient task effort [J] (simulation: the virtual patient's voluntary torque).
    pub true_effort_j: Option<f64>,
    /// True effort share [-] (simulation).
    pub true_effort_share: Option<f64>,
    /// RMS norm of the therapy-mode torque [Nm] (gravity and weight support excluded).
    pub assistance_rms_nm: f64,
    /// Mean adapted Emken stiffness over the joints at trial end [Nm/rad].
    pub emken_stiffness_nm_rad: f64,
    /// Mean share of the arm's weight the robot's weight support carried over the trial [-] (not in the
    /// assistance: `plexo_controller::SupportAdaptationConfig`).
    #[serde(default = "nan")]
    pub arm_support: f64,
    /// Share of the arm's weight the assist-as-needed law carried on top of the support [-] (what adapts the
    /// support); NaN outside assisted blocks.
    #[serde(default = "nan")]
    pub law_weight_share: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// Rate at which the hand path of a trial is sampled for [`TrialRow`]'s movement measures [Hz] (every 5th tick of
/// a 1 kHz loop).
pub const TRIAL_PATH_RATE: f64 = 200.0;

/// Cut-off of the zero-phase low-pass applied to the hand path before differentiation [Hz] (reaching movements
/// have their power below ~5 Hz; the cut-off keeps them and removes sensor noise and tremor harmonics).
pub const TRIAL_PATH_CUTOFF: f64 = 10.0;

/// The columns of `<session>.trials.csv` in order, with their unit, before the per-joint `rom_<joint>_rad`
/// columns that end each row (see [`TrialRow`] for the meaning of each).
pub const TRIAL_COLUMNS: [&str; 31] = [
    "block",
    "block_name",
    "trial",
    "mode",
    "target_x_m",
    "target_y_m",
    "target_z_m",
    "reached",
    "duration_s",
    "final_error_m",
    "rms_error_rad",
    "reaction_time_s",
    "movement_time_s",
    "peak_speed_m_s",
    "speed_peaks",
    "path_length_ratio",
    "max_perpendicular_deviation_m",
    "initial_direction_error_rad",
    "sparc",
    "ldlj",
    "normalized_jerk",
    "effort_j",
    "assistance_j",
    "effort_share",
    "true_effort_j",
    "true_effort_share",
    "assistance_rms_nm",
    "emken_stiffness_nm_rad",
    "arm_support",
    "law_weight_share",
    "rom",
];

fn opt(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite()).map_or_else(String::new, |x| x.to_string())
}

/// A CSV field: quoted (with doubled quotes) when it holds a comma, a quote or a line break (RFC 4180). The
/// writer of every Plexo CSV file ([`split_csv_line`] reads it back).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

/// The fields of one CSV line as [`csv_field`] writes them (RFC 4180 quotes).
pub fn split_csv_line(line: &str) -> Vec<String> {
    let (mut fields, mut field, mut quoted, mut chars) = (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

impl TrialRow {
    /// This row as CSV fields in the order of [`trials_csv_header`]. Not real-time safe.
    pub fn csv_fields(&self) -> Vec<String> {
        let mut f = vec![
            self.block.to_string(),
            csv_field(&self.block_name),
            self.trial.to_string(),
            csv_field(&self.mode),
            self.target_m[0].to_string(),
            self.target_m[1].to_string(),
            self.target_m[2].to_string(),
            u8::from(self.reached).to_string(),
            self.duration_s.to_string(),
            opt(Some(self.final_error_m)),
            opt(Some(self.rms_error_rad)),
            opt(self.reaction_time_s),
            opt(self.movement_time_s),
            opt(Some(self.peak_speed_m_s)),
            self.speed_peaks.to_string(),
            opt(self.path_length_ratio),
            opt(self.max_perpendicular_deviation_m),
            opt(self.initial_direction_error_rad),
            opt(self.sparc),
            opt(self.ldlj),
            opt(self.normalized_jerk),
            opt(Some(self.effort_j)),
            opt(Some(self.assistance_j)),
            opt(self.effort_share),
            opt(self.true_effort_j),
            opt(self.true_effort_share),
            opt(Some(self.assistance_rms_nm)),
            opt(Some(self.emken_stiffness_nm_rad)),
            opt(Some(self.arm_support)),
            opt(Some(self.law_weight_share)),
        ];
        f.extend(self.rom_rad.iter().map(|r| opt(Some(*r))));
        f
    }
}

/// The header of `<session>.trials.csv` for a robot with `joints` (names in joint order): [`TRIAL_COLUMNS`]
/// without the `rom` placeholder, then `rom_<joint>_rad` per joint.
pub fn trials_csv_header(joints: &[String]) -> Vec<String> {
    let mut h: Vec<String> = TRIAL_COLUMNS[..TRIAL_COLUMNS.len() - 1].iter().map(|c| (*c).to_owned()).collect();
    h.extend(joints.iter().map(|j| format!("rom_{j}_rad")));
    h
}

/// The trial table as CSV text (header line, then one line per row). Not real-time safe.
pub fn trials_csv(joints: &[String], rows: &[TrialRow]) -> String {
    let mut out = trials_csv_header(joints).join(",");
    out.push('\n');
    for r in rows {
        out.push_str(&r.csv_fields().join(","));
        out.push('\n');
    }
    out
}

/// Mean of the values that are defined.
#[derive(Clone, Copy, Debug, Default)]
struct Mean {
    sum: f64,
    count: u32,
}

impl Mean {
    fn add(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.sum += v;
            self.count += 1;
        }
    }

    fn get(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / f64::from(self.count))
    }
}

/// The mode column of a block or trial: `Passive`, `ActiveAssisted/Emken`, …
pub fn mode_label(mode: Mode, law: AanLaw) -> String {
    if mode == Mode::ActiveAssisted { format!("{mode:?}/{law:?}") } else { format!("{mode:?}") }
}

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
    effort_j: f64,
    assistance_j: f64,
    true_effort_j: Mean,
    peaks: u64,
    sparc: Mean,
    movement_time: Mean,
    path_length_ratio: Mean,
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
            effort_j: 0.0,
            assistance_j: 0.0,
            true_effort_j: Mean::default(),
            peaks: 0,
            sparc: Mean::default(),
            movement_time: Mean::default(),
            path_length_ratio: Mean::default(),
            duration: 0.0,
        }
    }

    /// The block's name from the protocol.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The block's mode column ([`mode_label`]). Not real-time safe.
    pub fn mode_label(&self) -> String {
        mode_label(self.mode, self.law)
    }

    /// Adds one trial. Allocation-free.
    pub fn add_trial(&mut self, row: &TrialRow) {
        self.trials += 1;
        self.successes += u32::from(row.reached);
        self.final_error_m += row.final_error_m;
        self.rms_error_rad += row.rms_error_rad;
        self.assistance_nm += row.assistance_rms_nm;
        self.effort_j += row.effort_j;
        self.assistance_j += row.assistance_j;
        self.true_effort_j.add(row.true_effort_j);
        self.peaks += u64::from(row.speed_peaks);
        self.sparc.add(row.sparc);
        self.movement_time.add(row.movement_time_s);
        self.path_length_ratio.add(row.path_length_ratio);
        self.duration += row.duration_s;
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
    /// Mean RMS assistance torque norm (therapy-mode torque, gravity and weight support excluded) [Nm].
    pub mean_assistance_nm: f64,
    /// Mean assistance work per trial W_assist [J] ([`plexo_controller::effort`]).
    pub mean_assistance_work_j: f64,
    /// Mean estimated patient task effort per trial W_patient [J].
    pub mean_patient_effort_j: f64,
    /// Estimated patient effort share of the block ΣW_patient / (ΣW_patient + ΣW_assist) [-]; `null` when the
    /// block did no task work.
    pub patient_effort_share: Option<f64>,
    /// True patient effort share of the block (simulation: the virtual patient's voluntary torque) [-]; `null` on
    /// hardware.
    pub true_patient_effort_share: Option<f64>,
    /// Mean hand-speed peaks per trial [-] (1 = smooth).
    pub mean_speed_peaks: f64,
    /// Mean SPARC of the hand speed over the trials that moved [-] (≈ −1.6 for a minimum-jerk reach; more
    /// negative = less smooth); `null` if no trial moved.
    pub mean_sparc: Option<f64>,
    /// Mean movement time (onset to offset) over the trials that moved [s].
    pub mean_movement_time_s: Option<f64>,
    /// Mean path-length ratio over the trials that moved [-] (1 = straight).
    pub mean_path_length_ratio: Option<f64>,
    /// Mean trial duration [s].
    pub mean_duration_s: f64,
}

/// The session's blocks (only those with at least one trial) and trials.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct SessionSummary {
    /// Per-block statistics in protocol order.
    pub blocks: Vec<BlockSummary>,
    /// Every completed trial, in order: the rows of `<session>.trials.csv`.
    pub trials: Vec<TrialRow>,
    /// Joint names in the robot's order (the `rom_<joint>_rad` columns).
    pub joints: Vec<String>,
}

impl SessionSummary {
    /// Means from the accumulators, with the session's trial rows and joint names. Not real-time safe.
    pub fn from_blocks(blocks: Vec<BlockAccumulator>, trials: Vec<TrialRow>, joints: Vec<String>) -> Self {
        let blocks = blocks
            .into_iter()
            .filter(|b| b.trials > 0)
            .map(|b| {
                let n = f64::from(b.trials);
                let true_share = (b.true_effort_j.count == b.trials)
                    .then(|| plexo_controller::effort::effort_share(b.true_effort_j.sum, b.assistance_j))
                    .flatten();
                BlockSummary {
                    mode: b.mode_label(),
                    name: b.name,
                    trials: b.trials,
                    successes: b.successes,
                    success_rate: f64::from(b.successes) / n,
                    mean_final_error_m: b.final_error_m / n,
                    mean_rms_error_rad: b.rms_error_rad / n,
                    mean_assistance_nm: b.assistance_nm / n,
                    mean_assistance_work_j: b.assistance_j / n,
                    mean_patient_effort_j: b.effort_j / n,
                    patient_effort_share: plexo_controller::effort::effort_share(b.effort_j, b.assistance_j),
                    true_patient_effort_share: true_share,
                    mean_speed_peaks: b.peaks as f64 / n,
                    mean_sparc: b.sparc.get(),
                    mean_movement_time_s: b.movement_time.get(),
                    mean_path_length_ratio: b.path_length_ratio.get(),
                    mean_duration_s: b.duration / n,
                }
            })
            .collect();
        Self { blocks, trials, joints }
    }

    /// Total trials.
    pub fn trials(&self) -> u32 {
        self.blocks.iter().map(|b| b.trials).sum()
    }

    /// Writes the trial table to `path` (CSV, [`trials_csv`]) atomically (`crate::files`). Not real-time safe.
    pub fn write_trials_csv(&self, path: &Path) -> Result<(), AppError> {
        crate::files::write_atomically(path, trials_csv(&self.joints, &self.trials).as_bytes())
    }

    /// The table printed at the end of a session.
    pub fn render_table(&self) -> String {
        let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.0}%", v * 100.0));
        let mut out = String::new();
        out.push_str(&format!(
            "{:<20} {:<22} {:>6} {:>8} {:>10} {:>9} {:>10} {:>9} {:>8} {:>6} {:>7} {:>7}\n",
            "block",
            "mode",
            "trials",
            "success",
            "error[mm]",
            "rms[deg]",
            "assist[Nm]",
            "assist[J]",
            "effort%",
            "true%",
            "peaks",
            "SPARC"
        ));
        for b in &self.blocks {
            let sparc = b.mean_sparc.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
            out.push_str(&format!(
                "{:<20} {:<22} {:>6} {:>7.0}% {:>10.1} {:>9.2} {:>10.2} {:>9.2} {:>8} {:>6} {:>7.2} {:>7}\n",
                truncate(&b.name, 20),
                truncate(&b.mode, 22),
                b.trials,
                b.success_rate * 100.0,
                b.mean_final_error_m * 1000.0,
                b.mean_rms_error_rad.to_degrees(),
                b.mean_assistance_nm,
                b.mean_assistance_work_j,
                pct(b.patient_effort_share),
                pct(b.true_patient_effort_share),
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

    fn row(trial: usize, reached: bool, effort_j: f64, assistance_j: f64, peaks: u32, sparc: Option<f64>) -> TrialRow {
        TrialRow {
            block: 0,
            block_name: "assist, 1".into(),
            trial,
            mode: mode_label(Mode::ActiveAssisted, AanLaw::Emken),
            target_m: [0.3, 0.1, 0.0],
            reached,
            duration_s: 2.0,
            final_error_m: if reached { 0.01 } else { 0.03 },
            rms_error_rad: 0.1,
            reaction_time_s: sparc.map(|_| 0.2),
            movement_time_s: sparc.map(|_| 1.5),
            peak_speed_m_s: 0.3,
            speed_peaks: peaks,
            path_length_ratio: sparc.map(|_| 1.1),
            max_perpendicular_deviation_m: None,
            initial_direction_error_rad: None,
            sparc,
            ldlj: None,
            normalized_jerk: None,
            rom_rad: vec![0.5, 0.25],
            effort_j,
            assistance_j,
            effort_share: plexo_controller::effort::effort_share(effort_j, assistance_j),
            true_effort_j: Some(effort_j),
            true_effort_share: plexo_controller::effort::effort_share(effort_j, assistance_j),
            assistance_rms_nm: 2.0,
            emken_stiffness_nm_rad: 10.0,
            arm_support: 0.3,
            law_weight_share: 0.05,
        }
    }

    #[test]
    fn block_means_and_effort_share() {
        let mut acc = BlockAccumulator::new("assist", Mode::ActiveAssisted, AanLaw::Emken);
        let rows = vec![row(0, true, 1.0, 3.0, 1, Some(-1.6)), row(1, false, 2.0, 2.0, 3, None)];
        for r in &rows {
            acc.add_trial(r);
        }
        let s = SessionSummary::from_blocks(
            vec![acc, BlockAccumulator::new("empty", Mode::Passive, AanLaw::Fixed)],
            rows,
            vec!["shoulder".into(), "elbow".into()],
        );
        assert_eq!(s.blocks.len(), 1, "blocks without trials are left out");
        let b = &s.blocks[0];
        assert_eq!((b.trials, b.successes), (2, 1));
        assert!((b.success_rate - 0.5).abs() < 1e-12);
        assert!((b.mean_final_error_m - 0.02).abs() < 1e-12);
        assert!((b.mean_rms_error_rad - 0.1).abs() < 1e-12);
        assert!((b.patient_effort_share.unwrap() - 3.0 / 8.0).abs() < 1e-12, "(1 + 2) / (1 + 3 + 2 + 2)");
        assert_eq!(b.true_patient_effort_share, b.patient_effort_share);
        assert!((b.mean_assistance_work_j - 2.5).abs() < 1e-12);
        assert!((b.mean_speed_peaks - 2.0).abs() < 1e-12);
        assert_eq!(b.mean_sparc, Some(-1.6), "the trial without movement is left out of the SPARC mean");
        assert_eq!(b.mean_movement_time_s, Some(1.5));
        assert_eq!(b.mode, "ActiveAssisted/Emken");
        let table = s.render_table();
        assert!(table.contains("assist[J]") && table.contains("true%"), "{table}");
    }

    #[test]
    fn trial_csv_has_the_documented_header_and_one_line_per_trial() {
        let rows = vec![row(0, true, 1.0, 3.0, 1, Some(-1.6)), row(1, false, 0.0, 0.0, 3, None)];
        let text = trials_csv(&["shoulder".into(), "elbow".into()], &rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        let header: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(header.len(), TRIAL_COLUMNS.len() - 1 + 2);
        assert_eq!(&header[..TRIAL_COLUMNS.len() - 1], &TRIAL_COLUMNS[..TRIAL_COLUMNS.len() - 1]);
        assert_eq!(&header[TRIAL_COLUMNS.len() - 1..], &["rom_shoulder_rad", "rom_elbow_rad"]);
        // The block name with a comma is quoted; every line has the header's field count.
        assert!(lines[1].starts_with("0,\"assist, 1\",0,ActiveAssisted/Emken,"), "{}", lines[1]);
        assert_eq!(rows[0].csv_fields().len(), header.len());
        // Undefined measures are empty fields: no task work, no share.
        let share = header.iter().position(|h| *h == "effort_share").unwrap();
        assert_eq!(rows[1].csv_fields()[share], "");
        assert_eq!(rows[0].csv_fields()[share], "0.25");
    }
}
