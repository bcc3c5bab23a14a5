//! The controller configuration (`assets/configs/controller.toml`), with the embedded default.
//!
//! Per-joint values are arrays in the robot's joint order; [`ControllerConfig::validate`] checks their length
//! against the robot and every range, naming the key.

use serde::{Deserialize, Serialize};

use crate::error::{ControllerError, check_range};
use crate::safety::SafetyConfig;

/// The embedded default `controller.toml` (for plexo-arm4's four joints; see [`default_controller_toml`] for the
/// other robots Plexo ships).
pub const DEFAULT_CONTROLLER_TOML: &str = include_str!("../../assets/configs/controller.toml");

/// The embedded controller configuration written for an embedded robot (`plexo-arm4`:
/// `assets/configs/controller.toml`, `plexo-arm6`: `assets/configs/controller-plexo-arm6.toml`) and its asset
/// path; `None` for a robot Plexo ships no configuration for. Per-joint values (torque limits, impedances, spasm
/// thresholds) are safety-relevant and cannot be derived from another robot's joints.
pub fn default_controller_toml(robot: &str) -> Option<(&'static str, &'static str)> {
    match robot {
        "plexo-arm4" => Some((DEFAULT_CONTROLLER_TOML, "assets/configs/controller.toml")),
        "plexo-arm6" => Some((
            include_str!("../../assets/configs/controller-plexo-arm6.toml"),
            "assets/configs/controller-plexo-arm6.toml",
        )),
        _ => None,
    }
}

/// Most RBF centres per joint: the upper bound of `aan.rbf.centers` and the size of the RBF weight arrays of
/// [`AdaptationState`](crate::AdaptationState) (fixed-size, so the tick allocates nothing).
pub const MAX_RBF: usize = 16;

/// Largest progression window [trials]: the outcomes are the bits of a `u32` (TOML stores integers as i64).
pub const MAX_WINDOW: usize = 32;

/// Smallest accepted `cartesian.damping_lambda` [m²] (see [`CartesianConfig::damping_lambda`]).
pub const MIN_DAMPING_LAMBDA: f64 = 1e-6;

/// Everything the controller and its supervisor need besides the robot model and the patient.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControllerConfig {
    /// Safety supervisor limits.
    pub safety: SafetyConfig,
    /// Gravity compensation and arm-weight support.
    pub gravity: GravityConfig,
    /// Generalized-momentum observer of the patient's joint torque.
    pub observer: ObserverConfig,
    /// Joint friction model used for compensation (transparent, resistive, error augmentation) and in the
    /// observer.
    pub friction: FrictionConfig,
    /// Joint-space impedance (passive mode and the fixed-stiffness law).
    pub impedance: ImpedanceConfig,
    /// Cartesian impedance at the handle frame.
    pub cartesian: CartesianConfig,
    /// Transparent mode.
    pub transparent: TransparentConfig,
    /// Resistive mode.
    pub resistive: ResistiveConfig,
    /// Error augmentation mode.
    pub error_augmentation: ErrorAugmentationConfig,
    /// Assist-as-needed laws.
    pub aan: AanConfig,
    /// Shaping of the controller's own torque request (velocity filter of the damping terms, bumpless mode
    /// switches), so that the supervisor's rate limit does not have to smooth it.
    pub shaping: ShapingConfig,
}

/// Shaping of the torque request in the controller. Measured in closed loop with the simulated sensors (encoder
/// quantisation 2π/16384 rad and noise, velocity by filtered differentiation at 150 Hz): one encoder count in
/// one tick is a velocity pulse of ~0.2 rad/s, which the passive damping (12 Nm·s/rad) turns into a 2 Nm step —
/// the supervisor's rate limit (0.4 Nm per tick at the shoulder) clipped half of the passive and rest-hold ticks;
/// and a mode switch with the arm off its reference steps the request by (K_old − K_new)·e.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapingConfig {
    /// Cut-off [Hz] of each of the two cascaded first-order low-pass sections (critically damped 2nd order) that
    /// filter the measured joint velocity used by every mode's damping, friction-compensation and sliding-error
    /// terms (the observer keeps the raw velocity). 0 = no filter (a clean velocity sensor), else 10..=200 Hz:
    /// lower adds more than ~30 ms of lag to the damping loops.
    pub velocity_cutoff: f64,
    /// Duration [s] of the bumpless transfer at a mode/law/gain switch: the torque difference between the old
    /// and the new mode at the switch fades out linearly over this time. Range 0..=0.5 s (0 = switch at once).
    pub mode_switch_ramp: f64,
}

/// Gravity compensation of the robot and weight support of the patient's arm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GravityConfig {
    /// Default share of the patient's arm weight the robot carries [-], 0..=1 (a block may override it).
    pub arm_support: f64,
    /// Rate at which the weight support follows a change of the setting [1/s] (2 = a full change in 0.5 s).
    pub support_rate: f64,
    /// Largest withdrawal of the movement's weight support from one trial to the next [-], 0.01..=1 (default
    /// 0.25: from the warm-up's 100 % to a block's 30 % over three trials; added support acts at once). Why: a
    /// patient who moved with full support (a passive warm-up) expects it, and takes over the load it loses over
    /// several movements (the virtual patient learns its expected support from movement experience); withdrawn
    /// in the first trial of the block, a forearm fell to the supervisor's velocity stop under the force-free
    /// tunnel law (EFFICACY.md, "Safety stops").
    #[serde(default = "default_support_withdraw_step")]
    pub support_withdraw_step: f64,
    /// Patient body height for the anthropometric arm model [m] (overridden by the patient profile).
    pub patient_height: f64,
    /// Patient body mass for the anthropometric arm model [kg] (overridden by the patient profile).
    pub patient_mass: f64,
}

/// Generalized-momentum observer (De Luca & Mattone 2005; Haddadin et al. 2017, IEEE T-RO 33(6)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObserverConfig {
    /// Observer gain K_O = bandwidth of the first-order estimate [rad/s]; the estimate follows the true
    /// external torque as r = K_O/(s + K_O) τ_ext. Must satisfy K_O·period ≤ 0.5 (discrete stability margin).
    pub gain: f64,
    /// Use the commanded torque instead of the measured one as the motor torque input.
    pub use_commanded_torque: bool,
    /// Subtract the configured friction model from the motor torque (when the plant has joint friction).
    pub subtract_friction: bool,
    /// Weight of a cuff interaction-torque sensor when the robot has one [-], 0..=1 (0 = observer only).
    pub sensor_weight: f64,
    /// Low-pass cut-off applied to the sensor before fusion [Hz].
    pub sensor_cutoff: f64,
}

/// Coulomb + viscous joint friction: τ_f = c·tanh(q̇/v_s) + b·q̇.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrictionConfig {
    /// Coulomb friction per joint [Nm].
    pub coulomb: Vec<f64>,
    /// Viscous friction per joint [Nm·s/rad].
    pub viscous: Vec<f64>,
    /// Velocity scale of the tanh smoothing of the Coulomb term [rad/s].
    pub smoothing_velocity: f64,
}

/// Joint-space impedance τ = K(q_d − q) + D(q̇_d − q̇) + inverse-dynamics feed-forward.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpedanceConfig {
    /// Stiffness per joint [Nm/rad].
    pub stiffness: Vec<f64>,
    /// Damping per joint [Nm·s/rad].
    pub damping: Vec<f64>,
    /// Add the inverse-dynamics feed-forward M(q)q̈_d + C(q, q̇_d)q̇_d of the reference.
    pub feedforward: bool,
}

/// Cartesian impedance at a frame through Jᵀ with a null-space posture term.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CartesianConfig {
    /// Frame name (default `handle`).
    pub frame: String,
    /// Translational stiffness [N/m].
    pub stiffness: f64,
    /// Translational damping [N·s/m].
    pub damping: f64,
    /// Null-space posture stiffness per joint [Nm/rad].
    pub nullspace_stiffness: Vec<f64>,
    /// Null-space posture damping per joint [Nm·s/rad].
    pub nullspace_damping: Vec<f64>,
    /// Damping λ² of the least-squares inverse used in the null-space projector [m²], ≥ 1e-6. It must be
    /// positive: at a singularity J Jᵀ loses rank and only λ² keeps (J Jᵀ + λ²I)⁻¹ bounded (by 1/λ²); with λ² = 0
    /// the projector would be undefined exactly where the arm is stretched out.
    pub damping_lambda: f64,
}

/// Transparent mode: gravity + friction compensation and a small residual damping.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransparentConfig {
    /// Residual joint damping per joint [Nm·s/rad]. The human arm closes its own delayed (~0.1 s) feedback
    /// loop through the robot; a little damping keeps that coupled loop stable at the cost of a small, known
    /// interaction torque (b·q̇). 0 = pure compensation.
    pub damping: Vec<f64>,
}

/// Resistive mode: τ = −B q̇ − K (q − q_anchor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResistiveConfig {
    /// Viscous resistance per joint [Nm·s/rad].
    pub viscous: Vec<f64>,
    /// Elastic resistance per joint about the trial's start posture [Nm/rad].
    pub elastic: Vec<f64>,
}

/// Error augmentation (Wei, Patton et al. 2005): τ = (G − 1)·K_e·(q − q_d) + offset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorAugmentationConfig {
    /// Error gain G [-], 1..=3 (1 = no augmentation; Wei & Patton used ~2).
    pub gain: f64,
    /// Nominal error stiffness K_e per joint [Nm/rad]: the torque per radian of error at G = 2.
    pub stiffness: Vec<f64>,
    /// Constant offset torque per joint [Nm] (a perturbing bias; 0 = none).
    pub offset: Vec<f64>,
    /// Largest augmenting torque per joint [Nm] (before the supervisor).
    pub torque_max: f64,
    /// Largest error that is augmented [rad]: the augmentation grows with the error up to `error_max`, then fades
    /// linearly to zero at 2 × `error_max` (see `Controller::error_augmentation_torque`). Optional (default
    /// [`DEFAULT_EA_ERROR_MAX`]), within [0.01, 0.5] rad.
    #[serde(default = "default_ea_error_max")]
    pub error_max: f64,
}

/// Default largest augmented error [rad] (0.1 rad ≈ 6°: the size of a reaching error a mildly impaired patient
/// makes and can see; error augmentation magnifies small errors, Patton et al. 2006, Exp Brain Res 168(3), and
/// pushing an arm that is already far off the path only makes it run away).
pub const DEFAULT_EA_ERROR_MAX: f64 = 0.1;

fn default_ea_error_max() -> f64 {
    DEFAULT_EA_ERROR_MAX
}

/// Assist-as-needed law parameters. Every adapted quantity has configured bounds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AanConfig {
    /// Damping added by every AAN law per joint [Nm·s/rad].
    pub damping: Vec<f64>,
    /// Emken et al. 2007 error-based stiffness adaptation.
    pub emken: EmkenConfig,
    /// Wolbrecht et al. 2008 RBF deficit model.
    pub rbf: RbfConfig,
    /// Duschau-Wicke et al. 2010 path-control tunnel.
    pub tunnel: TunnelConfig,
    /// Krebs et al. 2003 performance-based progression on a sliding window of trials.
    pub progression: ProgressionConfig,
    /// Arm-weight support adapted to the patient in the blocks with the progression rule.
    #[serde(default)]
    pub support: SupportAdaptationConfig,
}

/// Arm-weight support as needed: in an assisted block with the progression rule the share α of the arm's weight
/// the robot carries adapts once per trial, α ← clamp(f·α + g·(δα − δ₀), max(min, α_block), max), where δα is the
/// share of the arm's weight the assist-as-needed law itself carried during the trial — the least-squares fit of the law's
/// torque on the arm's gravity torque, δα = Σ τ_assist·g_arm / Σ g_arm·g_arm over the trial's ticks — and δ₀
/// (`tolerated_share`) the share the law may carry as part of its job. A patient who cannot hold its arm sags, the
/// law holds it up (δα > δ₀) and the support rises, so the patient's own torque is free for the movement; a
/// patient who carries its arm leaves δα < δ₀ and the support falls, so it carries more; a support that lifts the
/// arm above the reference makes the law push down (δα < 0) and it falls at once. Equilibrium: the law carries
/// δα = δ₀ + (1 − f)·α/g of the arm's weight. Why δ₀: every patient sags a little under an impedance (feedback
/// delay) and learns to expect the support it feels (people do not push against a support), so without it the
/// support crept up for a strong patient too (measured: a strong constructed profile, law share 0.005–0.07 per
/// trial, support 0.3 → 0.78 over 32 trials). Why the block's `arm_support` (α_block) is the floor: the
/// prescription is the therapist's; the rule adds support a patient needs and takes back what it added. Allowed
/// below it (measured over 10-session courses), the mild and moderate patients' support fell to 0.03–0.12 and
/// their effort share rose (68 → 78 %), but a patient whose capacity then dropped to 20 % recovered 80 % success
/// only after 20+ trials (`progression_closed_loop::moderate_patient_recovers_after_a_sudden_capacity_drop`).
/// Why support at all: arm-weight support reduces the flexor
/// synergy and enlarges the reachable workspace after stroke (Sukal, Ellis & Dewald 2007, Exp Brain Res 183;
/// Ellis, Sukal-Moulton & Dewald 2009, Neurorehabil Neural Repair 23(8)), and withdrawing it as the patient
/// recovers is progressive loading (Ellis et al. 2009 trained with progressively reduced support). The rule's form
/// (Emken-like forgetting plus an error term) and its defaults are Plexo's modelling choices, measured in
/// EFFICACY.md. The support is arm-weight compensation, not assistance along the task: it is reported beside the
/// assistance (per trial `arm_support`), never counted in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SupportAdaptationConfig {
    /// Adapt the support in blocks with the progression rule (false: every block uses its `arm_support`).
    pub adaptive: bool,
    /// Forgetting factor f per trial [-], 0.5..=1 (0.99: an unused support falls to 38 % over 96 trials).
    pub forgetting: f64,
    /// Gain g on the share of the arm's weight the law carried [-], 0..=2.
    pub gain: f64,
    /// Share δ₀ of the arm's weight the law may carry without raising the support [-], 0..=0.5.
    pub tolerated_share: f64,
    /// Lower bound of the adapted support [-], 0..=1.
    pub min: f64,
    /// Upper bound of the adapted support [-], `min`..=1.
    pub max: f64,
}

impl Default for SupportAdaptationConfig {
    fn default() -> Self {
        Self { adaptive: true, forgetting: 0.99, gain: 0.5, tolerated_share: 0.05, min: 0.0, max: 1.0 }
    }
}

fn default_support_withdraw_step() -> f64 {
    0.25
}

/// K_{i+1} = f·K_i + g·max(|e_i| − deadband, 0), per joint, bounded to [k_min, k_max].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmkenConfig {
    /// Forgetting factor f per trial [-], 0..1 (Emken 2007 identified f ≈ 0.8 for human adaptation).
    pub forgetting: f64,
    /// Error gain g [Nm/rad per rad].
    pub gain: f64,
    /// Error deadband [rad]: errors below it count as zero, so assistance decays.
    pub deadband: f64,
    /// Initial stiffness [Nm/rad].
    pub initial: f64,
    /// Lower bound of the adapted stiffness [Nm/rad].
    pub k_min: f64,
    /// Upper bound of the adapted stiffness [Nm/rad].
    pub k_max: f64,
    /// Adapt continuously every tick instead of once per trial.
    pub continuous: bool,
    /// Nominal trial duration used to convert f and g to per-second rates in continuous mode [s].
    pub nominal_trial_time: f64,
    /// Which error of a trial drives the per-trial update (see [`EmkenError`]). Default: the task error.
    #[serde(default)]
    pub error: EmkenError,
    /// Deadband of the task error as a fraction of the trial's reach tolerance [-], 0..=2 (used with
    /// [`EmkenError::Task`]): a patient within this fraction of the tolerance when the reference arrives needs
    /// no help, and the stiffness only forgets; a failed trial counts its whole distance.
    #[serde(default = "default_deadband_fraction")]
    pub deadband_fraction: f64,
    /// Half-width of the window of free movement around the moving reference, as a fraction of the trial's reach
    /// tolerance [-], 0..=1 (0: no window, the impedance acts on every error). Inside the window (joint-space
    /// tracking error ‖q_d − q‖ ≤ w) the law applies no torque; outside, its impedance acts on the error beyond
    /// the window (see [`crate::aan::emken_window_factor`]). The window of allowed deviation around the moving
    /// reference is the assist-as-needed of Cai et al. 2006 (J Neurosci 26(41)): variability the patient can
    /// correct alone is left to the patient.
    #[serde(default = "default_window_fraction")]
    pub window_fraction: f64,
    /// Widest window as a fraction of the trial's reach tolerance [-], `window_fraction`..=1. The window in force
    /// is `window_fraction / s` (capped here), s the progression's assistance scale: as the progression withdraws
    /// help it widens the patient's freedom with it, and a rescue narrows it (see
    /// [`crate::aan::emken_window_half_width`]).
    #[serde(default = "default_window_max_fraction")]
    pub window_max_fraction: f64,
    /// The task error's deadband is at least the window in force (with [`EmkenError::Task`]): an arrival error the
    /// law leaves to the patient (inside the window, where it applies no torque) does not raise its stiffness
    /// either. false: the deadband is `deadband_fraction` × the tolerance alone. A failed trial still counts its
    /// whole distance.
    #[serde(default)]
    pub deadband_follows_window: bool,
    /// Scale the law's damping with its adapted stiffness at a constant damping ratio,
    /// D_j = damping_j·√(s·K_j / initial) with s the progression's assistance scale, so that the whole impedance
    /// fades with the help (true, default); false keeps `aan.damping` fixed whatever the stiffness.
    #[serde(default = "default_true")]
    pub constant_damping_ratio: bool,
}

/// Default [`EmkenConfig::deadband_fraction`] [-].
pub const DEFAULT_EMKEN_DEADBAND_FRACTION: f64 = 0.0;

fn default_deadband_fraction() -> f64 {
    DEFAULT_EMKEN_DEADBAND_FRACTION
}

/// Default [`EmkenConfig::window_fraction`] [-].
pub const DEFAULT_EMKEN_WINDOW_FRACTION: f64 = 0.0;

fn default_window_fraction() -> f64 {
    DEFAULT_EMKEN_WINDOW_FRACTION
}

/// Default [`EmkenConfig::window_max_fraction`] [-].
pub const DEFAULT_EMKEN_WINDOW_MAX_FRACTION: f64 = 0.0;

fn default_window_max_fraction() -> f64 {
    DEFAULT_EMKEN_WINDOW_MAX_FRACTION
}

fn default_true() -> bool {
    true
}

/// The trial error that drives the per-trial Emken update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmkenError {
    /// The task error (Plexo's choice): how far from the target the arm is, in joint space, when the reference
    /// arrives (the planned movement time has elapsed) or when the trial ends, whichever is larger, beyond
    /// `deadband_fraction` × the trial's reach tolerance; each joint adapts by its share of that distance. Help
    /// is what the patient needs to be on target on time, and no more: a patient who reaches on time with a
    /// wobbly path gets no help, so its own errors stay its own (Emken et al. 2007: the robot must let errors
    /// happen, or the patient slacks).
    #[default]
    Task,
    /// The tracking error of Emken et al. 2007, per joint: the larger of the trial's RMS tracking error and the
    /// endpoint error, beyond `deadband` [rad].
    Tracking,
}

/// τ_j = Σ_k w_jk φ_k(s), φ_k Gaussian in the movement phase s ∈ [0, 1];
/// ẇ = Γ φ(s) ε − ρ w with ε = Λ(q_d − q) + (q̇_d − q̇); |w| ≤ w_max.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RbfConfig {
    /// Number of Gaussian centres along the movement, 2..=[`MAX_RBF`].
    pub centers: usize,
    /// Width σ of each Gaussian in phase units [-].
    pub width: f64,
    /// Learning rate Γ [Nm per (rad/s) per s].
    pub learning_rate: f64,
    /// Decay (forgetting) rate ρ [1/s] (Wolbrecht 2008: lowers assistance when errors are small).
    pub decay: f64,
    /// Sliding-surface slope Λ [1/s].
    pub lambda: f64,
    /// Bound of each weight [Nm].
    pub weight_max: f64,
    /// Proportional gain of the low-gain PD that complements the model [Nm/rad].
    pub stiffness: f64,
}

/// Virtual tunnel around the joint-space path, free timing, personal width.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TunnelConfig {
    /// Initial (personal) tunnel half-width [rad].
    pub width: f64,
    /// Lower bound of the adapted width [rad].
    pub width_min: f64,
    /// Upper bound of the adapted width [rad].
    pub width_max: f64,
    /// Wall stiffness outside the tunnel [Nm/rad].
    pub stiffness: f64,
    /// Damping of the motion normal to the path outside the tunnel [Nm·s/rad].
    pub damping: f64,
    /// Supportive flow: constant torque along the path towards the target [Nm] (0 = pure free timing).
    pub flow_torque: f64,
}

/// Krebs et al. 2003 performance-based progression on a sliding window of recent trial outcomes (see
/// [`crate::aan::record_trial_outcome`] for the rule and the reasoning behind the defaults): a success rate ≥
/// `success_high` over the last `window` trials withdraws help by the `*_step_down` factors; failures since the
/// last decision that put the success rate of the last `rescue_window` trials at ≤ `success_low` add help by the
/// `*_step_up` factors. Every step is
/// multiplicative on a scale and bounded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgressionConfig {
    /// Success rate [-] over the last `window` trials at or above which help is withdrawn (task harder).
    pub success_high: f64,
    /// Success rate [-] over the last `rescue_window` trials (older than the last decision counted as successes)
    /// at or below which help is added (task easier); also the block-end threshold.
    pub success_low: f64,
    /// Trials [count] of evidence needed to withdraw help, 2..=32.
    pub window: usize,
    /// Trials [count] of evidence needed to add help, 1..=`window`.
    pub rescue_window: usize,
    /// Relative decrease of the assistance scale per "harder" decision [-], 0..=0.5.
    pub assistance_step_down: f64,
    /// Relative increase of the assistance scale per "easier" decision [-], `assistance_step_down`..=1.
    pub assistance_step_up: f64,
    /// Relative decrease of the movement-duration scale per "harder" decision [-], 0..=0.5.
    pub duration_step_down: f64,
    /// Relative increase of the movement-duration scale per "easier" decision [-], `duration_step_down`..=1.
    pub duration_step_up: f64,
    /// Relative narrowing of the tunnel width per "harder" decision [-], 0..=0.5.
    pub width_step_down: f64,
    /// Relative widening of the tunnel width per "easier" decision [-], `width_step_down`..=1.
    pub width_step_up: f64,
    /// Lower bound of the assistance scale [-].
    pub assistance_min: f64,
    /// Upper bound of the assistance scale [-].
    pub assistance_max: f64,
    /// Lower bound of the movement-duration scale [-].
    pub duration_min: f64,
    /// Upper bound of the movement-duration scale [-].
    pub duration_max: f64,
}

impl ControllerConfig {
    /// Parses a configuration from TOML text. `file` names the source in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ControllerError> {
        toml::from_str(text).map_err(|e| ControllerError::Parse { file: file.to_owned(), message: e.to_string() })
    }

    /// Reads and parses a configuration file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, ControllerError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ControllerError::Io { file: file.clone(), source })?;
        Self::from_toml_str(&text, &file)
    }

    /// The embedded default (`assets/configs/controller.toml`, plexo-arm4's).
    pub fn default_config() -> Result<Self, ControllerError> {
        Self::from_toml_str(DEFAULT_CONTROLLER_TOML, "<embedded default: controller.toml>")
    }

    /// The embedded configuration for an embedded robot ([`default_controller_toml`]); `None` for another robot.
    pub fn default_for_robot(robot: &str) -> Option<Result<Self, ControllerError>> {
        default_controller_toml(robot).map(|(text, asset)| Self::from_toml_str(text, &format!("<embedded: {asset}>")))
    }

    /// Checks every range and the length of every per-joint array against `dof`. `file` names the source.
    pub fn validate(&self, dof: usize, file: &str) -> Result<(), ControllerError> {
        let f = file;
        self.safety.validate(file)?;
        let joints = |key: &str, v: &[f64], lo: f64, hi: f64| -> Result<(), ControllerError> {
            if v.len() != dof {
                return Err(ControllerError::range(
                    f,
                    key,
                    format!("{v:?}"),
                    format!("need {dof} values (one per joint)"),
                ));
            }
            for (i, x) in v.iter().enumerate() {
                check_range(f, &format!("{key}[{i}]"), *x, lo, hi)?;
            }
            Ok(())
        };
        let g = &self.gravity;
        check_range(f, "gravity.arm_support", g.arm_support, 0.0, 1.0)?;
        check_range(f, "gravity.support_rate", g.support_rate, 0.1, 1000.0)?;
        check_range(f, "gravity.support_withdraw_step", g.support_withdraw_step, 0.01, 1.0)?;
        check_range(f, "gravity.patient_height", g.patient_height, 1.0, 2.5)?;
        check_range(f, "gravity.patient_mass", g.patient_mass, 20.0, 250.0)?;
        let o = &self.observer;
        check_range(f, "observer.gain", o.gain, 0.1, 0.5 / self.safety.period)?;
        check_range(f, "observer.sensor_weight", o.sensor_weight, 0.0, 1.0)?;
        check_range(f, "observer.sensor_cutoff", o.sensor_cutoff, 0.1, 0.5 / self.safety.period)?;
        joints("friction.coulomb", &self.friction.coulomb, 0.0, 20.0)?;
        joints("friction.viscous", &self.friction.viscous, 0.0, 20.0)?;
        check_range(f, "friction.smoothing_velocity", self.friction.smoothing_velocity, 1e-4, 1.0)?;
        if self.shaping.velocity_cutoff != 0.0 {
            check_range(f, "shaping.velocity_cutoff", self.shaping.velocity_cutoff, 10.0, 200.0)?;
        }
        check_range(f, "shaping.mode_switch_ramp", self.shaping.mode_switch_ramp, 0.0, 0.5)?;
        joints("impedance.stiffness", &self.impedance.stiffness, 0.0, 5000.0)?;
        joints("impedance.damping", &self.impedance.damping, 0.0, 200.0)?;
        let c = &self.cartesian;
        check_range(f, "cartesian.stiffness", c.stiffness, 0.0, 20_000.0)?;
        check_range(f, "cartesian.damping", c.damping, 0.0, 2000.0)?;
        joints("cartesian.nullspace_stiffness", &c.nullspace_stiffness, 0.0, 500.0)?;
        joints("cartesian.nullspace_damping", &c.nullspace_damping, 0.0, 50.0)?;
        check_range(f, "cartesian.damping_lambda", c.damping_lambda, MIN_DAMPING_LAMBDA, 1.0)?;
        joints("transparent.damping", &self.transparent.damping, 0.0, 5.0)?;
        joints("resistive.viscous", &self.resistive.viscous, 0.0, 50.0)?;
        joints("resistive.elastic", &self.resistive.elastic, 0.0, 200.0)?;
        let e = &self.error_augmentation;
        check_range(f, "error_augmentation.gain", e.gain, 1.0, 3.0)?;
        joints("error_augmentation.stiffness", &e.stiffness, 0.0, 200.0)?;
        joints("error_augmentation.offset", &e.offset, -10.0, 10.0)?;
        check_range(f, "error_augmentation.torque_max", e.torque_max, 0.0, 50.0)?;
        check_range(f, "error_augmentation.error_max", e.error_max, 0.01, 0.5)?;
        let a = &self.aan;
        joints("aan.damping", &a.damping, 0.0, 50.0)?;
        let m = &a.emken;
        check_range(f, "aan.emken.forgetting", m.forgetting, 0.0, 1.0)?;
        check_range(f, "aan.emken.gain", m.gain, 0.0, 1e5)?;
        check_range(f, "aan.emken.deadband", m.deadband, 0.0, 1.0)?;
        check_range(f, "aan.emken.k_min", m.k_min, 0.0, 5000.0)?;
        check_range(f, "aan.emken.k_max", m.k_max, m.k_min, 5000.0)?;
        check_range(f, "aan.emken.initial", m.initial, m.k_min, m.k_max)?;
        check_range(f, "aan.emken.nominal_trial_time", m.nominal_trial_time, 0.1, 60.0)?;
        check_range(f, "aan.emken.deadband_fraction", m.deadband_fraction, 0.0, 2.0)?;
        check_range(f, "aan.emken.window_fraction", m.window_fraction, 0.0, 1.0)?;
        check_range(f, "aan.emken.window_max_fraction", m.window_max_fraction, m.window_fraction, 1.0)?;
        let r = &a.rbf;
        check_range(f, "aan.rbf.centers", r.centers as f64, 2.0, MAX_RBF as f64)?;
        check_range(f, "aan.rbf.width", r.width, 0.01, 1.0)?;
        check_range(f, "aan.rbf.learning_rate", r.learning_rate, 0.0, 1e4)?;
        check_range(f, "aan.rbf.decay", r.decay, 0.0, 100.0)?;
        check_range(f, "aan.rbf.lambda", r.lambda, 0.0, 100.0)?;
        check_range(f, "aan.rbf.weight_max", r.weight_max, 0.0, 100.0)?;
        check_range(f, "aan.rbf.stiffness", r.stiffness, 0.0, 1000.0)?;
        let t = &a.tunnel;
        check_range(f, "aan.tunnel.width_min", t.width_min, 0.0, 1.0)?;
        check_range(f, "aan.tunnel.width_max", t.width_max, t.width_min, 1.0)?;
        check_range(f, "aan.tunnel.width", t.width, t.width_min, t.width_max)?;
        check_range(f, "aan.tunnel.stiffness", t.stiffness, 0.0, 2000.0)?;
        check_range(f, "aan.tunnel.damping", t.damping, 0.0, 100.0)?;
        check_range(f, "aan.tunnel.flow_torque", t.flow_torque, 0.0, 10.0)?;
        let w = &a.support;
        check_range(f, "aan.support.forgetting", w.forgetting, 0.5, 1.0)?;
        check_range(f, "aan.support.gain", w.gain, 0.0, 2.0)?;
        check_range(f, "aan.support.tolerated_share", w.tolerated_share, 0.0, 0.5)?;
        check_range(f, "aan.support.min", w.min, 0.0, 1.0)?;
        check_range(f, "aan.support.max", w.max, w.min, 1.0)?;
        let p = &a.progression;
        check_range(f, "aan.progression.success_low", p.success_low, 0.0, 1.0)?;
        check_range(f, "aan.progression.success_high", p.success_high, p.success_low, 1.0)?;
        // Window bounds: the outcomes are kept as bits of a u32 (≤ 32); a withdrawal needs at least two trials.
        check_range(f, "aan.progression.window", p.window as f64, 2.0, MAX_WINDOW as f64)?;
        check_range(f, "aan.progression.rescue_window", p.rescue_window as f64, 1.0, p.window as f64)?;
        // Withdrawal is gradual (≤ half per decision); a rescue is at least as large as a withdrawal (help must
        // come back at least as fast as it went: "never so little that they fail"), at most doubling.
        check_range(f, "aan.progression.assistance_step_down", p.assistance_step_down, 0.0, 0.5)?;
        check_range(f, "aan.progression.assistance_step_up", p.assistance_step_up, p.assistance_step_down, 1.0)?;
        check_range(f, "aan.progression.duration_step_down", p.duration_step_down, 0.0, 0.5)?;
        check_range(f, "aan.progression.duration_step_up", p.duration_step_up, p.duration_step_down, 1.0)?;
        check_range(f, "aan.progression.width_step_down", p.width_step_down, 0.0, 0.5)?;
        check_range(f, "aan.progression.width_step_up", p.width_step_up, p.width_step_down, 1.0)?;
        check_range(f, "aan.progression.assistance_min", p.assistance_min, 0.0, 1.0)?;
        check_range(f, "aan.progression.assistance_max", p.assistance_max, 1.0, 10.0)?;
        check_range(f, "aan.progression.duration_min", p.duration_min, 0.1, 1.0)?;
        check_range(f, "aan.progression.duration_max", p.duration_max, 1.0, 10.0)?;
        if self.safety.joints.len() != dof {
            return Err(ControllerError::range(
                f,
                "safety.joints",
                self.safety.joints.len(),
                format!("need {dof} [[safety.joints]] entries (one per joint)"),
            ));
        }
        Ok(())
    }
}
