//! The patient as the clinic describes them: [`PatientSpec`] — a pseudonymous id, body size, the arm in the
//! exoskeleton, the measured range of motion per joint and the personal safety limits the clinician sets.
//!
//! It is everything the control stack may know about a real patient; a clinic build reads it without the
//! simulator. The arm's segment parameters follow from it ([`PatientSpec::arm`], de Leva 1996 via
//! [`crate::anthropometrics`]). A virtual patient (plexo-sim's `PatientProfile`) contains one and adds its
//! impairment model.
//!
//! ```
//! use plexo_kinematics::PatientSpec;
//!
//! let spec = PatientSpec::from_toml_str(
//!     r#"
//!     id = "P-0042"
//!     side = "right"
//!     height = 1.75  # [m]
//!     mass = 75.0    # [kg]
//!     [range_of_motion]  # [lower, upper] [rad]
//!     elbow_flexion = [0.2, 2.25]
//!     [limits.elbow_flexion]
//!     max_velocity = 1.5  # [rad/s]
//!     "#,
//!     "P-0042.toml",
//! )?;
//! assert_eq!(spec.range_of("elbow_flexion"), Some([0.2, 2.25]));
//! let arm = spec.arm()?;
//! assert!(arm.forearm.length > 0.25 && arm.forearm.length < 0.29);
//! # Ok::<(), plexo_kinematics::KinematicsError>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::KinematicsError;
use crate::anthropometrics::ArmAnthropometrics;

/// Accepted body height of a patient [m] (inside the anthropometric table's [`crate::anthropometrics::HEIGHT_RANGE`]).
pub const PATIENT_HEIGHT_RANGE: (f64, f64) = (1.2, 2.2);
/// Accepted body mass of a patient [kg] (inside the anthropometric table's [`crate::anthropometrics::MASS_RANGE`]).
pub const PATIENT_MASS_RANGE: (f64, f64) = (30.0, 200.0);
/// Longest pseudonymous id [characters].
pub const MAX_ID_LEN: usize = 64;

/// Which arm is in the exoskeleton.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// The left arm.
    Left,
    /// The right arm.
    Right,
}

/// Personal safety limits of one joint, set by the clinician (tighter than the robot's own limits; an absent
/// value leaves the robot's limit in force).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSafetyLimits {
    /// Highest joint speed allowed for this patient [rad/s], in (0, 20].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_velocity: Option<f64>,
    /// Highest joint torque the robot may apply to this patient [Nm], in (0, 200].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_torque: Option<f64>,
}

/// A real patient as the clinic describes them. Parsed with serde (`deny_unknown_fields`) and validated with
/// errors that name the file, the key and the joint ([`PatientSpec::validate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientSpec {
    /// Pseudonymous id (never a name or a birth date): 1–64 characters of `A–Z a–z 0–9 - _ .`.
    pub id: String,
    /// The arm in the exoskeleton.
    pub side: Side,
    /// Standing height [m], in [1.2, 2.2].
    pub height: f64,
    /// Body mass [kg], in [30, 200].
    pub mass: f64,
    /// Measured (passive) range of motion `[lower, upper]` per joint [rad], keyed by the robot's joint names:
    /// lower in [−2π, 2π], upper in (lower, 2π].
    pub range_of_motion: BTreeMap<String, [f64; 2]>,
    /// Personal safety limits per joint (only joints that have a measured range of motion).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, JointSafetyLimits>,
}

/// Builds the dotted key of `field` inside `table` (`""` = top level).
fn dotted(table: &str, field: &str) -> String {
    if table.is_empty() { field.to_owned() } else { format!("{table}.{field}") }
}

struct Checker<'a> {
    file: &'a str,
    table: &'a str,
}

impl Checker<'_> {
    fn error(&self, key: &str, value: String, allowed: &'static str) -> KinematicsError {
        KinematicsError::PatientSpecValue { file: self.file.to_owned(), key: dotted(self.table, key), value, allowed }
    }

    /// `value` must be finite and in `[lo, hi]` (`lo_open`: in `(lo, hi]`).
    fn range(
        &self,
        key: &str,
        value: f64,
        (lo, hi): (f64, f64),
        lo_open: bool,
        allowed: &'static str,
    ) -> Result<(), KinematicsError> {
        let above = if lo_open { value > lo } else { value >= lo };
        if value.is_finite() && above && value <= hi {
            Ok(())
        } else {
            Err(self.error(key, value.to_string(), allowed))
        }
    }
}

impl PatientSpec {
    /// Parses and validates a spec from TOML text; `file` names the source in errors. Not real-time safe.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, KinematicsError> {
        let spec: PatientSpec = toml::from_str(text)
            .map_err(|e| KinematicsError::PatientSpecParse { file: file.to_owned(), reason: e.to_string() })?;
        spec.validate(file, "")?;
        Ok(spec)
    }

    /// Reads, parses and validates a spec file. Not real-time safe.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, KinematicsError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| KinematicsError::ReadFile { path: path.to_path_buf(), source })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Checks every value against its documented range. Errors name `file`, the dotted key (prefixed with
    /// `table`, the spec's table inside a larger file, `""` at the top level) and the allowed range; a safety
    /// limit for a joint without a measured range of motion is an error naming the joint.
    pub fn validate(&self, file: &str, table: &str) -> Result<(), KinematicsError> {
        let c = Checker { file, table };
        let id_ok = !self.id.is_empty()
            && self.id.chars().count() <= MAX_ID_LEN
            && self.id.chars().all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !id_ok {
            return Err(c.error("id", format!("{:?}", self.id), "1-64 characters of A-Z a-z 0-9 - _ . (a pseudonym)"));
        }
        c.range("height", self.height, PATIENT_HEIGHT_RANGE, false, "[1.2, 2.2] m")?;
        c.range("mass", self.mass, PATIENT_MASS_RANGE, false, "[30, 200] kg")?;
        let two_pi = core::f64::consts::TAU;
        for (joint, [lower, upper]) in &self.range_of_motion {
            let key = format!("range_of_motion.{joint}");
            c.range(&format!("{key}[0]"), *lower, (-two_pi, two_pi), false, "[-2pi, 2pi] rad")?;
            // At least 1 µrad wide.
            c.range(&format!("{key}[1]"), *upper, (*lower + 1e-6, two_pi), false, "(range_of_motion[0], 2pi] rad")?;
        }
        for (joint, limits) in &self.limits {
            if !self.range_of_motion.contains_key(joint) {
                return Err(KinematicsError::PatientSpecJoint {
                    file: file.to_owned(),
                    key: dotted(table, &format!("limits.{joint}")),
                    joint: joint.clone(),
                    reason: "has no measured range of motion (a misspelt joint?)",
                });
            }
            if let Some(v) = limits.max_velocity {
                c.range(&format!("limits.{joint}.max_velocity"), v, (0.0, 20.0), true, "(0, 20] rad/s")?;
            }
            if let Some(t) = limits.max_torque {
                c.range(&format!("limits.{joint}.max_torque"), t, (0.0, 200.0), true, "(0, 200] Nm")?;
            }
        }
        Ok(())
    }

    /// The measured range of motion `[lower, upper]` of `joint` [rad], if measured.
    pub fn range_of(&self, joint: &str) -> Option<[f64; 2]> {
        self.range_of_motion.get(joint).copied()
    }

    /// The measured range of motion of each of `joints` [rad], in order. A joint without a measured range is an
    /// error naming `file`, the key (inside `table`) and the joint. Not real-time safe.
    pub fn ranges_for<'a>(
        &self,
        file: &str,
        table: &str,
        joints: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<[f64; 2]>, KinematicsError> {
        joints
            .into_iter()
            .map(|joint| {
                self.range_of(joint).ok_or_else(|| KinematicsError::PatientSpecJoint {
                    file: file.to_owned(),
                    key: dotted(table, &format!("range_of_motion.{joint}")),
                    joint: joint.to_owned(),
                    reason: "is a robot joint without a measured range of motion",
                })
            })
            .collect()
    }

    /// The personal safety limits of `joint` (none set: both `None`).
    pub fn limits_of(&self, joint: &str) -> JointSafetyLimits {
        self.limits.get(joint).copied().unwrap_or_default()
    }

    /// The patient's arm segments (de Leva 1996, male reference table) from height and mass.
    pub fn arm(&self) -> Result<ArmAnthropometrics, KinematicsError> {
        ArmAnthropometrics::from_height_mass(self.height, self.mass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = r#"
id = "P-0042"
side = "right"
height = 1.75
mass = 75.0

[range_of_motion]
shoulder_abduction = [-0.11, 2.49]
elbow_flexion = [0.2, 2.25]

[limits.elbow_flexion]
max_velocity = 1.5
max_torque = 12.0
"#;

    fn error_of(edit: (&str, &str)) -> String {
        let text = VALID.replace(edit.0, edit.1);
        assert_ne!(text, VALID, "test edit must apply: {edit:?}");
        PatientSpec::from_toml_str(&text, "p.toml").unwrap_err().to_string()
    }

    #[test]
    fn a_valid_spec_parses_with_its_arm() {
        let spec = PatientSpec::from_toml_str(VALID, "p.toml").unwrap();
        assert_eq!(spec.id, "P-0042");
        assert_eq!(spec.side, Side::Right);
        assert_eq!(spec.range_of("elbow_flexion"), Some([0.2, 2.25]));
        assert_eq!(spec.range_of("wrist_flexion"), None);
        assert_eq!(spec.limits_of("elbow_flexion").max_velocity, Some(1.5));
        assert_eq!(spec.limits_of("shoulder_abduction"), JointSafetyLimits::default());
        assert_eq!(spec.arm().unwrap(), ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap());
        let ranges = spec.ranges_for("p.toml", "", ["elbow_flexion", "shoulder_abduction"]).unwrap();
        assert_eq!(ranges, vec![[0.2, 2.25], [-0.11, 2.49]]);
        // Serialises back to the same spec.
        let text = toml::to_string(&spec).unwrap();
        assert_eq!(PatientSpec::from_toml_str(&text, "again.toml").unwrap(), spec);
    }

    #[test]
    fn each_invalid_value_is_named_with_file_key_and_range() {
        for (edit, key, allowed) in [
            (("id = \"P-0042\"", "id = \"Jane Doe\""), "id", "pseudonym"),
            (("id = \"P-0042\"", "id = \"\""), "id", "pseudonym"),
            (("height = 1.75", "height = 2.5"), "height", "[1.2, 2.2] m"),
            (("height = 1.75", "height = nan"), "height", "[1.2, 2.2] m"),
            (("mass = 75.0", "mass = 20.0"), "mass", "[30, 200] kg"),
            (("[-0.11, 2.49]", "[-7.0, 2.49]"), "range_of_motion.shoulder_abduction[0]", "[-2pi, 2pi] rad"),
            (("[0.2, 2.25]", "[0.2, 0.1]"), "range_of_motion.elbow_flexion[1]", "(range_of_motion[0], 2pi] rad"),
            (("[0.2, 2.25]", "[0.2, inf]"), "range_of_motion.elbow_flexion[1]", "(range_of_motion[0], 2pi] rad"),
            (("max_velocity = 1.5", "max_velocity = 0.0"), "limits.elbow_flexion.max_velocity", "(0, 20] rad/s"),
            (("max_torque = 12.0", "max_torque = 500.0"), "limits.elbow_flexion.max_torque", "(0, 200] Nm"),
        ] {
            let msg = error_of(edit);
            assert!(msg.contains("p.toml") && msg.contains(key) && msg.contains(allowed), "{edit:?}: {msg}");
        }
    }

    #[test]
    fn a_limit_for_an_unmeasured_joint_names_the_joint() {
        let msg = error_of(("[limits.elbow_flexion]", "[limits.elbow_flexon]"));
        assert!(msg.contains("p.toml") && msg.contains("limits.elbow_flexon"), "{msg}");
    }

    #[test]
    fn unknown_keys_and_bad_sides_are_refused_naming_them() {
        let msg = error_of(("mass = 75.0", "mass = 75.0\nweight = 80.0"));
        assert!(msg.contains("p.toml") && msg.contains("weight"), "{msg}");
        let msg = error_of(("max_torque = 12.0", "max_torque = 12.0\nmax_accel = 3.0"));
        assert!(msg.contains("max_accel"), "{msg}");
        let msg = error_of(("side = \"right\"", "side = \"both\""));
        assert!(msg.contains("side") && msg.contains("both"), "{msg}");
    }

    #[test]
    fn a_robot_joint_without_a_measured_range_is_named() {
        let spec = PatientSpec::from_toml_str(VALID, "p.toml").unwrap();
        let e = spec.ranges_for("p.toml", "spec", ["elbow_flexion", "wrist_flexion"]).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("p.toml") && msg.contains("spec.range_of_motion.wrist_flexion"), "{msg}");
        assert!(matches!(e, KinematicsError::PatientSpecJoint { ref joint, .. } if joint == "wrist_flexion"));
    }

    #[test]
    fn keys_inside_a_larger_file_carry_the_table() {
        let mut spec = PatientSpec::from_toml_str(VALID, "p.toml").unwrap();
        spec.height = 3.0;
        let msg = spec.validate("profile.toml", "spec").unwrap_err().to_string();
        assert!(msg.contains("profile.toml") && msg.contains("spec.height"), "{msg}");
    }
}
