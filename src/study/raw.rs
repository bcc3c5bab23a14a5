//! The raw result of one course, as a shard writes it (`raw/course-NNNNN.toml`) and `merge` reads it back. TOML
//! keeps every number exactly (shortest round-trip decimal), so the tables a merge writes are byte for byte those
//! of an unsharded run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{AppError, BlockSummary};

/// One block of one session (the block table of [`crate::SessionSummary`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockResult {
    /// Block name from the protocol.
    pub name: String,
    /// Mode and law, e.g. `ActiveAssisted/Emken`.
    pub mode: String,
    /// Trials completed.
    pub trials: u32,
    /// Trials that reached the target in time.
    pub successes: u32,
    /// Mean final distance of the handle to the target [m].
    pub final_error_m: f64,
    /// Mean RMS joint tracking error [rad].
    pub rms_error_rad: f64,
    /// Mean RMS assistance torque norm [Nm].
    pub assistance_nm: f64,
    /// Mean RMS patient torque norm, observer estimate [Nm].
    pub effort_nm: f64,
    /// Mean patient effort share (estimate) [-].
    pub effort_share: f64,
    /// Mean hand-speed peaks per trial [-].
    pub speed_peaks: f64,
    /// Mean SPARC over the trials that moved [-]; absent if none moved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sparc: Option<f64>,
    /// Mean trial duration [s].
    pub duration_s: f64,
}

impl From<&BlockSummary> for BlockResult {
    fn from(b: &BlockSummary) -> Self {
        Self {
            name: b.name.clone(),
            mode: b.mode.clone(),
            trials: b.trials,
            successes: b.successes,
            final_error_m: b.mean_final_error_m,
            rms_error_rad: b.mean_rms_error_rad,
            assistance_nm: b.mean_assistance_nm,
            effort_nm: b.mean_patient_effort_nm,
            effort_share: b.patient_effort_share,
            speed_peaks: b.mean_speed_peaks,
            sparc: b.mean_sparc,
            duration_s: b.mean_duration_s,
        }
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
    /// The block table.
    pub blocks: Vec<BlockResult>,
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
        let path = course_path(dir, self.index);
        let text = toml::to_string(self).map_err(|e| AppError::Config {
            file: path.display().to_string(),
            key: "(course result)".into(),
            reason: format!("cannot serialize: {e}"),
        })?;
        crate::files::write_atomically(&path, text.as_bytes())
    }

    /// Reads a course file; errors name it. Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| AppError::Io { path: path.display().to_string(), source: e })?;
        toml::from_str(&text).map_err(|e| AppError::Config {
            file: path.display().to_string(),
            key: "(course result)".into(),
            reason: e.to_string(),
        })
    }
}

/// Every course file under `dir/raw/`, sorted by name. Not real-time safe.
pub fn course_files(dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    let raw = dir.join("raw");
    let entries = std::fs::read_dir(&raw).map_err(|e| AppError::Io { path: raw.display().to_string(), source: e })?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| AppError::Io { path: raw.display().to_string(), source: e })?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name.starts_with("course-") && name.ends_with(".toml") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
