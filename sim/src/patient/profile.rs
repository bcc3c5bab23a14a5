//! Patient profiles: the TOML files in `assets/patients/` (embedded in the binary, see
//! [`crate::default_patient_toml`]), parsed with serde (`deny_unknown_fields`) and validated with errors that
//! name the file, the key and the allowed range.

use std::collections::BTreeMap;
use std::path::Path;

use plexo_kinematics::PatientSpec;
use serde::{Deserialize, Serialize};

use crate::SimError;

/// A virtual patient's description. See `assets/patients/moderate.toml` for a commented example.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatientProfile {
    /// Short name (`moderate`).
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// Seed of every random part of the patient (tremor).
    pub seed: u64,
    /// The patient as a clinic would describe them (pseudonymous id, body size for the anthropometric arm
    /// segments, side, measured range of motion, personal safety limits): TOML table `[spec]`. Everything else
    /// in the profile is the virtual patient's impairment model.
    pub spec: PatientSpec,
    /// Sensorimotor delay and the voluntary feedback controller.
    pub neural: NeuralProfile,
    /// Stretch-reflex dynamics shared by all spastic joints.
    pub spasticity: SpasticityProfile,
    /// Flexor synergy.
    pub synergy: SynergyProfile,
    /// Physiological tremor.
    pub tremor: TremorProfile,
    /// Trial-to-trial motor learning.
    pub learning: LearningProfile,
    /// Effort–error trade-off (slacking).
    pub slacking: SlackingProfile,
    /// Fatigue and recovery.
    pub fatigue: FatigueProfile,
    /// Motor skill and its two-rate internal model of the task (table `[skill]`; optional: a profile without it
    /// describes a skilled patient, [`SkillProfile::default`]).
    #[serde(default)]
    pub skill: SkillProfile,
    /// Per-joint properties keyed by the robot's joint names. Joints the robot lacks are unused; a robot joint
    /// missing here is an error.
    pub joints: BTreeMap<String, JointProfile>,
}

/// Sensorimotor delay and voluntary control.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeuralProfile {
    /// Voluntary (long-latency/transcortical) feedback delay and reaction time [s], in [0, 0.3]; ~0.10–0.15 s
    /// (long-latency responses 50–100 ms, voluntary corrections > 100 ms: Pruszynski & Scott 2012, Exp Brain Res
    /// 218).
    pub delay: f64,
    /// Short-latency (stretch-reflex) delay [s], in [0, 0.1]; 20–45 ms (Pruszynski & Scott 2012). Used by the
    /// spastic stretch reflex and the voluntary velocity feedback.
    pub reflex_delay: f64,
    /// Bandwidth of the voluntary feedback loop [Hz], in [0.05, 3]. Gains are set from each joint's inertia:
    /// `kp = I ω²` on the position error seen `delay` ago, `kd = 2 ζ I ω` on the velocity error seen
    /// `reflex_delay` ago, with `ω = 2π·bandwidth`.
    pub feedback_bandwidth: f64,
    /// Damping ratio ζ of the voluntary feedback, in [0.3, 3].
    pub feedback_damping_ratio: f64,
    /// Integral time constant of the load-adaptation term [s], in [0.1, 20].
    pub integral_time: f64,
    /// Fraction of the arm's own weight (and passive tissue torque) the internal model predicts, in [0, 1.2]. What
    /// the environment carries is learned on top (`Patient::expected_support`).
    pub internal_model_gain: f64,
}

/// Stretch-reflex dynamics.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpasticityProfile {
    /// Muscle activation time constant of the reflex torque [s], in [0.005, 0.2].
    pub activation_time: f64,
}

/// Flexor synergy (Dewald et al. 1995, Brain 118: shoulder abduction effort produces elbow flexion torque).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynergyProfile {
    /// Elbow-flexion torque per unit shoulder-abduction voluntary torque [Nm/Nm], in [0, 1].
    pub abduction_to_elbow_flexion: f64,
}

/// Physiological tremor, band-limited white noise. Its mechanical component oscillates at `√(K/I)` of the
/// segment (Elble 2003, Handbook of Clinical Neurophysiology vol. 1, ch. 22); postural hand tremor is modally
/// ≈ 7 Hz and 0.0015–0.035 g (Wade, Gresty & Findley 1982, Arch Neurol 39(6)). The default 4–8 Hz band is the
/// project's specification; the amplitudes are modelling choices of that order (see `assets/patients/*.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TremorProfile {
    /// RMS tremor torque per joint [Nm], in [0, 5].
    pub amplitude: f64,
    /// Lower band edge [Hz], in [1, 20].
    pub low_hz: f64,
    /// Upper band edge [Hz], in (low_hz, 25].
    pub high_hz: f64,
}

/// Trial-to-trial motor learning.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearningProfile {
    /// Capacity (fraction of nominal strength) at the start, in [0, 2].
    pub initial_capacity: f64,
    /// Capacity ceiling the patient can reach by practice, in [initial_capacity, 2].
    pub max_capacity: f64,
    /// Strength gain rate per trial at full effort (success or not: the dose), in [0, 1].
    pub rate: f64,
}

/// Effort–error trade-off (Emken, Bobrow, Reinkensmeyer 2007).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackingProfile {
    /// Effort (scale of the voluntary drive) at the start, in [0, 1].
    pub initial_effort: f64,
    /// Forgetting factor `f` of the effort per trial, in [0, 1].
    pub forgetting: f64,
    /// Effort increase per radian of trial error `g` [1/rad], in [0, 100]. The steady-state effort at a constant
    /// trial error `e` is `g e / (1 − f)`: with `g = (1 − f) / e_full` the effort is full (1) from the error
    /// `e_full` up and slacks below it (the shipped profiles use `e_full` = 0.15 rad RMS, a modelling choice; with
    /// a larger `g` the effort sits at its clamp for any error a reach makes).
    pub error_gain: f64,
    /// Effort floor, in [0, initial_effort].
    pub min_effort: f64,
}

/// Fatigue and recovery.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FatigueProfile {
    /// Fatigue rate at full relative effort [1/s], in [0, 1].
    pub rate: f64,
    /// Recovery rate at rest [1/s], in [0, 1].
    pub recovery_rate: f64,
    /// Fraction of capacity lost at full fatigue, in [0, 1].
    pub max_capacity_loss: f64,
    /// Rest between two sessions [s], in [0, 1e7] (optional, default 86 400 s = one day; a modelling choice:
    /// daily therapy). Applied when a saved state is resumed ([`crate::Patient::restore`]): fatigue recovers by
    /// the rest law `dF/dt = −recovery_rate · F`, the fast internal-model process decays (see [`SkillProfile`]).
    #[serde(default = "default_session_gap")]
    pub session_gap: f64,
}

fn default_session_gap() -> f64 {
    86_400.0
}

/// Motor skill: what limits the unassisted movement besides strength, and the error-driven internal model of the
/// task that improves it (the model and its sources: the [`crate::patient`] module docs, "Skill").
///
/// Skill `σ = clamp(x_f + x_s, 0, 1)` is the state of a two-rate internal model (Smith, Ghazizadeh & Shadmehr
/// 2006, PLoS Biol 4(6)): after every trial `x_f ← A_f x_f + B_f e`, `x_s ← A_s x_s + B_s e`, with `e` the trial's
/// task error in units of `error_scale`, weighted by the patient's engagement. The deficits below are those of
/// the unskilled patient (σ = 0) and shrink linearly to zero (the noise to half) at σ = 1.
///
/// The default (a profile without `[skill]`) has no deficit: the patient plans as before issue 12 (one
/// minimum-jerk movement straight to the goal, no motor noise); its internal model still learns.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkillProfile {
    /// Direction (aim) error of the unskilled plan [rad/rad], in [0, 1]: the intermediate submovement goals are
    /// displaced perpendicular to the movement by `aim_error ×` its joint-space amplitude (tan of the initial
    /// direction error), in a random direction each trial (seeded). Corrected by the last submovement; a
    /// single-submovement reach keeps it. A modelling choice (initial direction errors of 10–30° in hemiparetic
    /// reaching: Levin 1996, Brain 119; Kamper et al. 2002, Exp Brain Res 146).
    pub aim_error: f64,
    /// Endpoint bias of the unskilled plan [rad], in [0, 0.5]: the planned goal is displaced by this joint-space
    /// distance in a fixed direction per patient (seeded). A modelling choice.
    pub endpoint_bias: f64,
    /// Extra submovements of the unskilled reach, in [0, 5]: a reach is planned as `1 + round((1 − σ) ×
    /// submovements)` minimum-jerk submovements (Rohrer et al. 2002, J Neurosci 22(18): early after stroke
    /// movements are made of more, less blended submovements; recovery merges them).
    pub submovements: u32,
    /// Overlap of successive submovements at full skill, as a fraction of a submovement's duration, in
    /// [0, 0.9]; it grows as `σ × blend` (no overlap, separate speed peaks, at σ = 0; Rohrer et al. 2002). A
    /// modelling choice.
    pub blend: f64,
    /// Signal-dependent motor noise of the unskilled patient: standard deviation of the voluntary torque per unit
    /// torque, in [0, 0.5] (Harris & Wolpert 1998, Nature 394: noise proportional to the command), low-passed at
    /// the muscle's bandwidth; halves at full skill (a modelling choice).
    pub motor_noise: f64,
    /// Task error [rad] counted as unit error by the internal-model update, in [0.01, 1]. A modelling choice
    /// (Smith et al. use errors normalised to the perturbation, unit error = nothing learned yet; here the RMS
    /// task error of an unskilled, clearly segmented reach, ~0.3 rad ≈ 17°).
    pub error_scale: f64,
    /// Retention `A_f` of the fast process per trial, in [0, 1), ≤ `slow_retention` (Smith et al. 2006: 0.92).
    pub fast_retention: f64,
    /// Learning rate `B_f` of the fast process per trial, in [0, 1], ≥ `slow_rate` (Smith et al. 2006: 0.03).
    pub fast_rate: f64,
    /// Retention `A_s` of the slow process per trial, in [0, 1] (Smith et al. 2006: 0.996).
    pub slow_retention: f64,
    /// Learning rate `B_s` of the slow process per trial, in [0, 1] (Smith et al. 2006: 0.004).
    pub slow_rate: f64,
}

impl Default for SkillProfile {
    /// No skill deficit; Smith et al. (2006) rates; `error_scale` 0.3 rad.
    fn default() -> Self {
        Self {
            aim_error: 0.0,
            endpoint_bias: 0.0,
            submovements: 0,
            blend: 0.0,
            motor_noise: 0.0,
            error_scale: 0.3,
            fast_retention: 0.92,
            fast_rate: 0.03,
            slow_retention: 0.996,
            slow_rate: 0.004,
        }
    }
}

/// Modified Ashworth Scale grade (Bohannon & Smith 1987, Phys Ther 67(2)). Written as a string in TOML:
/// `"0"`, `"1"`, `"1+"`, `"2"`, `"3"`, `"4"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Mas {
    /// No increase in tone.
    #[serde(rename = "0")]
    Zero,
    /// Slight increase, catch and release at end of range.
    #[serde(rename = "1")]
    One,
    /// Slight increase, catch followed by minimal resistance through < half the range.
    #[serde(rename = "1+")]
    OnePlus,
    /// Marked increase through most of the range, still easily moved.
    #[serde(rename = "2")]
    Two,
    /// Considerable increase, passive movement difficult.
    #[serde(rename = "3")]
    Three,
    /// Rigid in flexion or extension.
    #[serde(rename = "4")]
    Four,
}

impl Mas {
    /// Default stretch-reflex `(gain [Nm·s/rad], velocity threshold [rad/s])` for this grade.
    ///
    /// MAS is ordinal; this mapping is a modelling choice, not data: higher grades engage at a lower stretch
    /// velocity (velocity-dependent definition of spasticity, Lance 1980; lowered velocity-dependent reflex
    /// threshold, Levin & Feldman 1994, Brain 117) and resist with a larger gain. Override per joint with
    /// `reflex_gain` / `reflex_threshold`.
    pub fn reflex_parameters(self) -> (f64, f64) {
        match self {
            Mas::Zero => (0.0, f64::INFINITY),
            Mas::One => (0.5, 2.0),
            Mas::OnePlus => (1.0, 1.5),
            Mas::Two => (2.0, 1.0),
            Mas::Three => (4.0, 0.5),
            Mas::Four => (8.0, 0.25),
        }
    }
}

/// Which joint velocity stretches the spastic muscle group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StretchDirection {
    /// Positive joint velocity stretches it (e.g. shoulder adductors stretched by abduction).
    Positive,
    /// Negative joint velocity stretches it (e.g. elbow flexors stretched by extension).
    Negative,
    /// Both directions (co-spasticity of agonist and antagonist).
    Both,
}

/// Per-joint properties of the patient's arm.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointProfile {
    /// Maximum voluntary torque [Nm], in [0, 200]. 0 = paralysed (no active torque of any kind). The embedded
    /// profiles use orders of magnitude of adult isometric strength (cf. Harbo, Brincks & Andersen 2012, Eur J
    /// Appl Physiol 112) scaled down for paresis (a modelling choice).
    pub max_torque: f64,
    /// Passive stiffness about `rest_position` [Nm/rad], in [0, 50] (linear spring-damper model of the relaxed
    /// joint as fitted to hypertonic elbows by McCrea, Eng & Hodgson 2003, J Neurosci Methods 128; raised in
    /// paretic limbs, Given, Dewald & Rymer 1995, J Neurol Neurosurg Psychiatry 59).
    pub passive_stiffness: f64,
    /// Passive viscous damping [Nm·s/rad], in [0, 5].
    pub passive_damping: f64,
    /// Passive rest position [rad], in [-π, π].
    pub rest_position: f64,
    /// Slope of the end-of-range torque at the boundary of the joint's range of motion (`spec.range_of_motion`,
    /// beyond which an exponential end-of-range torque acts) [Nm/rad], in [0, 200].
    pub end_range_stiffness: f64,
    /// Spasticity grade.
    pub mas: Mas,
    /// Which velocity stretches the spastic muscles.
    pub stretch_direction: StretchDirection,
    /// Override of the MAS reflex gain [Nm·s/rad], in [0, 50].
    #[serde(default)]
    pub reflex_gain: Option<f64>,
    /// Override of the MAS velocity threshold [rad/s], in [0, 10].
    #[serde(default)]
    pub reflex_threshold: Option<f64>,
}

impl JointProfile {
    /// Effective `(gain [Nm·s/rad], threshold [rad/s])` of the stretch reflex.
    pub fn reflex(&self) -> (f64, f64) {
        let (g, t) = self.mas.reflex_parameters();
        (self.reflex_gain.unwrap_or(g), self.reflex_threshold.unwrap_or(t))
    }
}

struct Checker<'a> {
    file: &'a str,
}

impl Checker<'_> {
    fn range(&self, key: &str, value: f64, lo: f64, hi: f64, allowed: &'static str) -> Result<(), SimError> {
        if value.is_finite() && value >= lo && value <= hi {
            Ok(())
        } else {
            Err(SimError::ProfileValue { file: self.file.to_owned(), key: key.to_owned(), value, allowed })
        }
    }
}

impl PatientProfile {
    /// Parses and validates a profile from TOML text; `file` names the source in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, SimError> {
        let profile: PatientProfile = toml::from_str(text).map_err(|e| {
            // The parser shows the offending line; name the table it is in too (`[joints.elbow_flexion]`).
            let table = e.span().and_then(|span| {
                text[..span.start.min(text.len())]
                    .lines()
                    .rev()
                    .map(str::trim)
                    .find(|line| line.starts_with('[') && line.contains(']'))
                    .map(|line| line[..=line.find(']').unwrap_or(line.len() - 1)].to_owned())
            });
            let reason = match table {
                Some(table) => format!("in table {table}: {e}"),
                None => e.to_string(),
            };
            SimError::ProfileParse { file: file.to_owned(), reason }
        })?;
        profile.validate(file)?;
        Ok(profile)
    }

    /// Reads, parses and validates a profile file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, SimError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| SimError::Io { path: path.display().to_string(), source })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// One of the embedded profiles (`healthy`, `mild`, `moderate`, `severe`, `spastic`).
    pub fn builtin(name: &str) -> Result<Self, SimError> {
        let text = crate::default_patient_toml(name)?;
        Self::from_toml_str(text, &format!("assets/patients/{name}.toml (embedded)"))
    }

    /// Checks every value against its documented range. Errors name `file`, the dotted key and the range.
    pub fn validate(&self, file: &str) -> Result<(), SimError> {
        let c = Checker { file };
        self.spec.validate(file, "spec").map_err(SimError::ProfileSpec)?;
        let n = &self.neural;
        c.range("neural.delay", n.delay, 0.0, 0.3, "[0, 0.3] s")?;
        c.range("neural.reflex_delay", n.reflex_delay, 0.0, 0.1, "[0, 0.1] s")?;
        c.range("neural.feedback_bandwidth", n.feedback_bandwidth, 0.05, 3.0, "[0.05, 3] Hz")?;
        c.range("neural.feedback_damping_ratio", n.feedback_damping_ratio, 0.3, 3.0, "[0.3, 3]")?;
        c.range("neural.integral_time", n.integral_time, 0.1, 20.0, "[0.1, 20] s")?;
        c.range("neural.internal_model_gain", n.internal_model_gain, 0.0, 1.2, "[0, 1.2]")?;
        c.range("spasticity.activation_time", self.spasticity.activation_time, 0.005, 0.2, "[0.005, 0.2] s")?;
        c.range(
            "synergy.abduction_to_elbow_flexion",
            self.synergy.abduction_to_elbow_flexion,
            0.0,
            1.0,
            "[0, 1] Nm/Nm",
        )?;
        let t = &self.tremor;
        c.range("tremor.amplitude", t.amplitude, 0.0, 5.0, "[0, 5] Nm")?;
        c.range("tremor.low_hz", t.low_hz, 1.0, 20.0, "[1, 20] Hz")?;
        c.range("tremor.high_hz", t.high_hz, t.low_hz + 1e-9, 25.0, "(low_hz, 25] Hz")?;
        let l = &self.learning;
        c.range("learning.initial_capacity", l.initial_capacity, 0.0, 2.0, "[0, 2]")?;
        c.range("learning.max_capacity", l.max_capacity, l.initial_capacity, 2.0, "[initial_capacity, 2]")?;
        c.range("learning.rate", l.rate, 0.0, 1.0, "[0, 1]")?;
        let s = &self.slacking;
        c.range("slacking.initial_effort", s.initial_effort, 0.0, 1.0, "[0, 1]")?;
        c.range("slacking.forgetting", s.forgetting, 0.0, 1.0, "[0, 1]")?;
        c.range("slacking.error_gain", s.error_gain, 0.0, 100.0, "[0, 100] 1/rad")?;
        c.range("slacking.min_effort", s.min_effort, 0.0, s.initial_effort, "[0, initial_effort]")?;
        let f = &self.fatigue;
        c.range("fatigue.rate", f.rate, 0.0, 1.0, "[0, 1] 1/s")?;
        c.range("fatigue.recovery_rate", f.recovery_rate, 0.0, 1.0, "[0, 1] 1/s")?;
        c.range("fatigue.max_capacity_loss", f.max_capacity_loss, 0.0, 1.0, "[0, 1]")?;
        c.range("fatigue.session_gap", f.session_gap, 0.0, 1e7, "[0, 1e7] s")?;
        let k = &self.skill;
        c.range("skill.aim_error", k.aim_error, 0.0, 1.0, "[0, 1] rad/rad")?;
        c.range("skill.endpoint_bias", k.endpoint_bias, 0.0, 0.5, "[0, 0.5] rad")?;
        c.range("skill.submovements", f64::from(k.submovements), 0.0, 5.0, "[0, 5]")?;
        c.range("skill.blend", k.blend, 0.0, 0.9, "[0, 0.9]")?;
        c.range("skill.motor_noise", k.motor_noise, 0.0, 0.5, "[0, 0.5]")?;
        c.range("skill.error_scale", k.error_scale, 0.01, 1.0, "[0.01, 1] rad")?;
        c.range("skill.slow_retention", k.slow_retention, 0.0, 1.0, "[0, 1]")?;
        c.range(
            "skill.fast_retention",
            k.fast_retention,
            0.0,
            k.slow_retention.min(1.0 - 1e-9),
            "[0, slow_retention], < 1",
        )?;
        c.range("skill.slow_rate", k.slow_rate, 0.0, 1.0, "[0, 1]")?;
        c.range("skill.fast_rate", k.fast_rate, k.slow_rate, 1.0, "[slow_rate, 1]")?;
        for (name, j) in &self.joints {
            let key = |field: &str| format!("joints.{name}.{field}");
            c.range(&key("max_torque"), j.max_torque, 0.0, 200.0, "[0, 200] Nm")?;
            c.range(&key("passive_stiffness"), j.passive_stiffness, 0.0, 50.0, "[0, 50] Nm/rad")?;
            c.range(&key("passive_damping"), j.passive_damping, 0.0, 5.0, "[0, 5] Nm s/rad")?;
            let pi = core::f64::consts::PI;
            c.range(&key("rest_position"), j.rest_position, -pi, pi, "[-pi, pi] rad")?;
            c.range(&key("end_range_stiffness"), j.end_range_stiffness, 0.0, 200.0, "[0, 200] Nm/rad")?;
            if let Some(g) = j.reflex_gain {
                c.range(&key("reflex_gain"), g, 0.0, 50.0, "[0, 50] Nm s/rad")?;
            }
            if let Some(th) = j.reflex_threshold {
                c.range(&key("reflex_threshold"), th, 0.0, 10.0, "[0, 10] rad/s")?;
            }
        }
        // The impairment model and the measured range of motion describe the same joints.
        for name in self.joints.keys() {
            if !self.spec.range_of_motion.contains_key(name) {
                let missing = "[spec.range_of_motion]";
                return Err(SimError::ProfileJointTables { file: file.to_owned(), joint: name.clone(), missing });
            }
        }
        for name in self.spec.range_of_motion.keys() {
            if !self.joints.contains_key(name) {
                let missing = "[joints]";
                return Err(SimError::ProfileJointTables { file: file.to_owned(), joint: name.clone(), missing });
            }
        }
        Ok(())
    }

    /// The patient as a clinic would describe them (the profile's `[spec]` table).
    pub fn spec(&self) -> &PatientSpec {
        &self.spec
    }

    /// The passive range of motion `[lower, upper]` of `joint` [rad] (`spec.range_of_motion`), if the profile
    /// describes the joint.
    pub fn range_of(&self, joint: &str) -> Option<[f64; 2]> {
        self.spec.range_of(joint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_contains_the_patient_spec_and_names_its_bad_keys() {
        let profile = PatientProfile::builtin("moderate").unwrap();
        assert_eq!(profile.spec().id, "sim-moderate");
        assert_eq!(profile.range_of("elbow_flexion"), Some([0.2, 2.25]));
        let text = crate::default_patient_toml("moderate").unwrap();
        let tall = text.replace("height = 1.75", "height = 2.75");
        assert_ne!(tall, text, "test edit must apply");
        let msg = PatientProfile::from_toml_str(&tall, "p.toml").unwrap_err().to_string();
        assert!(msg.contains("p.toml") && msg.contains("spec.height") && msg.contains("[1.2, 2.2] m"), "{msg}");
    }

    #[test]
    fn a_joint_in_only_one_of_joints_and_range_of_motion_is_named() {
        let mut profile = PatientProfile::builtin("moderate").unwrap();
        profile.spec.range_of_motion.remove("wrist_flexion");
        let msg = profile.validate("p.toml").unwrap_err().to_string();
        assert!(msg.contains("p.toml") && msg.contains("wrist_flexion") && msg.contains("[spec.range_of_motion]"));
        let mut profile = PatientProfile::builtin("moderate").unwrap();
        profile.joints.remove("wrist_flexion");
        let msg = profile.validate("p.toml").unwrap_err().to_string();
        assert!(msg.contains("p.toml") && msg.contains("wrist_flexion") && msg.contains("missing from [joints]"));
    }
}
