//! Loading and cross-checking the configuration files (robot, patient, protocol, controller) and assembling a
//! session: controller, safety supervisor, therapy. Shared by `sim`, `run` and `check`, so all three validate
//! identically. Every error names the file (or the embedded default), the key and the allowed range.

use std::path::Path;

use plexo_controller::{Controller, ControllerConfig, Protocol, RomLimit, SafetySupervisor, Session, Therapy};
use plexo_hal::JointInfo;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_kinematics::{Data, FrameId, Model, forward_kinematics};
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
        let text =
            std::fs::read_to_string(path).map_err(|e| AppError::Io { path: path.display().to_string(), source: e })?;
        let model = Model::from_urdf_str(&text).map_err(|e| e.in_file(path.to_path_buf()))?;
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

/// A patient profile: a TOML path or an embedded profile name.
pub fn load_patient(spec: &str) -> Result<Loaded<PatientProfile>, AppError> {
    let path = Path::new(spec);
    if path.exists() {
        return Ok(Loaded { value: PatientProfile::from_file(path)?, source: path.display().to_string() });
    }
    if plexo_sim::DEFAULT_PATIENTS.contains(&spec) {
        return Ok(Loaded { value: PatientProfile::builtin(spec)?, source: format!("{spec} (embedded)") });
    }
    Err(AppError::NotFound {
        what: "patient",
        name: spec.to_owned(),
        hint: "a profile .toml path, or one of healthy, mild, moderate, severe, spastic",
    })
}

/// A protocol: a TOML path or an embedded protocol name.
pub fn load_protocol(spec: &str) -> Result<Loaded<Protocol>, AppError> {
    let path = Path::new(spec);
    let (protocol, source) = if path.exists() {
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
    Ok(Loaded { value: protocol, source })
}

/// The controller configuration: a TOML path or the embedded default (`assets/configs/controller.toml`).
pub fn load_controller(path: Option<&Path>) -> Result<Loaded<ControllerConfig>, AppError> {
    match path {
        Some(p) => Ok(Loaded { value: ControllerConfig::from_file(p)?, source: p.display().to_string() }),
        None => Ok(Loaded {
            value: ControllerConfig::default_config()?,
            source: "assets/configs/controller.toml (embedded)".into(),
        }),
    }
}

/// The patient's range of motion per robot joint, from the profile; errors name the missing joint.
pub fn patient_rom(model: &Model, patient: &Loaded<PatientProfile>) -> Result<Vec<RomLimit>, AppError> {
    model
        .joints()
        .iter()
        .map(|j| {
            let p = patient.value.joints.get(&j.name).ok_or_else(|| AppError::Config {
                file: patient.source.clone(),
                key: format!("joints.{}", j.name),
                reason: format!(
                    "missing: the robot has joint `{}`; the profile must describe every robot joint",
                    j.name
                ),
            })?;
            Ok(RomLimit { min: p.range[0], max: p.range[1] })
        })
        .collect()
}

/// The patient's rest posture per robot joint [rad] (where the arm is before the robot is enabled).
pub fn patient_rest(model: &Model, patient: &Loaded<PatientProfile>) -> Result<Vec<f64>, AppError> {
    patient_rom(model, patient)?;
    Ok(model.joints().iter().map(|j| patient.value.joints[&j.name].rest_position).collect())
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
}

/// Builds the session: validates the controller configuration against the robot, the protocol against the robot
/// and the patient's ROM, and the safety limits against the backend's joints. Not real-time safe.
pub fn build_session(
    model: &Model,
    controller: &Loaded<ControllerConfig>,
    protocol: &Loaded<Protocol>,
    arm: &ArmAnthropometrics,
    rom: &[RomLimit],
    joints: &[JointInfo],
) -> Result<SessionParts, AppError> {
    let ctrl = Controller::new(model, &controller.value, arm, &controller.source)?;
    let supervisor = SafetySupervisor::new(&controller.value.safety, joints, Some(rom))?;
    let session = Session::new(&protocol.value, model, rom).map_err(|e| AppError::Config {
        file: protocol.source.clone(),
        key: "blocks".into(),
        reason: e.to_string(),
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
    Ok(SessionParts { therapy: Therapy::new(session, ctrl), supervisor, handle, blocks })
}

/// A file-system-safe session name: `<protocol>_<patient>_<UTC yyyymmdd-hhmmss>`.
pub fn session_name(protocol: &str, patient: &str) -> String {
    let clean = |s: &str| {
        let stem = Path::new(s).file_stem().and_then(|f| f.to_str()).unwrap_or(s).to_owned();
        stem.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect::<String>()
    };
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    format!("{}_{}_{}", clean(protocol), clean(patient), utc_stamp(secs))
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

    #[test]
    fn utc_stamp_matches_known_dates() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_782_400), "20000229-000000"); // leap day of a century leap year
        assert_eq!(utc_stamp(1_795_000_000), "20261118-110640");
    }

    #[test]
    fn session_names_are_file_safe() {
        let name = session_name("assets/protocols/center-out.toml", "my patient.toml");
        assert!(name.starts_with("center-out_my-patient_"), "{name}");
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
        patient.value.joints.remove("elbow_flexion");
        match patient_rom(&robot.value.0, &patient) {
            Err(AppError::Config { file, key, .. }) => {
                assert_eq!(key, "joints.elbow_flexion");
                assert!(file.contains("moderate"));
            }
            other => panic!("expected a config error, got {other:?}"),
        }
    }
}
