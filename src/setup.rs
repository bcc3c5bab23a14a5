//! Loading and cross-checking the configuration files (robot, patient, protocol, controller) and assembling a
//! session: controller, safety supervisor, therapy. Shared by `sim`, `run` and `check`, so all three validate
//! identically. Every error names the file (or the embedded default), the key and the allowed range.

use std::path::{Path, PathBuf};

use plexo_controller::{Controller, ControllerConfig, Protocol, RomLimit, SafetySupervisor, Session, Therapy};
use plexo_hal::JointInfo;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{Data, FrameId, JointSafetyLimits, Model, PatientSpec, forward_kinematics};
use plexo_sim::PatientProfile;

use crate::AppError;
use crate::telemetry::analysis::BlockPlan;

/// A loaded file and where it came from (a path, or `<name> (embedded)`).
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    /// The parsed, validated content.
    pub value: T,
    /// Path or embedded-default name, for messages.
    pub source: String,
}

/// The robot's URDF text and its model: a path, or an embedded default (`plexo-arm4`, `plexo-arm6`, `test-arm7`).
pub fn load_robot(spec: &str) -> Result<Loaded<(Model, String)>, AppError> {
    let path = Path::new(spec);
    if path.exists() {
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        let model = Model::from_urdf_str(&text)
            .map_err(|e| plexo_kinematics::locate_urdf_error(&text, e).in_file(path.to_path_buf()))?;
        return Ok(Loaded { value: (model, text), source: path.display().to_string() });
    }
    match plexo_kinematics::default_robot_urdf(spec) {
        Some(text) => {
            Ok(Loaded { value: (Model::from_urdf_str(text)?, text.to_owned()), source: format!("{spec} (embedded)") })
        }
        None => Err(AppError::NotFound {
            what: "robot",
            name: spec.to_owned(),
            hint: "a URDF file path, or one of plexo-arm4, plexo-arm6, test-arm7",
        }),
    }
}

/// The directory of a robot loaded from a URDF file (its `source`), against which the URDF's mesh file names are
/// resolved; `None` for an embedded robot.
pub fn robot_dir(source: &str) -> Option<PathBuf> {
    let path = Path::new(source);
    path.is_file().then(|| path.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The embedded robots a therapy session runs on with the embedded defaults (controller configuration,
/// patients, protocols): the exoskeletons. `test-arm7` is embedded as a kinematics test model (a generic 7-joint
/// arm: `plexo model test-arm7`), not an exoskeleton a patient's arm can be attached to.
pub const EXOSKELETONS: [&str; 2] = ["plexo-arm4", "plexo-arm6"];

/// [`load_robot`] for a therapy session (`sim`, `check`, `study`): an embedded robot must be one of
/// [`EXOSKELETONS`]; a URDF file is taken as the user's exoskeleton (the joints it needs values for are named
/// later, with the file to write).
pub fn load_session_robot(spec: &str) -> Result<Loaded<(Model, String)>, AppError> {
    if !Path::new(spec).exists()
        && plexo_kinematics::default_robot_urdf(spec).is_some()
        && !EXOSKELETONS.contains(&spec)
    {
        return Err(AppError::NotFound {
            what: "exoskeleton",
            name: spec.to_owned(),
            hint: "plexo-arm4 or plexo-arm6 (embedded), or your own URDF file; test-arm7 is a kinematics test model, \
                   a generic arm no patient can be attached to (`plexo model test-arm7` shows it)",
        });
    }
    load_robot(spec)
}

/// The patient of a session: a real patient as the clinic describes them, or a virtual patient (whose profile
/// contains such a description and adds the impairment model the simulator runs).
#[derive(Clone, Debug)]
pub enum Patient {
    /// A clinical patient file ([`PatientSpec`] at the top level).
    Clinical(PatientSpec),
    /// A virtual patient profile (its `[spec]` table is the [`PatientSpec`]).
    Virtual(Box<PatientProfile>),
}

impl Patient {
    /// The patient as the clinic describes them: body size, range of motion, personal limits.
    pub fn spec(&self) -> &PatientSpec {
        match self {
            Patient::Clinical(spec) => spec,
            Patient::Virtual(profile) => profile.spec(),
        }
    }

    /// The virtual patient, if this is one (simulation, `plexo run --emulate`).
    pub fn virtual_patient(&self) -> Option<&PatientProfile> {
        match self {
            Patient::Clinical(_) => None,
            Patient::Virtual(profile) => Some(profile.as_ref()),
        }
    }

    /// The patient's pseudonymous id ([`PatientSpec::id`], also of a virtual profile's `[spec]`): the only patient
    /// identifier in session names, output file names and recording ids. Never the profile's `name`, which a
    /// clinic may fill with a person's name.
    pub fn name(&self) -> &str {
        &self.spec().id
    }

    /// The table of the file that holds the [`PatientSpec`], for error keys (`""`: the top level).
    fn spec_table(&self) -> &'static str {
        match self {
            Patient::Clinical(_) => "",
            Patient::Virtual(_) => "spec",
        }
    }
}

/// A patient: a clinical [`PatientSpec`] file, a virtual patient profile file (one with a `[spec]` table), or an
/// embedded virtual patient's name.
pub fn load_patient(spec: &str) -> Result<Loaded<Patient>, AppError> {
    let path = Path::new(spec);
    if path.exists() {
        let source = path.display().to_string();
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        let table: toml::Table = toml::from_str(&text).map_err(|e| AppError::Config {
            file: source.clone(),
            key: "(document)".into(),
            reason: e.to_string(),
        })?;
        let value = if table.contains_key("spec") {
            Patient::Virtual(Box::new(PatientProfile::from_toml_str(&text, &source)?))
        } else {
            Patient::Clinical(PatientSpec::from_toml_str(&text, &source)?)
        };
        return Ok(Loaded { value, source });
    }
    if plexo_sim::DEFAULT_PATIENTS.contains(&spec) {
        return Ok(Loaded {
            value: Patient::Virtual(Box::new(PatientProfile::builtin(spec)?)),
            source: format!("{spec} (embedded)"),
        });
    }
    Err(AppError::NotFound {
        what: "patient",
        name: spec.to_owned(),
        hint: "a patient .toml path (a clinical patient, or a virtual patient profile), or one of healthy, mild, \
               moderate, severe, spastic",
    })
}

/// A virtual patient (for the simulator): a profile .toml or an embedded profile name; a clinical patient file
/// is refused, naming it.
pub fn load_virtual_patient(spec: &str) -> Result<Loaded<PatientProfile>, AppError> {
    virtual_patient(&load_patient(spec)?)
}

/// The virtual patient of `patient`; a clinical patient is refused, naming its file.
pub fn virtual_patient(patient: &Loaded<Patient>) -> Result<Loaded<PatientProfile>, AppError> {
    match &patient.value {
        Patient::Virtual(profile) => Ok(Loaded { value: (**profile).clone(), source: patient.source.clone() }),
        Patient::Clinical(_) => Err(AppError::Config {
            file: patient.source.clone(),
            key: "spec".into(),
            reason: "a clinical patient file; a simulation needs a virtual patient profile (a [spec] table and the \
                     impairment model, see assets/patients/)"
                .into(),
        }),
    }
}

/// A protocol: a TOML path or an embedded protocol name.
pub fn load_protocol(spec: &str) -> Result<Loaded<Protocol>, AppError> {
    let path = Path::new(spec);
    let (protocol, source) = if path.exists() {
        crate::files::check_input(path, crate::files::MAX_CONFIG_BYTES)?;
        (Protocol::from_file(path)?, path.display().to_string())
    } else if plexo_controller::DEFAULT_PROTOCOLS.contains(&spec) {
        (Protocol::default_protocol(spec)?, format!("{spec} (embedded)"))
    } else {
        return Err(AppError::NotFound {
            what: "protocol",
            name: spec.to_owned(),
            hint: "a protocol .toml path, or one of center-out, rom-exercise",
        });
    };
    protocol.validate(&source)?;
    // Two target sets of one name: a block's `targets` would silently pick the first.
    for (i, set) in protocol.target_sets.iter().enumerate() {
        if let Some(first) = protocol.target_sets[..i].iter().position(|o| o.name == set.name) {
            return Err(AppError::Config {
                file: source,
                key: format!("target_sets[{i}].name"),
                reason: format!(
                    "{:?} is already the name of target_sets[{first}]: a block naming it would use only the first",
                    set.name
                ),
            });
        }
    }
    Ok(Loaded { value: protocol, source })
}

/// The controller configuration: a TOML path, or the embedded configuration written for `robot` (an embedded
/// robot's name: [`plexo_controller::default_controller_toml`]; any other robot gets plexo-arm4's, which
/// [`build_session`] refuses for joints it does not describe, saying which file to write).
pub fn load_controller(path: Option<&Path>, robot: &str) -> Result<Loaded<ControllerConfig>, AppError> {
    match path {
        Some(p) => {
            crate::files::check_input(p, crate::files::MAX_CONFIG_BYTES)?;
            Ok(Loaded { value: ControllerConfig::from_file(p)?, source: p.display().to_string() })
        }
        None => match plexo_controller::default_controller_toml(robot) {
            Some((_, asset)) => Ok(Loaded {
                value: ControllerConfig::default_for_robot(robot).expect("an embedded robot's configuration")?,
                source: format!("{asset} (embedded)"),
            }),
            None => Ok(Loaded {
                value: ControllerConfig::default_config()?,
                source: "assets/configs/controller.toml (embedded)".into(),
            }),
        },
    }
}

/// The patient's measured range of motion per robot joint ([`PatientSpec`]); errors name the missing joint.
pub fn patient_rom(model: &Model, patient: &Loaded<Patient>) -> Result<Vec<RomLimit>, AppError> {
    let spec = patient.value.spec();
    model
        .joints()
        .iter()
        .map(|j| {
            let [min, max] = spec.range_of(&j.name).ok_or_else(|| AppError::Config {
                file: patient.source.clone(),
                key: dotted(patient.value.spec_table(), &format!("range_of_motion.{}", j.name)),
                reason: format!(
                    "missing: the robot has joint `{}`; the patient's range of motion must cover every robot joint{}",
                    j.name,
                    if patient.source.ends_with("(embedded)") {
                        format!(
                            " — the embedded patients have ranges for the joints of plexo-arm4 and plexo-arm6 only; for \
                             this robot write a patient file with a range for each of {} (start from assets/patients/{}.toml) and \
                             pass it with --patient FILE",
                            joint_list(model),
                            patient.source.trim_end_matches(" (embedded)")
                        )
                    } else {
                        String::new()
                    }
                ),
            })?;
            Ok(RomLimit { min, max })
        })
        .collect()
}

/// The robot's joint names, comma-separated, for messages.
fn joint_list(model: &Model) -> String {
    model.joints().iter().map(|j| j.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// Refuses the embedded controller configuration for a robot whose joints it does not describe, saying which file
/// to write: its per-joint values (`[[safety.joints]]`, the arrays of `[friction]`, `[impedance]`, …) are
/// plexo-arm4's; they cannot be guessed for another robot's joints (torque limits, impedances, spasm
/// thresholds are per joint and safety-relevant). A user's own file is validated by the controller instead.
fn embedded_controller_fits(model: &Model, controller: &Loaded<ControllerConfig>) -> Result<(), AppError> {
    let configured: Vec<&str> = controller.value.safety.joints.iter().map(|j| j.name.as_str()).collect();
    let robot: Vec<&str> = model.joints().iter().map(|j| j.name.as_str()).collect();
    if !controller.source.contains("(embedded)") || configured == robot {
        return Ok(());
    }
    Err(AppError::Config {
        file: controller.source.clone(),
        key: "safety.joints".into(),
        reason: format!(
            "the embedded controller configuration has per-joint values for {} ({}); this robot has {} ({}): write \
             a controller configuration for it (start from {}: one [[safety.joints]] \
             table per joint and one value per joint in every per-joint array) and pass it with --controller FILE",
            configured.len(),
            configured.join(", "),
            robot.len(),
            robot.join(", "),
            controller.source.trim_end_matches(" (embedded)")
        ),
    })
}

/// The patient's personal safety limits per robot joint, in the model's joint order ([`PatientSpec::limits_of`]:
/// none where the clinician set none).
pub fn patient_limits(model: &Model, patient: &Loaded<Patient>) -> Vec<JointSafetyLimits> {
    let spec = patient.value.spec();
    model.joints().iter().map(|j| spec.limits_of(&j.name)).collect()
}

/// `joints` with each velocity [rad/s] and torque [Nm] limit lowered to the patient's personal limit where the
/// clinician set a tighter one; `personal` empty = unchanged.
fn with_personal_limits(joints: &[JointInfo], personal: &[JointSafetyLimits]) -> Vec<JointInfo> {
    joints
        .iter()
        .enumerate()
        .map(|(i, j)| {
            let p = personal.get(i).copied().unwrap_or_default();
            JointInfo {
                velocity_max: p.max_velocity.map_or(j.velocity_max, |v| v.min(j.velocity_max)),
                torque_max: p.max_torque.map_or(j.torque_max, |t| t.min(j.torque_max)),
                ..j.clone()
            }
        })
        .collect()
}

/// The patient's arm segments from their body size ([`PatientSpec::arm`]); errors name the file.
pub fn patient_arm(patient: &Loaded<Patient>) -> Result<ArmAnthropometrics, AppError> {
    patient.value.spec().arm().map_err(|e| AppError::Config {
        file: patient.source.clone(),
        key: dotted(patient.value.spec_table(), "height, mass"),
        reason: e.to_string(),
    })
}

/// The virtual patient's rest posture per robot joint [rad] (where the arm is before the robot is enabled).
pub fn patient_rest(model: &Model, patient: &Loaded<PatientProfile>) -> Result<Vec<f64>, AppError> {
    model
        .joints()
        .iter()
        .map(|j| {
            patient.value.joints.get(&j.name).map(|p| p.rest_position).ok_or_else(|| AppError::Config {
                file: patient.source.clone(),
                key: format!("joints.{}", j.name),
                reason: format!(
                    "missing: the robot has joint `{}`; the profile must describe every robot joint",
                    j.name
                ),
            })
        })
        .collect()
}

fn dotted(table: &str, key: &str) -> String {
    if table.is_empty() { key.to_owned() } else { format!("{table}.{key}") }
}

/// Controller, supervisor and therapy for one session, and what the telemetry shows of it.
pub struct SessionParts {
    /// Session + controller.
    pub therapy: Therapy,
    /// The safety supervisor.
    pub supervisor: SafetySupervisor,
    /// The handle frame of the robot model.
    pub handle: FrameId,
    /// The protocol's blocks with the handle position of every trial target [m], for the analysis and the
    /// recording.
    pub blocks: Vec<BlockPlan>,
    /// The patient's arm the controller was built with (drawn in the recording's 3D view).
    pub arm: ArmAnthropometrics,
}

/// Builds the session: validates the controller configuration against the robot, the protocol against the robot
/// and the patient's ROM, and the safety limits against the backend's joints tightened by the patient's personal
/// limits (`personal`: one per joint in the model's order, or empty for none; [`patient_limits`]). Not real-time
/// safe.
pub fn build_session(
    model: &Model,
    controller: &Loaded<ControllerConfig>,
    protocol: &Loaded<Protocol>,
    arm: &ArmAnthropometrics,
    rom: &[RomLimit],
    personal: &[JointSafetyLimits],
    joints: &[JointInfo],
) -> Result<SessionParts, AppError> {
    embedded_controller_fits(model, controller)?;
    let ctrl = Controller::new(model, &controller.value, arm, &controller.source)?;
    // The supervisor takes the tightest of the configuration, the backend's joints and the patient's own limits.
    let joints = with_personal_limits(joints, personal);
    let supervisor = SafetySupervisor::new(&controller.value.safety, &joints, Some(rom))?;
    let session = Session::new(&protocol.value, model, rom).map_err(|e| AppError::Config {
        file: protocol.source.clone(),
        key: "blocks".into(),
        reason: if protocol.source.ends_with("(embedded)") {
            format!(
                "{e} — the embedded protocols are written for plexo-arm4's joints; for this robot write a protocol \
                 with one value per joint ({}) wherever a posture is given (`home`; start from \
                 assets/protocols/{}.toml) and pass it with --protocol FILE",
                joint_list(model),
                protocol.source.trim_end_matches(" (embedded)")
            )
        } else {
            e.to_string()
        },
    })?;
    let frame = &controller.value.cartesian.frame;
    let handle = model.frame_id(frame).ok_or_else(|| AppError::Config {
        file: controller.source.clone(),
        key: "cartesian.frame".into(),
        reason: format!("the robot has no frame `{frame}`"),
    })?;
    let mut data = Data::new(model);
    let blocks = session
        .blocks()
        .iter()
        .map(|b| BlockPlan {
            name: b.spec.name.clone(),
            mode: b.spec.mode,
            law: b.spec.law,
            targets: b
                .trial_targets
                .iter()
                .map(|q| {
                    forward_kinematics(model, &mut data, q);
                    let p = data.world_T_frame[handle.0].translation.vector;
                    [p.x, p.y, p.z]
                })
                .collect(),
            longest_trial: b.spec.trial_timeout + b.spec.dwell,
        })
        .collect();
    Ok(SessionParts { therapy: Therapy::new(session, ctrl), supervisor, handle, blocks, arm: *arm })
}

/// A file-system-safe session name: `<protocol>_<patient id>_<UTC yyyymmdd-hhmmss>` (`patient`: the pseudonymous
/// id, [`Patient::name`] or `--patient-id`).
pub fn session_name(protocol: &str, patient: &str) -> String {
    let clean =
        |s: &str| s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect::<String>();
    let stem = Path::new(protocol).file_stem().and_then(|f| f.to_str()).unwrap_or(protocol);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    // The patient is a pseudonymous id, not a path: its dots are kept as dashes, not cut as an extension.
    format!("{}_{}_{}", clean(stem), clean(patient), utc_stamp(secs))
}

/// `yyyymmdd-hhmmss` (UTC) of Unix time `secs`, by the proleptic Gregorian calendar.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (the era-based method: 400-year eras of 146 097 days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: the personal limits a clinician writes into the patient's `PatientSpec` (`[spec.limits.*]`)
    /// were validated and then ignored; they must tighten the supervisor's velocity and torque limits (never loosen
    /// them).
    #[test]
    fn the_patients_personal_limits_tighten_the_supervisor() {
        let robot = load_robot("plexo-arm4").unwrap();
        let model = &robot.value.0;
        let mut patient = load_patient("moderate").unwrap();
        let Patient::Virtual(profile) = &mut patient.value else { panic!("an embedded virtual patient") };
        let elbow = JointSafetyLimits { max_velocity: Some(1.2), max_torque: Some(6.0) };
        profile.spec.limits.insert("elbow_flexion".into(), elbow);
        // A personal limit above the robot's changes nothing.
        let loose = JointSafetyLimits { max_velocity: Some(19.0), max_torque: Some(199.0) };
        profile.spec.limits.insert("shoulder_flexion".into(), loose);
        let personal = patient_limits(model, &patient);
        let joints = JointInfo::from_model(model);
        let build = |personal: &[JointSafetyLimits]| {
            build_session(
                model,
                &load_controller(None, "plexo-arm4").unwrap(),
                &load_protocol("center-out").unwrap(),
                &patient_arm(&patient).unwrap(),
                &patient_rom(model, &patient).unwrap(),
                personal,
                &joints,
            )
            .unwrap()
            .supervisor
        };
        let (with, without) = (build(&personal), build(&[]));
        let elbow = model.joints().iter().position(|j| j.name == "elbow_flexion").unwrap();
        let shoulder = model.joints().iter().position(|j| j.name == "shoulder_flexion").unwrap();
        assert!(without.torque_max(elbow) > 6.0 && without.velocity_max(elbow) > 1.2, "the test must tighten");
        assert_eq!(with.torque_max(elbow), 6.0);
        assert_eq!(with.velocity_max(elbow), 1.2);
        assert_eq!(with.torque_max(shoulder), without.torque_max(shoulder));
        assert_eq!(with.velocity_max(shoulder), without.velocity_max(shoulder));
    }

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000"); // leap day of a century leap year
        assert_eq!(utc_stamp(1_795_000_000), "20261118-110640");
    }

    #[test]
    fn session_names_are_file_safe() {
        let name = session_name("assets/protocols/center-out.toml", "my patient.toml");
        assert!(name.starts_with("center-out_my-patient-toml_"), "{name}");
        let name = session_name("center-out", "P.0042");
        assert!(name.starts_with("center-out_P-0042_"), "a pseudonymous id is not cut at its dot: {name}");
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }

    #[test]
    fn unknown_names_say_what_is_accepted() {
        let e = load_patient("nobody").unwrap_err().to_string();
        assert!(e.contains("nobody") && e.contains("moderate"), "{e}");
        let e = load_protocol("juggling").unwrap_err().to_string();
        assert!(e.contains("juggling") && e.contains("center-out"), "{e}");
        let e = load_robot("plexo-arm9").unwrap_err().to_string();
        assert!(e.contains("plexo-arm9") && e.contains("plexo-arm4"), "{e}");
    }

    #[test]
    fn a_profile_without_a_robot_joint_is_rejected_naming_the_joint() {
        let robot = load_robot("plexo-arm4").unwrap();
        let mut patient = load_patient("moderate").unwrap();
        assert!(patient_rom(&robot.value.0, &patient).is_ok());
        let Patient::Virtual(profile) = &mut patient.value else { panic!("an embedded patient is virtual") };
        profile.spec.range_of_motion.remove("elbow_flexion");
        match patient_rom(&robot.value.0, &patient) {
            Err(AppError::Config { file, key, .. }) => {
                assert_eq!(key, "spec.range_of_motion.elbow_flexion");
                assert!(file.contains("moderate"));
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn a_clinical_patient_file_gives_the_session_its_range_of_motion_and_body_size_without_a_virtual_patient() {
        let dir = std::env::temp_dir().join(format!("plexo-clinical-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("P-0042.toml");
        let rom = "shoulder_abduction = [-0.1, 2.4]\nshoulder_flexion = [-0.5, 2.6]\n\
                   shoulder_rotation = [-1.1, 1.1]\nelbow_flexion = [0.3, 2.2]\n";
        let text = format!("id = \"P-0042\"\nside = \"right\"\nheight = 1.62\nmass = 58.0\n[range_of_motion]\n{rom}");
        std::fs::write(&file, text).unwrap();
        let patient = load_patient(file.to_str().unwrap()).unwrap();
        assert!(patient.value.virtual_patient().is_none(), "a clinical file is no virtual patient");
        assert_eq!(patient.value.name(), "P-0042");
        let robot = load_robot("plexo-arm4").unwrap();
        let rom = patient_rom(&robot.value.0, &patient).unwrap();
        assert_eq!((rom[3].min, rom[3].max), (0.3, 2.2), "elbow_flexion from the clinical file");
        let arm = patient_arm(&patient).unwrap();
        let reference = ArmAnthropometrics::from_height_mass(1.62, 58.0).unwrap();
        assert_eq!(arm.forearm.length, reference.forearm.length);
        let e = load_virtual_patient(file.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("P-0042.toml") && e.contains("virtual patient profile"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_protocol_with_two_target_sets_of_one_name_is_refused_naming_both() {
        // Issue 13 §4: the second `center_out_8` was accepted; blocks used the first.
        let text = include_str!("../assets/protocols/center-out.toml").replace("\"elbow_rom\"", "\"center_out_8\"");
        let dir = std::env::temp_dir().join(format!("plexo-dup-sets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("protocol.toml");
        std::fs::write(&file, text).unwrap();
        let e = load_protocol(file.to_str().unwrap()).unwrap_err().to_string();
        assert!(e.contains("target_sets[1].name") && e.contains("target_sets[0]") && e.contains("center_out_8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn urdf_errors_name_the_element_and_its_line() {
        // Issue 13 §4: about two thirds of URDF errors named no line (duplicate names, missing links, zero axes,
        // bad masses ...).
        let good = include_str!("../assets/robots/plexo-arm4.urdf");
        let line_of = |needle: &str| good.lines().position(|l| l.contains(needle)).unwrap() + 1;
        let dir = std::env::temp_dir().join(format!("plexo-urdf-lines-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |text: &str| {
            let file = dir.join("robot.urdf");
            std::fs::write(&file, text).unwrap();
            load_robot(file.to_str().unwrap()).unwrap_err().to_string()
        };
        // `good` with the first line containing `what` after the elbow joint's start tag replaced by `by`.
        let line = line_of("joint name=\"elbow_flexion\"");
        let edit = |what: &str, by: &str| {
            let mut lines: Vec<&str> = good.lines().collect();
            let k = (line..lines.len()).find(|&k| lines[k].contains(what)).unwrap();
            lines[k] = by;
            lines.join("\n")
        };
        let at = format!("line {line}: <joint name=\"elbow_flexion\">");
        let e = load(&edit("<axis", "    <axis xyz=\"0 0 0\"/>"));
        assert!(e.contains(&at) && e.contains("axis has zero length"), "{e}");
        let e = load(&edit("<child", "    <child link=\"nowhere\"/>"));
        assert!(e.contains(&at) && e.contains("nowhere"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
