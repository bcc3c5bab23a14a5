//! The hardware configuration (`assets/configs/plexo-arm4-hardware.toml`): which robot, its CAN buses and drives
//! (plexo-hal [`CanRobotConfig`]), and how each joint is homed. Shared by `plexo check` and `plexo run`.
//!
//! Homing ("where is zero?") per joint:
//! - `absolute`: the drive's position is trusted as is (output-side absolute encoder, or a zero the drive keeps);
//!   before a session every joint must read inside its position limits (± `tolerance`), else the run is refused.
//! - `reference-pose`: `plexo run --home` with the robot (no patient) in its homing jig, each joint at its
//!   `reference` posture; the runtime measures the drive positions and stores the zero offsets in the
//!   calibration file beside the configuration. A session refuses to start without that calibration.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plexo_can::CanRobotConfig;
use plexo_hal::{JointInfo, JointState, Robot};
use serde::{Deserialize, Serialize};

use crate::AppError;

/// How a joint finds its zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HomingMethod {
    /// Trust the drive's absolute position; check it lies within the limits.
    Absolute,
    /// Measure the zero offset with the joint at a known reference posture (homing jig).
    ReferencePose,
}

/// Homing of one joint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HomingSpec {
    /// Joint name (as in the URDF and the CAN configuration).
    pub joint: String,
    /// Method.
    pub method: HomingMethod,
    /// Link position at the reference posture [rad] (`reference-pose`).
    #[serde(default)]
    pub reference: f64,
    /// Allowed distance outside the position limits (`absolute`) or from the previous calibration
    /// (`reference-pose`, a larger change asks for a re-check of the jig) [rad].
    #[serde(default = "default_tolerance")]
    pub tolerance: f64,
}

fn default_tolerance() -> f64 {
    0.05
}

/// The whole hardware configuration file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct HardwareFile {
    robot: String,
    can: CanRobotConfig,
    #[serde(default)]
    homing: Vec<HomingSpec>,
}

/// A loaded and validated hardware configuration.
#[derive(Clone, Debug)]
pub struct HardwareConfig {
    /// The file it came from.
    pub source: String,
    /// Robot: URDF path (relative to the configuration file) or embedded name.
    pub robot: String,
    /// CAN buses and drives.
    pub can: CanRobotConfig,
    /// Homing per joint (joints without an entry are `absolute`).
    pub homing: Vec<HomingSpec>,
}

/// Zero offsets measured by `plexo run --home` [rad], by joint name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// Joint name → zero offset [rad] (replaces `zero_offset` of the CAN configuration).
    pub zero_offset: BTreeMap<String, f64>,
}

/// The robot of a hardware configuration at `config`: an embedded robot's name, or a URDF path relative to the
/// configuration's own directory that stays inside it (after `..` and symbolic links are resolved): a
/// configuration cannot make `plexo` open a file elsewhere (`robot = "../../../../etc/passwd"`). Errors name the
/// file and the key `robot`.
fn resolve_robot(robot: &str, config: &Path) -> Result<String, AppError> {
    let refuse = |reason: String| AppError::Config { file: config.display().to_string(), key: "robot".into(), reason };
    if !robot.contains('/') && plexo_kinematics::default_robot_urdf(robot).is_some() {
        return Ok(robot.to_owned());
    }
    // Lexically first (an absolute path, or more `..` than directories below): refused before anything is opened.
    let mut depth = 0i32;
    for c in Path::new(robot).components() {
        match c {
            std::path::Component::Normal(_) => depth += 1,
            std::path::Component::ParentDir => depth -= 1,
            std::path::Component::CurDir => {}
            std::path::Component::RootDir | std::path::Component::Prefix(_) => depth = -1,
        }
        if depth < 0 {
            return Err(refuse(format!(
                "{robot:?} leads outside the configuration's directory: keep the URDF beside the configuration \
                 or in a directory below it"
            )));
        }
    }
    let dir = config.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let dir = dir.canonicalize().map_err(|e| refuse(format!("the configuration's directory: {e}")))?;
    let resolved = dir.join(robot).canonicalize().map_err(|e| {
        refuse(format!(
            "{robot:?} is neither an embedded robot (plexo-arm4, plexo-arm6, test-arm7) nor a URDF relative to {} \
             ({e})",
            dir.display()
        ))
    })?;
    if !resolved.starts_with(&dir) {
        return Err(refuse(format!(
            "{robot:?} resolves to {}, outside the configuration's directory {}: keep the URDF beside the \
             configuration or in a directory below it",
            resolved.display(),
            dir.display()
        )));
    }
    Ok(resolved.display().to_string())
}

impl HardwareConfig {
    /// Reads and validates a hardware configuration file. Errors name the file and the key.
    pub fn from_file(path: &Path) -> Result<Self, AppError> {
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        Self::from_toml(&text, path)
    }

    /// Parses and validates `text`; `path` names the file and anchors a relative robot path.
    pub fn from_toml(text: &str, path: &Path) -> Result<Self, AppError> {
        let source = path.display().to_string();
        let file: HardwareFile = toml::from_str(text).map_err(|e| AppError::Config {
            file: source.clone(),
            key: "(document)".into(),
            reason: e.to_string(),
        })?;
        // Parsed in place (line numbers and unknown keys refer to this file); then the CAN layer's own checks.
        let can = file.can;
        can.validate().map_err(|e| AppError::Config {
            file: source.clone(),
            key: "can".into(),
            reason: e.to_string(),
        })?;
        let robot = resolve_robot(&file.robot, path)?;
        let config = Self { source, robot, can, homing: file.homing };
        config.validate_homing()?;
        Ok(config)
    }

    fn validate_homing(&self) -> Result<(), AppError> {
        for (i, h) in self.homing.iter().enumerate() {
            let err = |key: &str, reason: String| AppError::Config {
                file: self.source.clone(),
                key: format!("homing[{i}].{key}"),
                reason,
            };
            let Some(joint) = self.can.joints.iter().find(|j| j.name == h.joint) else {
                let names: Vec<_> = self.can.joints.iter().map(|j| j.name.as_str()).collect();
                return Err(err(
                    "joint",
                    format!("unknown joint `{}`; the [can] joints are {}", h.joint, names.join(", ")),
                ));
            };
            if !(h.tolerance.is_finite() && h.tolerance > 0.0 && h.tolerance <= 0.5) {
                return Err(err("tolerance", format!("{} is outside (0, 0.5] rad", h.tolerance)));
            }
            let (lo, hi) = (joint.limits.position_min, joint.limits.position_max);
            if h.method == HomingMethod::ReferencePose && !(h.reference.is_finite() && (lo..=hi).contains(&h.reference))
            {
                return Err(err(
                    "reference",
                    format!("{} rad is outside the joint's limits [{lo}, {hi}] rad", h.reference),
                ));
            }
            if self.homing[..i].iter().any(|o| o.joint == h.joint) {
                return Err(err("joint", format!("`{}` is homed twice", h.joint)));
            }
        }
        Ok(())
    }

    /// The homing of `joint` (`absolute` with the default tolerance if not listed).
    pub fn homing_of(&self, joint: &str) -> HomingSpec {
        self.homing.iter().find(|h| h.joint == joint).cloned().unwrap_or(HomingSpec {
            joint: joint.to_owned(),
            method: HomingMethod::Absolute,
            reference: 0.0,
            tolerance: default_tolerance(),
        })
    }

    /// Where the calibration of this configuration is stored: `<config>.calibration.toml`.
    pub fn calibration_path(&self) -> PathBuf {
        PathBuf::from(&self.source).with_extension("calibration.toml")
    }

    /// The joint descriptions the runtime and the supervisor see.
    pub fn joints(&self) -> Vec<JointInfo> {
        self.can.joints.iter().map(|j| j.info()).collect()
    }

    /// Checks the CAN joints against the robot model: same names in the same order, limits inside the URDF's.
    pub fn check_against(&self, model: &plexo_kinematics::Model) -> Result<(), AppError> {
        let urdf: Vec<_> = model.joints().iter().map(|j| j.name.as_str()).collect();
        let can: Vec<_> = self.can.joints.iter().map(|j| j.name.as_str()).collect();
        if urdf != can {
            return Err(AppError::Config {
                file: self.source.clone(),
                key: "can.joints".into(),
                reason: format!("joints {can:?} must match the robot's actuated joints {urdf:?} in order"),
            });
        }
        for (i, (j, m)) in self.can.joints.iter().zip(model.joints()).enumerate() {
            let l = &j.limits;
            let u = &m.limits;
            let inside = l.position_min >= u.lower - 1e-9
                && l.position_max <= u.upper + 1e-9
                && l.velocity_max <= u.velocity + 1e-9
                && l.torque_max <= u.effort + 1e-9;
            if !inside {
                return Err(AppError::Config {
                    file: self.source.clone(),
                    key: format!("can.joints[{i}].limits"),
                    reason: format!(
                        "joint `{}`: position [{}, {}] rad, velocity {} rad/s, torque {} Nm must lie within the \
                         URDF's [{}, {}] rad, {} rad/s, {} Nm",
                        j.name,
                        l.position_min,
                        l.position_max,
                        l.velocity_max,
                        l.torque_max,
                        u.lower,
                        u.upper,
                        u.velocity,
                        u.effort
                    ),
                });
            }
        }
        Ok(())
    }

    /// Applies a stored calibration; a `reference-pose` joint without one is an error naming it.
    pub fn apply_calibration(&mut self, calibration: Option<&Calibration>) -> Result<(), AppError> {
        for j in &mut self.can.joints {
            let spec = self.homing.iter().find(|h| h.joint == j.name);
            if let Some(h) = spec.filter(|h| h.method == HomingMethod::ReferencePose) {
                match calibration.and_then(|c| c.zero_offset.get(&h.joint)) {
                    Some(z) => j.zero_offset = *z,
                    None => {
                        return Err(AppError::Config {
                            file: self.source.clone(),
                            key: format!("homing ({})", h.joint),
                            reason: format!(
                                "joint `{}` is homed at a reference pose but has no calibration: put the robot \
                                 (without the patient) in its homing jig and run `plexo run --home`",
                                h.joint
                            ),
                        });
                    }
                }
            }
        }
        Ok(())
    }
}

/// Zero offsets for the `reference-pose` joints from one measured state (robot in the jig): with
/// `q = dir·p/ratio − z`, the offset that makes the measured joint read `reference` is `z + (q − reference)`.
/// Checks the change against `previous` (a jump larger than the tolerance needs the jig re-checked).
pub fn measure_zero_offsets(
    config: &HardwareConfig,
    state: &JointState,
    previous: Option<&Calibration>,
    force: bool,
) -> Result<Calibration, AppError> {
    let mut out = previous.cloned().unwrap_or_default();
    for (i, j) in config.can.joints.iter().enumerate() {
        let h = config.homing_of(&j.name);
        if h.method != HomingMethod::ReferencePose {
            continue;
        }
        let q = state.position[i];
        if !q.is_finite() {
            return Err(AppError::Robot(format!("joint `{}` reads a non-finite position during homing", j.name)));
        }
        let z = j.zero_offset + (q - h.reference);
        if let Some(old) = previous.and_then(|c| c.zero_offset.get(&j.name))
            && (z - old).abs() > h.tolerance
            && !force
        {
            return Err(AppError::Robot(format!(
                "joint `{}`: the new zero offset {z:.4} rad differs from the stored {old:.4} rad by more than {} rad; \
                 check the joint sits in the jig, then repeat with --force-homing",
                j.name, h.tolerance
            )));
        }
        out.zero_offset.insert(j.name.clone(), z);
    }
    Ok(out)
}

/// Checks that every joint reads inside its limits (± the homing tolerance) before a session: a lost zero or a
/// wrong calibration must not reach the controller. Not real-time safe.
pub fn check_positions(config: &HardwareConfig, state: &JointState) -> Result<(), AppError> {
    for (i, j) in config.can.joints.iter().enumerate() {
        let tol = config.homing_of(&j.name).tolerance;
        let q = state.position[i];
        let (lo, hi) = (j.limits.position_min, j.limits.position_max);
        if !(q.is_finite() && q >= lo - tol && q <= hi + tol) {
            return Err(AppError::Robot(format!(
                "joint `{}` reads {q:.4} rad, outside its limits [{lo}, {hi}] rad (± {tol} rad): the zero is lost or \
                 the calibration is wrong; home the robot (`plexo run --home`) before a session",
                j.name
            )));
        }
    }
    Ok(())
}

/// Reads `cycles` states with zero commands (drives disabled) and returns the last. Not real-time safe.
pub fn settle_read<R: Robot>(robot: &mut R, cycles: usize) -> Result<JointState, AppError> {
    let mut state = JointState::zeros(robot.dof());
    let zero = plexo_hal::JointCommand::zeros(robot.dof());
    for _ in 0..cycles.max(1) {
        robot.write(&zero).map_err(|e| AppError::Robot(format!("write (disabled): {e}")))?;
        robot.read(&mut state).map_err(|e| AppError::Robot(format!("read (disabled): {e}")))?;
    }
    Ok(state)
}

/// Loads the calibration file if it exists.
pub fn load_calibration(path: &Path) -> Result<Option<Calibration>, AppError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
    toml::from_str(&text).map(Some).map_err(|e| AppError::Config {
        file: path.display().to_string(),
        key: "zero_offset".into(),
        reason: e.to_string(),
    })
}

/// Writes the calibration file.
pub fn save_calibration(path: &Path, calibration: &Calibration) -> Result<(), AppError> {
    let text = toml::to_string(calibration).map_err(|e| AppError::Robot(format!("calibration: {e}")))?;
    let header = "# Zero offsets [rad] measured by `plexo run --home` with the robot in its homing jig.\n";
    crate::files::write_atomically(path, format!("{header}{text}").as_bytes())
}

#[cfg(test)]
// 1.5708 rad is the elbow jig reference as the configuration file writes it, not an approximation of π/2.
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    fn config() -> HardwareConfig {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/plexo-arm4-hardware.toml");
        HardwareConfig::from_file(&path).unwrap()
    }

    fn state_at(q: &[f64]) -> JointState {
        let mut s = JointState::zeros(q.len());
        s.position.copy_from_slice(q);
        s
    }

    #[test]
    fn homing_measures_the_offset_that_makes_the_jig_posture_read_its_reference() {
        let hw = config();
        // Jig: rotation at 0, elbow at 90°; the drives read 0.02 and 1.5908 rad with the configured zero (0).
        let state = state_at(&[0.3, 0.4, 0.02, 1.5908]);
        let cal = measure_zero_offsets(&hw, &state, None, false).unwrap();
        assert_eq!(cal.zero_offset.len(), 2, "only the reference-pose joints: {cal:?}");
        assert!((cal.zero_offset["shoulder_rotation"] - 0.02).abs() < 1e-12);
        assert!((cal.zero_offset["elbow_flexion"] - 0.02).abs() < 1e-12);
        // Applying it makes the same drive reading the reference: q = raw − z.
        let mut applied = hw.clone();
        applied.apply_calibration(Some(&cal)).unwrap();
        let elbow = applied.can.joints.iter().find(|j| j.name == "elbow_flexion").unwrap();
        assert!((1.5908 - elbow.zero_offset - 1.5708).abs() < 1e-12);
    }

    #[test]
    fn a_large_change_of_zero_needs_force_and_a_nan_reading_is_refused() {
        let hw = config();
        let previous = Calibration {
            zero_offset: [("shoulder_rotation".to_owned(), 0.0), ("elbow_flexion".to_owned(), 0.0)].into(),
        };
        let moved = state_at(&[0.3, 0.4, 0.2, 1.5708]); // 0.2 rad off: a joint not seated in the jig
        let e = measure_zero_offsets(&hw, &moved, Some(&previous), false).unwrap_err().to_string();
        assert!(e.contains("shoulder_rotation") && e.contains("--force-homing"), "{e}");
        assert!(measure_zero_offsets(&hw, &moved, Some(&previous), true).is_ok());
        let nan = state_at(&[0.3, 0.4, f64::NAN, 1.5708]);
        let e = measure_zero_offsets(&hw, &nan, None, false).unwrap_err().to_string();
        assert!(e.contains("shoulder_rotation") && e.contains("non-finite"), "{e}");
    }

    #[test]
    fn a_session_refuses_an_uncalibrated_reference_pose_joint_and_a_lost_zero() {
        let mut hw = config();
        let e = hw.apply_calibration(None).unwrap_err().to_string();
        assert!(e.contains("shoulder_rotation") && e.contains("plexo run --home"), "{e}");
        let inside = state_at(&[0.3, 0.4, 0.0, 1.0]);
        assert!(check_positions(&hw, &inside).is_ok());
        // An elbow reading 3 rad (beyond 2.356 + tolerance): the zero is lost.
        let lost = state_at(&[0.3, 0.4, 0.0, 3.0]);
        let e = check_positions(&hw, &lost).unwrap_err().to_string();
        assert!(e.contains("elbow_flexion") && e.contains("home the robot"), "{e}");
    }

    #[test]
    fn homing_entries_are_validated_naming_the_entry() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/plexo-arm4-hardware.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let bad = text.replace("reference = 1.5708", "reference = 3.5");
        let e = HardwareConfig::from_toml(&bad, &path).unwrap_err().to_string();
        assert!(e.contains("homing[3].reference") && e.contains("outside the joint's limits"), "{e}");
        let twice = format!("{text}\n[[homing]]\njoint = \"elbow_flexion\"\nmethod = \"absolute\"\n");
        let e = HardwareConfig::from_toml(&twice, &path).unwrap_err().to_string();
        assert!(e.contains("homed twice"), "{e}");
    }

    #[test]
    fn a_robot_path_may_not_leave_the_configuration_directory() {
        // Issue 13 §2: `robot = "../../../../etc/passwd"` was opened and parsed.
        let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs");
        let text = std::fs::read_to_string(assets.join("plexo-arm4-hardware.toml")).unwrap();
        let config = assets.join("plexo-arm4-hardware.toml");
        for escape in ["../../../../etc/passwd", "/etc/passwd", "../robots/plexo-arm4.urdf", "a/../../x.urdf"] {
            let bad = text.replace("robot = \"plexo-arm4\"", &format!("robot = {escape:?}"));
            assert_ne!(bad, text);
            let e = HardwareConfig::from_toml(&bad, &config).unwrap_err().to_string();
            assert!(e.contains("robot") && e.contains("outside the configuration's directory"), "{escape}: {e}");
            assert!(!e.contains("root:"), "the file was not read: {e}");
        }
        let missing = text.replace("robot = \"plexo-arm4\"", "robot = \"arm.urdf\"");
        let e = HardwareConfig::from_toml(&missing, &config).unwrap_err().to_string();
        assert!(e.contains("neither an embedded robot"), "{e}");
        // A URDF beside the configuration (or below it) resolves against the configuration's directory.
        let dir = std::env::temp_dir().join(format!("plexo-hw-robot-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("urdf")).unwrap();
        std::fs::copy(assets.join("../robots/plexo-arm4.urdf"), dir.join("urdf/arm.urdf")).unwrap();
        let beside = text.replace("robot = \"plexo-arm4\"", "robot = \"urdf/arm.urdf\"");
        let hw = HardwareConfig::from_toml(&beside, &dir.join("hw.toml")).unwrap();
        assert_eq!(Path::new(&hw.robot), dir.canonicalize().unwrap().join("urdf/arm.urdf"));
        assert_eq!(HardwareConfig::from_toml(&text, &config).unwrap().robot, "plexo-arm4", "an embedded name");
        // A symbolic link below the directory that points outside it is refused as well.
        std::os::unix::fs::symlink("/etc/passwd", dir.join("urdf/link.urdf")).unwrap();
        let linked = text.replace("robot = \"plexo-arm4\"", "robot = \"urdf/link.urdf\"");
        let e = HardwareConfig::from_toml(&linked, &dir.join("hw.toml")).unwrap_err().to_string();
        assert!(e.contains("resolves to /etc/passwd, outside"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
