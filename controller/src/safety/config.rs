//! The supervisor's configuration (the `[safety]` table of `controller.toml`), its validation, the patient's range
//! of motion, and the per-joint limits the supervisor enforces after merging configuration, robot and ROM.

use plexo_hal::{JointInfo, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use super::shaping::SoftWalls;
use crate::error::{ControllerError, check_range};

/// The file name errors of a supervisor built from a [`SafetyConfig`] name.
pub(super) const CONFIG_FILE: &str = "controller.toml [safety]";

/// Configuration of the supervisor (the `[safety]` table of `controller.toml`). Every number is explained in
/// `SAFETY.md`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SafetyConfig {
    /// Nominal control period [s] (0.001 = 1 kHz). Used for the torque-rate limit and the overrun count.
    pub period: f64,
    /// Longest allowed interval between two `apply` calls [s] before a safe stop (Franka: 20 missed 1 kHz
    /// commands = 0.02 s).
    pub watchdog_timeout: f64,
    /// A tick counts as an overrun when its interval exceeds `overrun_factor × period` [-] (statistics only).
    pub overrun_factor: f64,
    /// Soft-start ramp duration on enable and on resume [s] (Open-Source Leg SDK: ~1 s).
    pub soft_start_time: f64,
    /// Distance beyond an effective position limit that triggers a safe stop [rad].
    pub position_tolerance: f64,
    /// Largest distance outside an effective position limit at which a joint may still be enabled [rad]. A
    /// relaxed arm in a torque-off robot can rest outside the patient's range (gravity against a contracture:
    /// an elbow hanging at 8.6° below a ROM that starts at 11.5°); such a joint enables, the soft wall brings it
    /// back inside, and it may never move further out than where it was enabled (the allowance shrinks as it
    /// comes back, down to `position_tolerance`). Farther outside, enabling stops (`PositionLimit`).
    pub enable_outside_max: f64,
    /// Fraction of the velocity limit above which torque along the motion is faded out and the velocity brake
    /// acts [-].
    pub velocity_soft_fraction: f64,
    /// Velocity brake [Nm·s/rad]: above the soft velocity the supervisor adds `−velocity_brake_damping ·
    /// (|q̇| − v_soft)` against the motion, in every mode, so that a motion the robot does not drive (an arm that
    /// falls when help is withdrawn, a patient's own fast movement in a transparent block) is slowed before it
    /// trips the velocity stop. 0 switches it off; a configuration without the key gets the shipped value.
    #[serde(default = "default_velocity_brake_damping")]
    pub velocity_brake_damping: f64,
    /// Joint damping applied in SafeStop [Nm·s/rad].
    pub safe_stop_damping: f64,
    /// Stiffness of the SafeStop position hold [Nm/rad]: a spring to the posture measured when the stop began
    /// (clamped into the effective limits), as a drive's safe operating stop (IEC 61800-5-2 SS2/SOS) holds the
    /// stop position. Without it the patient's passive tissue drifts a gravity-compensated arm out of standstill.
    pub safe_stop_stiffness: f64,
    /// Largest torque of the SafeStop position spring per joint [Nm]: it holds against passive tissue, tone and
    /// tremor but never fights a deliberate push or a spasm harder than this.
    pub safe_stop_hold_max: f64,
    /// Joint damping applied in CompliantRelease [Nm·s/rad].
    pub release_damping: f64,
    /// Speed below which every joint counts as standing still [rad/s].
    pub standstill_velocity: f64,
    /// Standstill monitoring in SafeStop [s]: a stretch of motion (some joint faster than `standstill_velocity`)
    /// longer than this without a single standstill sample escalates to Fault — the arm did not come to rest
    /// after the stop began, or is being moved against the stop.
    pub safe_stop_timeout: f64,
    /// Consecutive non-finite state samples in SafeStop before escalating to Fault [-].
    pub nonfinite_fault_samples: u32,
    /// Consecutive samples with a non-advancing time stamp that count as a stale sensor [-], 1..=100 (the
    /// detection cannot be configured off).
    pub stale_samples: u32,
    /// Consecutive samples with bit-identical position, velocity and torque that count as a frozen sensor [-],
    /// 1..=10 000 (the detection cannot be configured off).
    pub frozen_samples: u32,
    /// How long the estimated interaction torque must exceed a joint's spasm threshold [s].
    pub spasm_time: f64,
    /// Largest drive-side stiffness accepted in a command [Nm/rad].
    pub drive_stiffness_max: f64,
    /// Largest drive-side damping accepted in a command [Nm·s/rad].
    pub drive_damping_max: f64,
    /// Per-joint limits, one entry per robot joint, by name.
    pub joints: Vec<JointSafetyConfig>,
}

/// The shipped velocity brake [Nm·s/rad] (`safety.velocity_brake_damping`, see `assets/configs/controller.toml`).
fn default_velocity_brake_damping() -> f64 {
    10.0
}

/// Per-joint limits of the supervisor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointSafetyConfig {
    /// Joint name, as in the URDF.
    pub name: String,
    /// Torque saturation [Nm] (the tighter of this and the robot's effort limit applies).
    pub torque_max: f64,
    /// Torque-rate limit [Nm/s] (Franka: 1000 Nm/s).
    pub torque_rate_max: f64,
    /// Velocity limit [rad/s] (the tighter of this and the robot's limit applies).
    pub velocity_max: f64,
    /// Width of the soft wall inside each effective position limit [rad].
    pub wall_width: f64,
    /// Soft-wall spring [Nm/rad].
    pub wall_stiffness: f64,
    /// Soft-wall damper, acting only when moving into the wall [Nm·s/rad].
    pub wall_damping: f64,
    /// Estimated interaction torque that counts as a spasm when held for `spasm_time` [Nm].
    pub spasm_threshold: f64,
}

/// The patient's range of motion for one joint [rad] (from the patient profile / clinical assessment).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RomLimit {
    /// Lowest position the patient tolerates [rad].
    pub min: f64,
    /// Highest position the patient tolerates [rad].
    pub max: f64,
}

impl SafetyConfig {
    /// Checks every number against its documented range; errors name `file` and the dotted key
    /// (`safety.soft_start_time`). [`ControllerConfig::validate`](crate::ControllerConfig::validate) calls it, so a
    /// bad `[safety]` table is reported against the file it came from. Not real-time safe.
    pub fn validate(&self, file: &str) -> Result<(), ControllerError> {
        let (c, f) = (self, file);
        // Each range is a hard one: a value outside it either switches a safety function off or is not a value
        // for a therapy robot. SAFETY.md gives the reasoning of each.
        check_range(f, "safety.period", c.period, 1e-4, 0.01)?;
        check_range(f, "safety.watchdog_timeout", c.watchdog_timeout, 2.0 * c.period, 0.1)?;
        check_range(f, "safety.overrun_factor", c.overrun_factor, 1.0, 100.0)?;
        // A soft start shorter than 0.1 s is a torque step on enable and resume (the kick the ramp exists to avoid;
        // Open-Source Leg SDK ~1 s); longer than 10 s and a stop-resume cycle is spent without support.
        check_range(f, "safety.soft_start_time", c.soft_start_time, 0.1, 10.0)?;
        check_range(f, "safety.position_tolerance", c.position_tolerance, 0.0, 0.175)?;
        check_range(f, "safety.enable_outside_max", c.enable_outside_max, 0.0, 0.26)?;
        check_range(f, "safety.velocity_soft_fraction", c.velocity_soft_fraction, 0.0, 0.95)?;
        check_range(f, "safety.velocity_brake_damping", c.velocity_brake_damping, 0.0, 50.0)?;
        check_range(f, "safety.safe_stop_damping", c.safe_stop_damping, 0.5, 100.0)?;
        check_range(f, "safety.safe_stop_stiffness", c.safe_stop_stiffness, 0.0, 500.0)?;
        check_range(f, "safety.safe_stop_hold_max", c.safe_stop_hold_max, 0.0, 50.0)?;
        check_range(f, "safety.release_damping", c.release_damping, 0.0, 100.0)?;
        check_range(f, "safety.standstill_velocity", c.standstill_velocity, 0.005, 0.2)?;
        check_range(f, "safety.safe_stop_timeout", c.safe_stop_timeout, 0.1, 5.0)?;
        check_range(f, "safety.nonfinite_fault_samples", c.nonfinite_fault_samples as f64, 1.0, 100.0)?;
        check_range(f, "safety.stale_samples", c.stale_samples as f64, 1.0, 100.0)?;
        check_range(f, "safety.frozen_samples", c.frozen_samples as f64, 1.0, 10_000.0)?;
        check_range(f, "safety.spasm_time", c.spasm_time, 0.0, 1.0)?;
        check_range(f, "safety.drive_stiffness_max", c.drive_stiffness_max, 0.0, 5000.0)?;
        check_range(f, "safety.drive_damping_max", c.drive_damping_max, 0.0, 100.0)?;
        for (i, j) in c.joints.iter().enumerate() {
            let k = |name: &str| format!("safety.joints[{i}] ({}).{name}", j.name);
            check_range(f, &k("torque_max"), j.torque_max, 0.0, 150.0)?;
            check_range(f, &k("torque_rate_max"), j.torque_rate_max, 1.0, 1000.0)?;
            check_range(f, &k("velocity_max"), j.velocity_max, 0.01, 6.0)?;
            check_range(f, &k("wall_width"), j.wall_width, 0.01, 0.5)?;
            check_range(f, &k("wall_stiffness"), j.wall_stiffness, 10.0, 10_000.0)?;
            check_range(f, &k("wall_damping"), j.wall_damping, 0.0, 1000.0)?;
            check_range(f, &k("spasm_threshold"), j.spasm_threshold, 1.0, 50.0)?;
        }
        Ok(())
    }
}

/// Limits of one joint after merging configuration, robot and patient ROM: what the supervisor enforces.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct EffectiveLimits {
    /// Lower effective position limit [rad]: the tighter of the robot's hard limit and the patient's ROM.
    pub(super) lower: f64,
    /// Upper effective position limit [rad].
    pub(super) upper: f64,
    /// Soft-wall width [rad], at most a quarter of the effective range.
    pub(super) wall_width: f64,
    /// Soft-wall spring [Nm/rad].
    pub(super) wall_stiffness: f64,
    /// Soft-wall damper [Nm·s/rad].
    pub(super) wall_damping: f64,
    /// Velocity limit [rad/s]: the tighter of configuration and robot.
    pub(super) velocity_max: f64,
    /// Torque saturation [Nm]: the tighter of configuration and robot.
    pub(super) torque_max: f64,
    /// Torque-rate limit [Nm/s].
    pub(super) torque_rate_max: f64,
    /// Interaction torque that counts as a spasm [Nm].
    pub(super) spasm_threshold: f64,
    /// The robot's hard position limits (lower, upper) [rad].
    pub(super) hard: (f64, f64),
}

impl EffectiveLimits {
    /// The soft walls inside the effective position limits. Real-time safe.
    pub(super) fn walls(&self) -> SoftWalls {
        SoftWalls {
            lower: self.lower,
            upper: self.upper,
            width: self.wall_width,
            stiffness: self.wall_stiffness,
            damping: self.wall_damping,
        }
    }
}

/// The limits of each of the robot's `joints` (names, hard limits) from a validated `config` and the patient's
/// range of motion (`rom[i]` for joint `i`; `None` = the robot's hard limits). Names the joint or key at fault.
/// Not real-time safe.
pub(super) fn effective_limits(
    config: &SafetyConfig,
    joints: &[JointInfo],
    rom: Option<&[RomLimit]>,
) -> Result<[EffectiveLimits; MAX_JOINTS], ControllerError> {
    if joints.len() > MAX_JOINTS {
        return Err(ControllerError::range(
            CONFIG_FILE,
            "joints",
            joints.len(),
            format!("at most {MAX_JOINTS} joints"),
        ));
    }
    for c in &config.joints {
        if !joints.iter().any(|j| j.name == c.name) {
            return Err(ControllerError::JointMismatch {
                file: CONFIG_FILE.into(),
                joint: c.name.clone(),
                reason: "not a joint of the robot".into(),
            });
        }
    }
    if let Some(rom) = rom
        && rom.len() != joints.len()
    {
        return Err(ControllerError::range(
            "patient ROM",
            "rom",
            rom.len(),
            format!("need one range per robot joint ({})", joints.len()),
        ));
    }
    let mut limits = [EffectiveLimits::default(); MAX_JOINTS];
    for (i, info) in joints.iter().enumerate() {
        let c = config.joints.iter().find(|c| c.name == info.name).ok_or_else(|| ControllerError::JointMismatch {
            file: CONFIG_FILE.into(),
            joint: info.name.clone(),
            reason: "robot joint has no [[safety.joints]] entry".into(),
        })?;
        if info.position_min.partial_cmp(&info.position_max) != Some(core::cmp::Ordering::Less) {
            return Err(ControllerError::JointMismatch {
                file: "robot".into(),
                joint: info.name.clone(),
                reason: format!("position limits [{}, {}] are empty", info.position_min, info.position_max),
            });
        }
        let (mut lower, mut upper) = (info.position_min, info.position_max);
        if let Some(r) = rom.map(|r| r[i]) {
            let key = format!("rom[{}] ({})", i, info.name);
            if !(r.min.is_finite() && r.max.is_finite() && r.min < r.max) {
                return Err(ControllerError::range(
                    "patient ROM",
                    key,
                    format!("[{}, {}]", r.min, r.max),
                    "need finite min < max",
                ));
            }
            lower = lower.max(r.min);
            upper = upper.min(r.max);
            if lower >= upper {
                return Err(ControllerError::range(
                    "patient ROM",
                    key,
                    format!("[{}, {}]", r.min, r.max),
                    format!("does not overlap the robot's limits [{}, {}]", info.position_min, info.position_max),
                ));
            }
        }
        // The two walls must not overlap: at most a quarter of the effective range each.
        let wall_width = c.wall_width.min(0.25 * (upper - lower));
        let torque_max = if info.torque_max.is_finite() && info.torque_max > 0.0 {
            c.torque_max.min(info.torque_max)
        } else {
            c.torque_max
        };
        let velocity_max = if info.velocity_max.is_finite() && info.velocity_max > 0.0 {
            c.velocity_max.min(info.velocity_max)
        } else {
            c.velocity_max
        };
        limits[i] = EffectiveLimits {
            lower,
            upper,
            wall_width,
            wall_stiffness: c.wall_stiffness,
            wall_damping: c.wall_damping,
            velocity_max,
            torque_max,
            torque_rate_max: c.torque_rate_max,
            spasm_threshold: c.spasm_threshold,
            hard: (info.position_min, info.position_max),
        };
    }
    Ok(limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ControllerConfig;

    const FILE: &str = "controller.toml";

    fn default_safety() -> SafetyConfig {
        ControllerConfig::default_config().expect("embedded default parses").safety
    }

    /// The error of `config.validate`, which must refuse and name `key` and the allowed range.
    fn refusal(config: &SafetyConfig, key: &str) -> String {
        let message = config.validate(FILE).expect_err("out-of-range value accepted").to_string();
        assert!(message.starts_with(FILE), "file not named: {message}");
        assert!(message.contains(key), "key `{key}` not named: {message}");
        assert!(message.contains("allowed range ["), "range not named: {message}");
        message
    }

    #[test]
    fn the_embedded_default_and_the_shipped_controller_toml_validate() {
        default_safety().validate("<embedded default>").expect("embedded default within every range");
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/configs/controller.toml");
        let shipped = ControllerConfig::from_file(path).expect("shipped controller.toml parses");
        shipped.validate(4, path).expect("shipped controller.toml within every range (plexo-arm4)");
    }

    #[test]
    fn stale_and_frozen_sensor_detection_cannot_be_configured_off() {
        let mut c = default_safety();
        (c.stale_samples, c.frozen_samples) = (0, 0);
        refusal(&c, "safety.stale_samples");
        c.stale_samples = 10;
        refusal(&c, "safety.frozen_samples");
        c.stale_samples = 0;
        c.frozen_samples = 500;
        refusal(&c, "safety.stale_samples");
    }

    #[test]
    fn a_torque_rate_limit_of_100000_nm_per_s_is_refused() {
        let mut c = default_safety();
        c.joints[0].torque_rate_max = 100_000.0;
        let message = refusal(&c, "safety.joints[0] (shoulder_abduction).torque_rate_max");
        assert!(message.contains("[1, 1000]"), "{message}");
        c.joints[0].torque_rate_max = 1000.0;
        c.validate(FILE).expect("Franka's 1000 Nm/s is the largest accepted rate");
    }

    #[test]
    fn a_spasm_threshold_of_500_nm_is_refused() {
        let mut c = default_safety();
        c.joints[3].spasm_threshold = 500.0;
        refusal(&c, "safety.joints[3] (elbow_flexion).spasm_threshold");
        c.joints[3].spasm_threshold = 0.0;
        refusal(&c, "safety.joints[3] (elbow_flexion).spasm_threshold");
    }

    #[test]
    fn a_soft_start_of_zero_is_refused_and_0_1_s_accepted() {
        // Issue 13 §3: `soft_start_time = 0` switched the enable/resume ramp off and passed `check`.
        let mut c = default_safety();
        c.soft_start_time = 0.0;
        let message = refusal(&c, "safety.soft_start_time");
        assert!(message.contains("[0.1, 10]"), "{message}");
        c.soft_start_time = 0.099;
        refusal(&c, "safety.soft_start_time");
        c.soft_start_time = 0.1;
        c.validate(FILE).expect("0.1 s is the shortest accepted soft start");
    }

    #[test]
    fn stop_timing_that_never_escalates_is_refused() {
        for (key, set) in [
            ("safety.watchdog_timeout", (|c: &mut SafetyConfig| c.watchdog_timeout = 1.0) as fn(&mut SafetyConfig)),
            ("safety.safe_stop_timeout", |c| c.safe_stop_timeout = 60.0),
            ("safety.nonfinite_fault_samples", |c| c.nonfinite_fault_samples = 10_000),
            ("safety.spasm_time", |c| c.spasm_time = 10.0),
            ("safety.period", |c| c.period = 0.1),
        ] {
            let mut c = default_safety();
            set(&mut c);
            refusal(&c, key);
        }
    }

    #[test]
    fn limits_that_switch_a_protection_off_are_refused() {
        for (key, set) in [
            ("safety.safe_stop_damping", (|c: &mut SafetyConfig| c.safe_stop_damping = 0.0) as fn(&mut SafetyConfig)),
            ("safety.standstill_velocity", |c| c.standstill_velocity = 0.0),
            ("safety.standstill_velocity", |c| c.standstill_velocity = 1.0),
            ("safety.position_tolerance", |c| c.position_tolerance = 0.5),
            ("safety.enable_outside_max", |c| c.enable_outside_max = 0.5),
            ("safety.velocity_soft_fraction", |c| c.velocity_soft_fraction = 0.99),
            ("safety.joints[1] (shoulder_flexion).wall_width", |c| c.joints[1].wall_width = 0.0),
            ("safety.joints[1] (shoulder_flexion).wall_stiffness", |c| c.joints[1].wall_stiffness = 0.0),
            ("safety.joints[2] (shoulder_rotation).velocity_max", |c| c.joints[2].velocity_max = 50.0),
            ("safety.joints[2] (shoulder_rotation).torque_max", |c| c.joints[2].torque_max = 500.0),
        ] {
            let mut c = default_safety();
            set(&mut c);
            refusal(&c, key);
        }
    }
}
