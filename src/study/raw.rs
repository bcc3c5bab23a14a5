//! The raw result of one course, as a shard writes it (`raw/course-NNNNN.toml`) and `merge` reads it back. TOML
//! keeps every number exactly (shortest round-trip decimal), so the tables a merge writes are byte for byte those
//! of an unsharded run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use plexo_controller::{AanLaw, Mode};

use crate::summary::BlockAccumulator;
use crate::{AppError, BlockSummary, SessionSummary, TrialRow};

/// One block of one session: the block table of [`crate::SessionSummary`] and the mean adapted stiffness; the
/// assisted blocks' aggregate (name [`ASSISTED`]) is built the same way from their trial rows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockResult {
    /// Block name from the protocol, or [`ASSISTED`].
    pub name: String,
    /// Mode and law, e.g. `ActiveAssisted/Emken` (the aggregate: its blocks' labels joined with `+`).
    pub mode: String,
    /// Trials completed.
    pub trials: u32,
    /// Trials that reached the target in time.
    pub successes: u32,
    /// Mean final distance of the handle to the target [m].
    pub final_error_m: f64,
    /// Mean RMS joint tracking error [rad].
    pub rms_error_rad: f64,
    /// Mean RMS assistance torque norm (therapy-mode torque) [Nm].
    pub assistance_nm: f64,
    /// Mean assistance work per trial W_assist [J].
    pub assistance_j: f64,
    /// Mean estimated patient task effort per trial W_patient [J].
    pub effort_j: f64,
    /// Estimated effort share ΣW_patient / (ΣW_patient + ΣW_assist) [-]; absent without task work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effort_share: Option<f64>,
    /// True effort share (the virtual patient's voluntary torque) [-]; absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub true_effort_share: Option<f64>,
    /// Mean hand-speed peaks per trial [-].
    pub speed_peaks: f64,
    /// Mean SPARC over the trials that moved [-]; absent if none moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparc: Option<f64>,
    /// Mean movement time over the trials that moved [s].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub movement_time_s: Option<f64>,
    /// Mean adapted Emken stiffness at trial end (mean over joints) [Nm/rad].
    pub stiffness_nm_rad: f64,
    /// Mean arm-weight support over the trials [-] (the share of the arm's weight the robot carried; not in the
    /// assistance); absent when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_support: Option<f64>,
    /// Mean trial duration [s].
    pub duration_s: f64,
}

/// Name of the aggregate row of the active-assisted blocks of a session.
pub const ASSISTED: &str = "(assisted blocks)";

/// Largest course file `study merge` reads [bytes]: a course's trial rows are ≈ 0.5 kB each, ≈ 65 kB per
/// default session, so 1 GiB holds ≈ 15,000 sessions per course.
pub const MAX_COURSE_BYTES: u64 = crate::files::MAX_LOG_BYTES;

impl BlockResult {
    /// A block of the block table, with the mean stiffness of its trial rows `rows`.
    pub fn new(b: &BlockSummary, rows: &[&TrialRow]) -> Self {
        let stiffness = rows.iter().map(|r| r.emken_stiffness_nm_rad).sum::<f64>() / rows.len().max(1) as f64;
        let supports: Vec<f64> = rows.iter().map(|r| r.arm_support).filter(|v| v.is_finite()).collect();
        let arm_support = (!supports.is_empty()).then(|| supports.iter().sum::<f64>() / supports.len() as f64);
        Self {
            name: b.name.clone(),
            mode: b.mode.clone(),
            trials: b.trials,
            successes: b.successes,
            final_error_m: b.mean_final_error_m,
            rms_error_rad: b.mean_rms_error_rad,
            assistance_nm: b.mean_assistance_nm,
            assistance_j: b.mean_assistance_work_j,
            effort_j: b.mean_patient_effort_j,
            effort_share: b.patient_effort_share,
            true_effort_share: b.true_patient_effort_share,
            speed_peaks: b.mean_speed_peaks,
            sparc: b.mean_sparc,
            movement_time_s: b.mean_movement_time_s,
            stiffness_nm_rad: stiffness,
            arm_support,
            duration_s: b.mean_duration_s,
        }
    }

    /// The session's blocks and the aggregate of its active-assisted blocks (absent without assisted trials),
    /// from the session's block table and trial rows (block statistics computed by
    /// [`crate::SessionSummary::from_blocks`], so the aggregate means the same as a block's row).
    pub fn of_session(summary: &SessionSummary) -> Vec<Self> {
        let mut out: Vec<Self> = summary
            .blocks
            .iter()
            .map(|b| {
                let rows: Vec<&TrialRow> = summary.trials.iter().filter(|r| r.block_name == b.name).collect();
                Self::new(b, &rows)
            })
            .collect();
        let assisted: Vec<&TrialRow> = summary.trials.iter().filter(|r| r.mode.starts_with("ActiveAssisted")).collect();
        if !assisted.is_empty() {
            // The law only labels the accumulator; the aggregate's label is its blocks' labels.
            let mut acc = BlockAccumulator::new(ASSISTED, Mode::ActiveAssisted, AanLaw::Emken);
            for r in &assisted {
                acc.add_trial(r);
            }
            let merged = SessionSummary::from_blocks(vec![acc], Vec::new(), Vec::new());
            let mut labels: Vec<&str> = assisted.iter().map(|r| r.mode.as_str()).collect();
            labels.dedup();
            let mut row = Self::new(&merged.blocks[0], &assisted);
            row.mode = labels.join("+");
            out.push(row);
        }
        out
    }
}

/// One session of a course.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionResult {
    /// 1-based index in the course.
    pub session: u32,
    /// The seed the session ran with.
    pub seed: u64,
    /// How the session ended (`completed`, a safety stop, …).
    pub end: String,
    /// Session time [s].
    pub session_time_s: f64,
    /// The block table, then the assisted blocks' aggregate.
    pub blocks: Vec<BlockResult>,
    /// The trial table's rows as CSV lines (the fields of `<session>.trials.csv`), in trial order.
    pub trials: Vec<String>,
}

/// One course: its keys and its sessions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CourseResult {
    /// The study's fingerprint ([`super::file::fingerprint`]).
    pub study: String,
    /// Courses in the study.
    pub courses: usize,
    /// This course's index.
    pub index: usize,
    /// Controller name.
    pub controller: String,
    /// Patient name.
    pub patient: String,
    /// Course seed.
    pub seed: u64,
    /// Joint names (the trial table's `rom_<joint>_rad` columns).
    pub joints: Vec<String>,
    /// The sessions in order.
    pub sessions: Vec<SessionResult>,
}

/// Where course `index` is stored under an output folder.
pub fn course_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("raw").join(format!("course-{index:05}.toml"))
}

impl CourseResult {
    /// Writes the course atomically under `dir/raw/`. Not real-time safe.
    pub fn save(&self, dir: &Path) -> Result<(), AppError> {
        save_raw(&course_path(dir, self.index), self, "(course result)")
    }

    /// Reads a course file (a regular file of at most [`MAX_COURSE_BYTES`]); errors name it. Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        load_raw(path, MAX_COURSE_BYTES, "(course result)")
    }
}

/// Writes one raw result file (`value` as TOML) atomically; errors name the file and `what` as the key. Shared by
/// the study's courses and the tuner's evaluations. Not real-time safe.
pub fn save_raw<T: Serialize>(path: &Path, value: &T, what: &str) -> Result<(), AppError> {
    let text = toml::to_string(value).map_err(|e| AppError::Config {
        file: path.display().to_string(),
        key: what.into(),
        reason: format!("cannot serialize: {e}"),
    })?;
    crate::files::write_atomically(path, text.as_bytes())
}

/// Reads one raw result file (a regular file of at most `max_bytes`); errors name the file and `what` as the key.
/// Not real-time safe.
pub fn load_raw<T: serde::de::DeserializeOwned>(path: &Path, max_bytes: u64, what: &str) -> Result<T, AppError> {
    let text = crate::files::read_input(path, max_bytes)?;
    toml::from_str(&text).map_err(|e| AppError::Config {
        file: path.display().to_string(),
        key: what.into(),
        reason: e.to_string(),
    })
}

/// Every file `dir/raw/<prefix>*.toml`, sorted by name. Not real-time safe.
pub fn raw_files(dir: &Path, prefix: &str) -> Result<Vec<PathBuf>, AppError> {
    let raw = dir.join("raw");
    let entries = std::fs::read_dir(&raw).map_err(|e| AppError::Io { path: raw.display().to_string(), source: e })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| AppError::Io { path: raw.display().to_string(), source: e })?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with(prefix) && name.ends_with(".toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Every course file under `dir/raw/`, sorted by name. Not real-time safe.
pub fn course_files(dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    raw_files(dir, "course-")
}
