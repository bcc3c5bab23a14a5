//! The study file (TOML): controllers × patients × seeds × sessions per course, the protocol, the plant and the
//! per-session limits. Unknown keys are errors; every error names the file and the key. Paths inside the file
//! are relative to the file's directory. Format: docs/studies.md.

use std::path::{Path, PathBuf};

use plexo_controller::AanLaw;
use serde::Deserialize;

use crate::AppError;

/// Which physics engine simulates the robot in a study.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StudyPlant {
    /// plexo-kinematics articulated-body algorithm (the default: fast).
    #[default]
    Articulated,
    /// rapier3d-f64 multibody.
    Rapier,
}

/// One controller of the study.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ControllerEntry {
    /// Name in the tables and plots (unique in the study).
    pub name: String,
    /// Controller configuration .toml (default: the embedded controller with the simulated actuators' friction
    /// as the identified friction, as `plexo sim` without `--controller`).
    #[serde(default)]
    pub config: Option<PathBuf>,
    /// Replaces the AAN law of every active-assisted block of the protocol (`fixed`, `emken`, `rbf`, `tunnel`).
    #[serde(default)]
    pub law: Option<AanLaw>,
    /// The fixed-impedance baseline's stiffness, `aan.emken.initial` of the configuration [Nm/rad] (the `fixed`
    /// law holds this stiffness, scaled by the progression's assistance scale).
    #[serde(default)]
    pub stiffness: Option<f64>,
    /// Replaces the Krebs progression switch of every active-assisted block (`false` for a fixed baseline whose
    /// stiffness the progression must not scale).
    #[serde(default)]
    pub progression: Option<bool>,
    /// This controller's protocol (.toml path, relative to the study file, or an embedded name) instead of the
    /// study's `protocol`: arms that differ in what the robot does in each block (error augmentation, plain
    /// practice, guidance between unassisted probe blocks). `law` and `progression` apply to it as to the study's.
    #[serde(default)]
    pub protocol: Option<String>,
}

/// Seeds: an explicit list, or a count `n` meaning seeds 1..=n.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Seeds {
    /// Seeds 1..=n.
    Count(u64),
    /// These seeds.
    List(Vec<u64>),
}

/// Per-session limits (for quick studies and tests).
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Stop each session after this many trials.
    #[serde(default)]
    pub trials: Option<usize>,
    /// Stop each session after this much session time [s].
    #[serde(default)]
    pub duration: Option<f64>,
}

/// A sudden loss of the virtual patient's strength between two sessions (an intercurrent illness, a new
/// lesion): the test of whether assist-as-needed raises its help again when the patient can do less.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CapacityDrop {
    /// The session (2..=sessions) that starts with the reduced capacity.
    pub session: u32,
    /// Factor on the strength capacity the previous session ended with, in (0, 1) [-].
    pub factor: f64,
}

/// The study file as written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_robot")]
    robot: String,
    #[serde(default = "default_protocol")]
    protocol: String,
    #[serde(default)]
    plant: StudyPlant,
    sessions: u32,
    seeds: Seeds,
    patients: Vec<String>,
    controllers: Vec<ControllerEntry>,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    capacity_drop: Option<CapacityDrop>,
}

/// The robot of a study or tuning file that names none (an embedded robot).
pub(crate) fn default_robot() -> String {
    "plexo-arm4".into()
}

/// The protocol of a study or tuning cohort that names none (an embedded protocol).
pub(crate) fn default_protocol() -> String {
    "center-out".into()
}

/// A validated study.
#[derive(Clone, Debug, PartialEq)]
pub struct Study {
    /// Study name (report title).
    pub name: String,
    /// Free text for the report.
    pub description: String,
    /// Robot: a URDF path or an embedded robot.
    pub robot: String,
    /// Protocol: a .toml path or an embedded protocol.
    pub protocol: String,
    /// Physics.
    pub plant: StudyPlant,
    /// Sessions per course (chained as `--resume` chains them).
    pub sessions: u32,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Patients: profile paths (resolved) or embedded profile names.
    pub patients: Vec<String>,
    /// Controllers (config paths resolved).
    pub controllers: Vec<ControllerEntry>,
    /// Per-session limits.
    pub limits: Limits,
    /// A capacity drop before one session of every course, if any.
    pub capacity_drop: Option<CapacityDrop>,
    /// FNV-1a hash of the study file's text: shards of one study carry it, `merge` refuses a mix.
    pub fingerprint: String,
}

/// One course: a controller, a patient and a seed, run over `sessions` chained sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct Course {
    /// Index in the study's course order (controller-major, then patient, then seed).
    pub index: usize,
    /// Controller index.
    pub controller: usize,
    /// Patient index.
    pub patient: usize,
    /// The seed.
    pub seed: u64,
}

fn err(file: &Path, key: &str, reason: impl Into<String>) -> AppError {
    AppError::Config { file: file.display().to_string(), key: key.into(), reason: reason.into() }
}

/// Parses the TOML `text` of the file `path` into `T`; an error names the file and the key at fault (toml names the
/// unknown or bad key in its message; the key column says where). Shared by study and tuning files. Not real-time
/// safe.
pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<T, AppError> {
    toml::from_str(text).map_err(|e| {
        let key = e
            .span()
            .and_then(|s| text[s].lines().next().and_then(|l| l.split('=').next()).map(|k| k.trim().to_owned()))
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "(document)".to_owned());
        err(path, &key, e.message().to_owned())
    })
}

/// FNV-1a (64 bit) of `bytes`, in hex.
pub fn fingerprint(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Resolves `spec` against the study file's directory when it names an existing file there; embedded names
/// (`moderate`, `center-out`, `plexo-arm4`) are kept.
fn resolve(dir: &Path, spec: &str) -> String {
    let p = dir.join(spec);
    if Path::new(spec).is_relative() && p.exists() { p.display().to_string() } else { spec.to_owned() }
}

impl Study {
    /// Reads and validates a study file. Errors name the file and the key. Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        Self::parse(&text, path)
    }

    /// Parses and validates the text of a study file; `path` names it in errors and resolves relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AppError> {
        let raw: Raw = parse_toml(text, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if raw.sessions == 0 {
            return Err(err(path, "sessions", "must be at least 1"));
        }
        let seeds = match raw.seeds {
            Seeds::Count(0) => return Err(err(path, "seeds", "must be at least 1")),
            Seeds::Count(n) => (1..=n).collect(),
            Seeds::List(v) if v.is_empty() => return Err(err(path, "seeds", "the list is empty")),
            Seeds::List(v) => v,
        };
        if let Some((i, s)) = seeds.iter().enumerate().find(|(i, s)| seeds[..*i].contains(s)) {
            return Err(err(path, &format!("seeds[{i}]"), format!("seed {s} is listed twice")));
        }
        if raw.patients.is_empty() {
            return Err(err(path, "patients", "the list is empty"));
        }
        if raw.controllers.is_empty() {
            return Err(err(path, "controllers", "the list is empty"));
        }
        let mut controllers = raw.controllers;
        for i in 0..controllers.len() {
            let c = &controllers[i];
            let key = |k: &str| format!("controllers[{i}].{k}");
            if c.name.is_empty() || c.name.contains([',', '"', '\n']) {
                return Err(err(path, &key("name"), "must be non-empty, without commas, quotes or line breaks"));
            }
            if controllers[..i].iter().any(|o| o.name == c.name) {
                return Err(err(path, &key("name"), format!("`{}` is used twice", c.name)));
            }
            if let Some(k) = c.stiffness
                && !(k.is_finite() && k >= 0.0)
            {
                return Err(err(path, &key("stiffness"), format!("{k} is not a finite stiffness >= 0 Nm/rad")));
            }
            if c.stiffness.is_some() && c.law != Some(AanLaw::Fixed) {
                return Err(err(path, &key("stiffness"), "only with law = \"fixed\" (the fixed-impedance baseline)"));
            }
            controllers[i].config = c.config.as_ref().map(|p| if p.is_relative() { dir.join(p) } else { p.clone() });
            controllers[i].protocol = controllers[i].protocol.as_ref().map(|p| resolve(dir, p));
        }
        let patients = raw.patients.iter().map(|p| resolve(dir, p)).collect::<Vec<_>>();
        if let Some((i, p)) = patients.iter().enumerate().find(|(i, p)| patients[..*i].contains(p)) {
            return Err(err(path, &format!("patients[{i}]"), format!("`{p}` is listed twice")));
        }
        if let Some(t) = raw.limits.trials
            && t == 0
        {
            return Err(err(path, "limits.trials", "must be at least 1"));
        }
        if let Some(d) = raw.limits.duration
            && !(d.is_finite() && d > 0.0)
        {
            return Err(err(path, "limits.duration", format!("{d} is not a finite duration > 0 s")));
        }
        if let Some(drop) = raw.capacity_drop {
            if !(2..=raw.sessions).contains(&drop.session) {
                return Err(err(
                    path,
                    "capacity_drop.session",
                    format!("{} is not a session after the first (2..={})", drop.session, raw.sessions),
                ));
            }
            if !(drop.factor.is_finite() && drop.factor > 0.0 && drop.factor < 1.0) {
                return Err(err(path, "capacity_drop.factor", format!("{} is not in (0, 1)", drop.factor)));
            }
        }
        Ok(Self {
            name: raw.name,
            description: raw.description,
            robot: resolve(dir, &raw.robot),
            protocol: resolve(dir, &raw.protocol),
            plant: raw.plant,
            sessions: raw.sessions,
            seeds,
            patients,
            controllers,
            limits: raw.limits,
            capacity_drop: raw.capacity_drop,
            fingerprint: fingerprint(text.as_bytes()),
        })
    }

    /// Every course in study order: controller-major, then patient, then seed.
    pub fn courses(&self) -> Vec<Course> {
        let mut out = Vec::new();
        for controller in 0..self.controllers.len() {
            for patient in 0..self.patients.len() {
                for &seed in &self.seeds {
                    out.push(Course { index: out.len(), controller, patient, seed });
                }
            }
        }
        out
    }

    /// The patient's name in tables: the file stem of a profile path, or the embedded profile's name.
    pub fn patient_name(&self, i: usize) -> String {
        let p = Path::new(&self.patients[i]);
        if p.exists() {
            p.file_stem().map_or_else(|| self.patients[i].clone(), |s| s.to_string_lossy().into_owned())
        } else {
            self.patients[i].clone()
        }
    }
}

/// The seed of session `k` (1-based) of a course with seed `seed`: `seed + 1_000_003 · (k − 1)`, so sessions
/// differ in noise and variability while session 1 equals `plexo sim --seed <seed>`.
pub fn session_seed(seed: u64, k: u32) -> u64 {
    seed.wrapping_add(1_000_003 * u64::from(k - 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "t"
sessions = 2
seeds = 2
patients = ["mild", "severe"]
[[controllers]]
name = "emken"
[[controllers]]
name = "fixed"
law = "fixed"
stiffness = 20.0
progression = false
"#;

    #[test]
    fn a_study_expands_to_courses_in_study_order() {
        let s = Study::parse(GOOD, Path::new("t.toml")).unwrap();
        let c = s.courses();
        assert_eq!(c.len(), 8);
        assert_eq!((c[5].controller, c[5].patient, c[5].seed), (1, 0, 2));
        assert_eq!(s.plant, StudyPlant::Articulated);
        assert_eq!(session_seed(7, 1), 7);
    }

    #[test]
    fn the_efficacy_benchmark_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/studies/efficacy.toml");
        let s = Study::load(&path).unwrap();
        assert_eq!((s.controllers.len(), s.patients.len(), s.seeds.len(), s.sessions), (4, 4, 5, 10));
        assert_eq!(s.courses().len(), 80);
        assert_eq!(s.controllers[1].progression, Some(false));
        assert_eq!(s.capacity_drop, None);
        let setback = Study::load(&path.with_file_name("setback.toml")).unwrap();
        assert_eq!(setback.capacity_drop, Some(CapacityDrop { session: 3, factor: 0.4 }));
        assert_eq!(setback.courses().len(), 48);
        let quick = Study::load(&path.with_file_name("efficacy-quick.toml")).unwrap();
        assert_eq!((quick.seeds.len(), quick.sessions, quick.courses().len()), (2, 10, 32));
        assert_eq!(quick.controllers, s.controllers, "the quick form runs the benchmark's controllers");
        assert_eq!(quick.patients, s.patients);
        // The training-modes study: each arm its own protocol (resolved next to the study file), which loads.
        let modes = Study::load(&path.with_file_name("training-modes.toml")).unwrap();
        assert_eq!(modes.courses().len(), 3 * 2 * 3);
        for c in &modes.controllers {
            let protocol = c.protocol.as_deref().expect("each arm names its protocol");
            assert!(Path::new(protocol).is_file(), "{protocol}");
            let p = crate::setup::load_protocol(protocol).unwrap().value;
            let probes: Vec<_> = p.blocks.iter().filter(|b| b.name.starts_with("probe")).collect();
            assert_eq!(probes.len(), 2, "{protocol}: a probe before and after the training");
            assert!(probes.iter().all(|b| b.mode == plexo_controller::Mode::Transparent && b.arm_support == 0.0));
        }
        // The severe-ceiling study: the severe profile with slacking switched off, and a 4 s protocol, both of
        // which load and differ from the shipped ones only where they say.
        let ceiling = Study::load(&path.with_file_name("severe-ceiling.toml")).unwrap();
        assert_eq!(ceiling.courses().len(), 2 * 2 * 2);
        let crate::setup::Patient::Virtual(no_slacking) =
            crate::setup::load_patient(&ceiling.patients[1]).unwrap().value
        else {
            panic!("{} is a virtual patient profile", ceiling.patients[1]);
        };
        let crate::setup::Patient::Virtual(severe) = crate::setup::load_patient("severe").unwrap().value else {
            panic!("the embedded severe profile")
        };
        assert_eq!((no_slacking.slacking.min_effort, severe.slacking.min_effort), (1.0, 0.1));
        assert_eq!((&no_slacking.joints, no_slacking.learning), (&severe.joints, severe.learning));
        let slow = crate::setup::load_protocol(ceiling.controllers[1].protocol.as_deref().unwrap()).unwrap().value;
        let default = crate::setup::load_protocol("center-out").unwrap().value;
        for (a, b) in slow.blocks.iter().zip(&default.blocks) {
            let expected = if b.movement_time == 2.0 { 4.0 } else { b.movement_time };
            assert_eq!(a.movement_time, expected, "{}", b.name);
        }
    }

    #[test]
    fn errors_name_the_file_and_the_key() {
        let e = Study::parse(&GOOD.replace("sessions = 2", "sessions = 2\nsesions = 3"), Path::new("x.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.toml") && e.contains("sesions"), "{e}");
        let e = Study::parse(&GOOD.replace("law = \"fixed\"\n", ""), Path::new("x.toml")).unwrap_err().to_string();
        assert!(e.contains("controllers[1].stiffness"), "{e}");
        let drop = |text: &str| {
            Study::parse(&GOOD.replace("sessions = 2\n", &format!("sessions = 2\n{text}\n")), Path::new("x.toml"))
        };
        let e = drop("capacity_drop = { session = 1, factor = 0.5 }").unwrap_err().to_string();
        assert!(e.contains("capacity_drop.session"), "{e}");
        let e = drop("capacity_drop = { session = 2, factor = 1.5 }").unwrap_err().to_string();
        assert!(e.contains("capacity_drop.factor"), "{e}");
        let ok = drop("capacity_drop = { session = 2, factor = 0.4 }").unwrap();
        assert_eq!(ok.capacity_drop, Some(CapacityDrop { session: 2, factor: 0.4 }));
    }
}
