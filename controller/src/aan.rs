//! Assist-as-needed laws and their serializable adaptation state.
//!
//! - [`emken_update`]: error-based stiffness adaptation with forgetting, Emken, Bobrow & Reinkensmeyer 2007
//!   (J NeuroEng Rehabil 4:8): K_{i+1} = f·K_i + g·|e_i|, here with a deadband on |e_i|. By default the error
//!   is Plexo's task error ([`emken_task_error`], [`crate::EmkenError::Task`]): the joint-space distance from
//!   the target when the reference arrives or the trial ends, shared among the joints; the law's damping keeps
//!   the initial damping ratio as the stiffness adapts ([`emken_damping`]). Why, with the measurements:
//!   EFFICACY.md.
//! - [`rbf_torque`] / [`rbf_adapt`]: Gaussian RBF model of the patient's deficit along the movement with a
//!   decay term, Wolbrecht, Chan, Reinkensmeyer & Bobrow 2008 (IEEE TNSRE 16(3)). Wolbrecht placed the RBFs
//!   over the workspace; Plexo places them over the movement phase s ∈ [0, 1] of the current trial, which is
//!   the same model restricted to the practised path.
//! - [`tunnel_torque`]: path control, Duschau-Wicke et al. 2010 (IEEE TNSRE 18(1)): no force inside a
//!   tunnel around the path, a spring–damper wall outside it, free timing along it, optional supportive flow.
//! - [`record_trial_outcome`] / [`progress_between_blocks`]: performance-based progression of assistance,
//!   movement duration and tunnel width on a sliding window of recent trials, Krebs et al. 2003 (Autonomous
//!   Robots 15); a withdrawal lowers the help first and shortens the movement only once the help is at its floor.
//!
//! Every adapted parameter is clamped to configured bounds after every update.

use plexo_hal::{JointArray, MAX_JOINTS};
use serde::{Deserialize, Serialize};

use crate::config::{AanConfig, EmkenConfig, ProgressionConfig, RbfConfig, SupportAdaptationConfig, TunnelConfig};
pub use crate::config::{MAX_RBF, MAX_WINDOW};
use crate::error::ControllerError;

/// Which assist-as-needed law an active-assisted block uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AanLaw {
    /// Fixed-stiffness impedance (the non-adaptive baseline that invites slacking).
    Fixed,
    /// Emken 2007 error-based stiffness adaptation.
    Emken,
    /// Wolbrecht 2008 RBF deficit model.
    Rbf,
    /// Duschau-Wicke 2010 path-control tunnel.
    Tunnel,
}

/// Version of the [`AdaptationState`] format written by this build. A saved state of another version is rejected
/// when a session resumes from it (the error names the `version` field).
/// Version 2 added the progression's window of recent trial outcomes (`recent_outcomes`, `pending_outcomes`).
pub const ADAPTATION_STATE_VERSION: u32 = 2;

/// Everything the AAN laws learn — Emken stiffness, RBF weights, the personal tunnel width and the Krebs
/// progression (assistance and movement-duration scales) — serializable so the next session resumes it
/// ([`crate::Therapy::adaptation_state`] / [`crate::Therapy::resume_from`]; files with [`AdaptationState::save`]
/// / [`AdaptationState::load`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaptationState {
    /// Format version ([`ADAPTATION_STATE_VERSION`]).
    pub version: u32,
    /// Number of joints.
    pub dof: usize,
    /// Emken stiffness per joint [Nm/rad].
    pub emken_stiffness: [f64; MAX_JOINTS],
    /// Number of RBF centres the weights were learnt with (`aan.rbf.centers`): the centres are spread evenly over
    /// the movement phase, so weights learnt with another count mean something else.
    pub rbf_centers: usize,
    /// RBF weights per joint and centre [Nm].
    pub rbf_weights: [[f64; MAX_RBF]; MAX_JOINTS],
    /// Personal tunnel half-width [rad].
    pub tunnel_width: f64,
    /// Krebs progression: scale on every assistance gain [-].
    pub assistance_scale: f64,
    /// Krebs progression: scale on the movement duration [-].
    pub duration_scale: f64,
    /// Trials completed with an adaptive law (Emken, RBF) in force.
    pub trials: u64,
    /// Blocks completed with the progression rule.
    pub blocks: u64,
    /// Progression window: outcome of each recent trial with the progression rule, bit 0 the most recent
    /// (1 = target reached). Defaults to 0 when absent, so that a version-1 state nested in another file still
    /// parses and is then refused by its `version` on resume.
    #[serde(default)]
    pub recent_outcomes: u32,
    /// Trials [count] since the last progression decision (≤ [`MAX_WINDOW`]): the evidence not yet used.
    #[serde(default)]
    pub pending_outcomes: u32,
    /// Adapted arm-weight support [-] in 0..=1 ([`crate::SupportAdaptationConfig`]); `None` until a block with
    /// the progression rule adapted it (its blocks then start from their own `arm_support`). Absent in states
    /// written before support adaptation existed, which therefore still resume.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arm_support: Option<f64>,
}

/// A value of a saved [`AdaptationState`] that lay outside the current configuration's bounds and was clamped on
/// resume (e.g. `aan.emken.k_max` was lowered between sessions).
#[derive(Clone, Debug, PartialEq)]
pub struct ClampedValue {
    /// Field, e.g. `emken_stiffness[2]`.
    pub field: String,
    /// Value in the saved state.
    pub saved: f64,
    /// Value in use now (the nearest bound).
    pub restored: f64,
}

impl AdaptationState {
    /// The initial state from the configuration (no adaptation yet).
    pub fn new(dof: usize, config: &AanConfig) -> Self {
        let mut emken_stiffness = [0.0; MAX_JOINTS];
        emken_stiffness[..dof.min(MAX_JOINTS)].fill(config.emken.initial);
        Self {
            version: ADAPTATION_STATE_VERSION,
            dof,
            emken_stiffness,
            rbf_centers: config.rbf.centers,
            rbf_weights: [[0.0; MAX_RBF]; MAX_JOINTS],
            tunnel_width: config.tunnel.width,
            assistance_scale: 1.0,
            duration_scale: 1.0,
            trials: 0,
            blocks: 0,
            recent_outcomes: 0,
            pending_outcomes: 0,
            arm_support: None,
        }
    }

    /// Successes [count] among the last `n` trials of the progression window (n ≤ [`MAX_WINDOW`]).
    /// Real-time safe.
    pub fn recent_successes(&self, n: usize) -> u32 {
        let mask = if n >= MAX_WINDOW { u32::MAX } else { (1u32 << n) - 1 };
        (self.recent_outcomes & mask).count_ones()
    }

    /// The trials since the last progression decision, as a block performance (what the block-end rule decides
    /// on). Real-time safe.
    pub fn pending_performance(&self) -> BlockPerformance {
        let n = self.pending_outcomes;
        BlockPerformance { trials: n, successes: self.recent_successes(n as usize) }
    }

    /// True if every number is finite. Real-time safe.
    pub fn is_finite(&self) -> bool {
        self.emken_stiffness.iter().all(|v| v.is_finite())
            && self.rbf_weights.iter().flatten().all(|v| v.is_finite())
            && self.tunnel_width.is_finite()
            && self.assistance_scale.is_finite()
            && self.duration_scale.is_finite()
            && self.arm_support.is_none_or(f64::is_finite)
    }

    /// True if every number the laws use for `dof` joints and `centers` RBF centres is finite (the tick's check;
    /// entries beyond them are never read). Real-time safe.
    pub(crate) fn in_use_finite(&self, dof: usize, centers: usize) -> bool {
        let (dof, centers) = (dof.min(MAX_JOINTS), centers.min(MAX_RBF));
        // One sum instead of a branch per value: a NaN or ±∞ anywhere makes the sum non-finite. Every value is
        // clamped to a bound ≤ 1e4 in magnitude whenever it is written, so a finite sum cannot overflow.
        let mut sum = self.tunnel_width + self.assistance_scale + self.duration_scale + self.arm_support.unwrap_or(0.0);
        for j in 0..dof {
            sum += self.emken_stiffness[j];
            sum += self.rbf_weights[j][..centers].iter().sum::<f64>();
        }
        sum.is_finite()
    }

    /// The state as TOML text (for a file). Not real-time safe.
    pub fn to_toml_string(&self) -> Result<String, ControllerError> {
        toml::to_string(self).map_err(|e| ControllerError::Parse {
            file: "<adaptation state>".into(),
            message: format!("cannot serialize: {e}"),
        })
    }

    /// Parses a state from TOML text; `file` names the source in errors (syntax, missing or unknown fields). The
    /// values are checked against a controller when a session resumes from it. Not real-time safe.
    /// A file of another format version is refused with an error naming `version` (before any other field is
    /// read, so that an older file lacking newer fields says so).
    pub fn from_toml_str(text: &str, file: &str) -> Result<Self, ControllerError> {
        #[derive(Deserialize)]
        struct Version {
            version: u32,
        }
        let parse_error = |e: toml::de::Error| ControllerError::Parse { file: file.to_owned(), message: e.to_string() };
        let Version { version } = toml::from_str(text).map_err(parse_error)?;
        if version != ADAPTATION_STATE_VERSION {
            return Err(ControllerError::range(
                file,
                "version",
                version,
                format!(
                    "this build reads adaptation state version {ADAPTATION_STATE_VERSION} (version 2 added the \
                     progression window); start from the configured defaults or convert the file"
                ),
            ));
        }
        toml::from_str(text).map_err(parse_error)
    }

    /// Writes the state to a TOML file. Not real-time safe.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<(), ControllerError> {
        let path = path.as_ref();
        std::fs::write(path, self.to_toml_string()?)
            .map_err(|source| ControllerError::Io { file: path.display().to_string(), source })
    }

    /// Reads a state from a TOML file written by [`AdaptationState::save`]. Not real-time safe.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, ControllerError> {
        let path = path.as_ref();
        let file = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ControllerError::Io { file: file.clone(), source })?;
        Self::from_toml_str(&text, &file)
    }

    /// Checks a saved state against a controller with `dof` joints and configuration `config`, then clamps every
    /// adapted value to the configured bounds. Errors name `source` and the field: `version` (another format),
    /// `dof`, `rbf_centers` (weights learnt with another basis), and any NaN/Inf or negative value
    /// (`emken_stiffness[j]`, `rbf_weights[j][k]`, `tunnel_width`, `assistance_scale`, `duration_scale`). Returns
    /// the values that were clamped. Not real-time safe.
    pub(crate) fn validated(
        mut self,
        dof: usize,
        config: &AanConfig,
        source: &str,
    ) -> Result<(Self, Vec<ClampedValue>), ControllerError> {
        let err = |key: String, value: String, reason: String| ControllerError::range(source, key, value, reason);
        if self.version != ADAPTATION_STATE_VERSION {
            return Err(err(
                "version".into(),
                self.version.to_string(),
                format!("this build reads adaptation state version {ADAPTATION_STATE_VERSION}"),
            ));
        }
        if self.dof != dof {
            return Err(err("dof".into(), self.dof.to_string(), format!("the robot has {dof} joints")));
        }
        if self.rbf_centers != config.rbf.centers {
            return Err(err(
                "rbf_centers".into(),
                self.rbf_centers.to_string(),
                format!(
                    "the controller uses {} RBF centres (aan.rbf.centers); weights learnt with another count cannot \
                     be reused",
                    config.rbf.centers
                ),
            ));
        }
        let finite_non_negative = |key: String, v: f64| {
            if v.is_finite() && v >= 0.0 {
                Ok(())
            } else {
                Err(err(key, v.to_string(), "need a finite value ≥ 0".into()))
            }
        };
        for (j, k) in self.emken_stiffness.iter().enumerate() {
            finite_non_negative(format!("emken_stiffness[{j}]"), *k)?;
        }
        for (j, row) in self.rbf_weights.iter().enumerate() {
            for (k, w) in row.iter().enumerate() {
                if !w.is_finite() {
                    return Err(err(format!("rbf_weights[{j}][{k}]"), w.to_string(), "need a finite value".into()));
                }
            }
        }
        finite_non_negative("tunnel_width".into(), self.tunnel_width)?;
        finite_non_negative("assistance_scale".into(), self.assistance_scale)?;
        finite_non_negative("duration_scale".into(), self.duration_scale)?;
        if let Some(support) = self.arm_support {
            finite_non_negative("arm_support".into(), support)?;
        }
        if self.pending_outcomes as usize > MAX_WINDOW {
            return Err(err(
                "pending_outcomes".into(),
                self.pending_outcomes.to_string(),
                format!("at most {MAX_WINDOW} (the window's length in trials)"),
            ));
        }
        let mut clamped = Vec::new();
        let mut clamp = |field: String, v: &mut f64, lo: f64, hi: f64| {
            let c = v.clamp(lo, hi);
            if c != *v {
                clamped.push(ClampedValue { field, saved: *v, restored: c });
                *v = c;
            }
        };
        let (e, r, t, p) = (&config.emken, &config.rbf, &config.tunnel, &config.progression);
        for (j, k) in self.emken_stiffness[..dof].iter_mut().enumerate() {
            clamp(format!("emken_stiffness[{j}]"), k, e.k_min, e.k_max);
        }
        for (j, row) in self.rbf_weights.iter_mut().enumerate() {
            for (k, w) in row.iter_mut().enumerate() {
                clamp(format!("rbf_weights[{j}][{k}]"), w, -r.weight_max, r.weight_max);
            }
        }
        clamp("tunnel_width".into(), &mut self.tunnel_width, t.width_min, t.width_max);
        clamp("assistance_scale".into(), &mut self.assistance_scale, p.assistance_min, p.assistance_max);
        clamp("duration_scale".into(), &mut self.duration_scale, p.duration_min, p.duration_max);
        if let Some(support) = self.arm_support.as_mut() {
            clamp("arm_support".into(), support, config.support.min, config.support.max);
        }
        Ok((self, clamped))
    }
}

/// The share of the arm's weight [-] the assist-as-needed law carried over a trial, from the sums
/// `law_dot_gravity` = Σ τ_assist·g_arm [Nm²] and `gravity_dot_gravity` = Σ g_arm·g_arm [Nm²] over its ticks (g_arm
/// the torque that holds the patient's arm against gravity): the least-squares δα of τ_assist ≈ δα·g_arm. `None`
/// when the arm's weight loads the joints too little to tell (Σ g·g below `min_gravity2` [Nm²]).
/// Real-time safe.
pub fn law_weight_share(law_dot_gravity: f64, gravity_dot_gravity: f64, min_gravity2: f64) -> Option<f64> {
    (gravity_dot_gravity > min_gravity2 && law_dot_gravity.is_finite()).then(|| law_dot_gravity / gravity_dot_gravity)
}

/// One trial's arm-weight support update: α ← clamp(f·α + g·(δα − δ₀), min, max), δα the share of the arm's weight
/// the law carried ([`law_weight_share`]), δ₀ the share it may carry; see [`crate::SupportAdaptationConfig`].
/// Real-time safe.
pub fn support_update(support: f64, law_share: f64, c: &SupportAdaptationConfig) -> f64 {
    (c.forgetting * support + c.gain * (law_share - c.tolerated_share)).clamp(c.min, c.max)
}

/// One trial-level Emken update per joint: K ← clamp(f·K + g·max(|e| − deadband, 0), k_min, k_max), where
/// `error[j]` is the trial's error [rad] (the controller passes the larger of the RMS tracking error and the endpoint
/// error, see `Controller::end_trial`). Real-time safe.
pub fn emken_update(stiffness: &mut [f64], error: &[f64], c: &EmkenConfig) {
    for (k, e) in stiffness.iter_mut().zip(error) {
        let e = (e.abs() - c.deadband).max(0.0);
        *k = (c.forgetting * *k + c.gain * e).clamp(c.k_min, c.k_max);
    }
}

/// The task error of one trial for the Emken law ([`crate::EmkenError::Task`]), per joint, into `excess` [rad]:
/// with e_j the larger of |`arrival[j]`| (the error q_d − q when the reference arrived, i.e. the planned movement
/// time had elapsed) and |`last[j]`| (the error at the trial's end), the joint-space distance ‖e‖ beyond
/// `deadband` [rad] is shared among the joints in proportion to |e_j|:
/// excess_j = |e_j|/‖e‖ · max(‖e‖ − deadband, 0). Zero when the arm is within the deadband of the target on time.
/// Real-time safe.
pub fn emken_task_error(arrival: &[f64], last: &[f64], deadband: f64, excess: &mut [f64]) {
    let mut norm2 = 0.0;
    for ((x, a), l) in excess.iter_mut().zip(arrival).zip(last) {
        *x = a.abs().max(l.abs());
        norm2 += *x * *x;
    }
    let norm = norm2.sqrt();
    let share = if norm > deadband && norm > 0.0 { (norm - deadband) / norm } else { 0.0 };
    for x in excess.iter_mut() {
        *x *= share;
    }
}

/// One trial-level Emken update per joint on an error already past its deadband, `excess[j]` [rad]:
/// K ← clamp(f·K + g·excess, k_min, k_max). Real-time safe.
pub fn emken_update_excess(stiffness: &mut [f64], excess: &[f64], c: &EmkenConfig) {
    for (k, e) in stiffness.iter_mut().zip(excess) {
        *k = (c.forgetting * *k + c.gain * e.max(0.0)).clamp(c.k_min, c.k_max);
    }
}

/// Factor [-] on the Emken impedance torque for a joint-space tracking error of norm `error_norm` [rad] and a
/// window of free movement of half-width `window` [rad]: φ = max(0, 1 − window/‖e‖). The position term φ·K·e is
/// then K·(‖e‖ − w) along e — a radial dead zone around the moving reference, continuous at its edge (no torque
/// step) — and the velocity term is blended in with it, so that inside the window the law does no work at all.
/// Cai et al. 2006 (J Neurosci 26(41)) trained with such a window of allowed deviation around the moving
/// reference; the dead-zone form and the blended damping are Plexo's. `window` ≤ 0 gives 1 (no window).
/// Real-time safe.
pub fn emken_window_factor(error_norm: f64, window: f64) -> f64 {
    if window <= 0.0 {
        1.0
    } else if error_norm > window {
        1.0 - window / error_norm
    } else {
        0.0
    }
}

/// Half-width of the Emken law's window of free movement [rad] for a trial of reach tolerance `tolerance` [rad]
/// under the progression's assistance scale `scale` [-]: `min(window_fraction / scale, window_max_fraction)` ×
/// `tolerance` (0 without a window). The window is the patient's freedom and moves opposite to the help: the
/// progression's withdrawals (scale ↓) widen it up to its cap, a rescue (scale ↑) narrows it. Real-time safe.
pub fn emken_window_half_width(c: &EmkenConfig, scale: f64, tolerance: f64) -> f64 {
    if c.window_fraction <= 0.0 || scale.is_nan() || scale <= 0.0 {
        return 0.0;
    }
    (c.window_fraction / scale).min(c.window_max_fraction.max(c.window_fraction)) * tolerance
}

/// Damping of the Emken law for joint stiffness `stiffness` [Nm/rad] under the progression's assistance `scale`
/// [-], from the configured damping `damping` [Nm s/rad] (which holds at the initial stiffness): with
/// `constant_damping_ratio` D = damping·√(scale·K / initial) — the damping ratio of the impedance stays that of the
/// initial one as the stiffness adapts, so the help's velocity term fades with its position term — else
/// `damping`. Real-time safe.
pub fn emken_damping(damping: f64, stiffness: f64, scale: f64, c: &EmkenConfig) -> f64 {
    if c.constant_damping_ratio && c.initial > 0.0 {
        damping * (scale * stiffness / c.initial).max(0.0).sqrt()
    } else {
        damping
    }
}

/// Continuous Emken adaptation over `dt` [s]: K̇ = −(1 − f)/T·K + g/T·max(|e| − deadband, 0), T the nominal trial
/// time, so that one nominal trial of constant error matches one trial-level update to first order.
/// Real-time safe.
pub fn emken_update_continuous(stiffness: &mut [f64], error: &[f64], dt: f64, c: &EmkenConfig) {
    let t = c.nominal_trial_time;
    for (k, e) in stiffness.iter_mut().zip(error) {
        let e = (e.abs() - c.deadband).max(0.0);
        *k = (*k + dt * (-(1.0 - c.forgetting) / t * *k + c.gain / t * e)).clamp(c.k_min, c.k_max);
    }
}

/// Gaussian basis values φ_k(s), k < `c.centers`, centres spaced evenly over [0, 1], into `phi` (computed once
/// per tick and shared by every joint). Real-time safe.
pub fn rbf_basis(s: f64, c: &RbfConfig, phi: &mut [f64; MAX_RBF]) {
    let s = s.clamp(0.0, 1.0);
    let count = c.centers.min(MAX_RBF);
    for (k, p) in phi.iter_mut().enumerate() {
        *p = if k < count {
            let d = (s - k as f64 / (count - 1) as f64) / c.width;
            (-0.5 * d * d).exp()
        } else {
            0.0
        };
    }
}

/// The RBF model's torque Σ_k w_k φ_k [Nm] of one joint. Real-time safe.
pub fn rbf_torque(weights: &[f64; MAX_RBF], phi: &[f64; MAX_RBF]) -> f64 {
    weights.iter().zip(phi).map(|(w, p)| w * p).sum()
}

/// One adaptation step of the RBF weights of one joint over `dt` [s] with sliding error `sliding` =
/// Λ(q_d − q) + (q̇_d − q̇) [rad/s]: ẇ_k = Γ φ_k ε − ρ w_k, each |w_k| ≤ w_max. Real-time safe.
pub fn rbf_adapt(weights: &mut [f64; MAX_RBF], phi: &[f64; MAX_RBF], sliding: f64, dt: f64, c: &RbfConfig) {
    for (k, w) in weights.iter_mut().enumerate().take(c.centers.min(MAX_RBF)) {
        let dw = c.learning_rate * phi[k] * sliding - c.decay * *w;
        *w = (*w + dt * dw).clamp(-c.weight_max, c.weight_max);
    }
}

/// Path-control torque [Nm] for joint state `q`, `qd` on the straight joint-space path `start` → `target`
/// (a minimum-jerk movement in joint space follows this line) with half-width `width` [rad]. Inside the
/// tunnel only the supportive flow acts; outside, a spring pulls back to the tunnel wall and a damper acts on
/// the velocity normal to the path. Timing is free: the path point is the projection of `q`, not a time
/// reference. The tunnel is as wide at the target as along the path, so an endpoint error smaller than the width
/// is not corrected (a funnel narrowing to the target was tried and reverted: closing the wall on a weak arm
/// resting off the path at the target kicked it into the 2.5–3 rad/s velocity stop, severe profile, every
/// session). Real-time safe.
pub fn tunnel_torque(
    q: &[f64],
    qd: &[f64],
    start: &[f64],
    target: &[f64],
    width: f64,
    c: &TunnelConfig,
    out: &mut JointArray<f64>,
) {
    let n = q.len();
    let mut dir = [0.0; MAX_JOINTS];
    let mut len2 = 0.0;
    for j in 0..n {
        dir[j] = target[j] - start[j];
        len2 += dir[j] * dir[j];
    }
    let len = len2.sqrt();
    // Projection parameter σ ∈ [0, 1] of q on the segment.
    let sigma =
        if len > 1e-9 { (0..n).map(|j| (q[j] - start[j]) * dir[j]).sum::<f64>() / len2 } else { 1.0 }.clamp(0.0, 1.0);
    let mut dev = [0.0; MAX_JOINTS];
    let mut dist2 = 0.0;
    for j in 0..n {
        dev[j] = q[j] - (start[j] + sigma * dir[j]);
        dist2 += dev[j] * dev[j];
    }
    let dist = dist2.sqrt();
    for j in 0..n {
        out[j] = 0.0;
    }
    if dist > width && dist > 1e-12 {
        let push = c.stiffness * (dist - width) / dist;
        // Velocity component along the deviation direction (normal to the path, towards outside).
        let v_out: f64 = (0..n).map(|j| qd[j] * dev[j]).sum::<f64>() / dist;
        for j in 0..n {
            out[j] -= push * dev[j] + c.damping * v_out * dev[j] / dist;
        }
    }
    if len > 1e-9 && sigma < 1.0 {
        for j in 0..n {
            out[j] += c.flow_torque * dir[j] / len;
        }
    }
}

/// Performance of one block, for the progression rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockPerformance {
    /// Trials in the block.
    pub trials: u32,
    /// Trials that reached the target before the timeout.
    pub successes: u32,
}

impl BlockPerformance {
    /// Success rate [-] (0 for an empty block).
    pub fn success_rate(&self) -> f64 {
        if self.trials == 0 { 0.0 } else { self.successes as f64 / self.trials as f64 }
    }
}

/// What the progression rule decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Progression {
    /// Less assistance, shorter movements, narrower tunnel.
    Harder,
    /// Unchanged.
    Same,
    /// More assistance, longer movements, wider tunnel.
    Easier,
}

/// Applies a progression decision to the scales. "Easier" grows assistance, movement duration and tunnel width
/// by the `*_step_up` factors at once (a rescue helps in every way). "Harder" withdraws help first and speeds the
/// movement up only once the help is gone: while the assistance scale is above `assistance_min` it shrinks the
/// assistance and the tunnel width by the `*_step_down` factors; at the floor it shrinks the movement duration.
/// Why in that order: a shorter movement makes every patient lag the reference more, which every
/// assist-as-needed law answers with more help — shortening it while help is still being withdrawn makes the two
/// rules fight (measured with the Emken law over 10-session courses: the duration fell to its floor and the
/// adapted stiffness rose with it, so the assistance barely fell). Each scale stays within its bounds.
/// Real-time safe.
fn apply_progression(state: &mut AdaptationState, decision: Progression, c: &ProgressionConfig, tunnel: &TunnelConfig) {
    let (assist, duration, width) = match decision {
        Progression::Harder if state.assistance_scale > c.assistance_min * (1.0 + 1e-9) => {
            (1.0 - c.assistance_step_down, 1.0, 1.0 - c.width_step_down)
        }
        Progression::Harder => (1.0, 1.0 - c.duration_step_down, 1.0),
        Progression::Same => return,
        Progression::Easier => (1.0 + c.assistance_step_up, 1.0 + c.duration_step_up, 1.0 + c.width_step_up),
    };
    state.assistance_scale = (state.assistance_scale * assist).clamp(c.assistance_min, c.assistance_max);
    state.duration_scale = (state.duration_scale * duration).clamp(c.duration_min, c.duration_max);
    // A harder task narrows the tunnel (less freedom), an easier one widens it.
    state.tunnel_width = (state.tunnel_width * width).clamp(tunnel.width_min, tunnel.width_max);
}

/// Performance-based progression after every trial (Krebs, Palazzolo, Dipietro, Ferraro, Krol, Rannekleiv, Volpe
/// & Hogan 2003, "Rehabilitation robotics: performance-based progressive robot-assisted therapy", Autonomous
/// Robots 15:7–20: the robot's assistance and the movement's timing are adjusted from the patient's measured
/// performance over recent trials). Records whether the trial reached its target in the sliding window of
/// `state` and decides:
///
/// - **easier** (more help) when, among the last `rescue_window` trials, those since the last decision hold so
///   many failures that the window's success rate is ≤ `success_low` even with its older trials counted as
///   successes (defaults: 2 failures among the last 5): assistance ×(1 + `assistance_step_up`), duration
///   ×(1 + `duration_step_up`), tunnel ×(1 + `width_step_up`);
/// - otherwise **harder** (less help) when at least `window` trials have accrued since the last decision and at
///   least `success_high` of the last `window` reached their target: the `*_step_down` factors;
/// - otherwise nothing. A decision consumes the evidence (`pending_outcomes` ← 0): the next one is made on trials
///   run with the new settings (the hysteresis in time: no decision is taken twice on the same trials).
///
/// Why these sizes (defaults in `controller.toml`). Withdrawing help too early makes the patient fail (and fail
/// again: a failed trial is a trial without successful practice and, under Emken's law, a stiffer robot next
/// time); keeping it a little too long costs some effort. So the rule is asymmetric. Withdrawal needs strong
/// evidence: `window` = 16 trials at ≥ 80 % success (the standard error of a rate over 16 trials at 0.8 is 0.10),
/// and 16 trials cover every direction of an 8-target center-out set out and back, so an easy subset of
/// directions does not decide alone; each withdrawal is small (assistance ×0.9, movement ×0.95), so help fades
/// over sessions, not within a block. A rescue needs weak evidence: 2 failures within 5 trials, which a patient
/// at 90 % success shows in 8 % of 5-trial stretches, at 80 % in 26 %, at 60 % in 66 %; it comes 2 trials after
/// a sudden loss of capacity and is large (assistance ×1.5, movement ×1.15), so that 4 rescues take the
/// assistance from its floor 0.2 back to 1.0. Slow withdrawal on long evidence against fast rescue on short
/// evidence is the hysteresis between the thresholds: the help settles where failures are rare and isolated,
/// i.e. at the ≥ 80 % success the `success_high` threshold asks for, instead of cycling. The step-up ≥ step-down
/// relation is a hard configuration range.
///
/// Returns the decision, if any. Real-time safe (no allocation).
pub fn record_trial_outcome(
    state: &mut AdaptationState,
    reached: bool,
    c: &ProgressionConfig,
    tunnel: &TunnelConfig,
) -> Option<Progression> {
    state.recent_outcomes = (state.recent_outcomes << 1) | u32::from(reached);
    state.pending_outcomes = (state.pending_outcomes + 1).min(MAX_WINDOW as u32);
    let pending = state.pending_outcomes as usize;
    // Failures among the last `rescue_window` trials that are also since the last decision.
    let recent = pending.min(c.rescue_window);
    let failures = recent as u32 - state.recent_successes(recent);
    let rescue_rate = 1.0 - f64::from(failures) / c.rescue_window as f64;
    let decision = if failures > 0 && rescue_rate <= c.success_low + 1e-9 {
        Progression::Easier
    } else if pending >= c.window && state.recent_successes(c.window) as f64 >= c.success_high * c.window as f64 - 1e-9
    {
        Progression::Harder
    } else {
        return None;
    };
    apply_progression(state, decision, c, tunnel);
    state.pending_outcomes = 0;
    Some(decision)
}

/// Progression at a block end, on `perf` — in a [`crate::Therapy`] the trials since the last decision of the
/// sliding-window rule ([`AdaptationState::pending_performance`]), so that a block's last trials are not lost and
/// no trial counts twice. With at least `rescue_window` trials: success rate ≥ `success_high` → harder, ≤
/// `success_low` → easier (the same steps as [`record_trial_outcome`]), and the window's pending evidence is
/// consumed; with fewer trials nothing changes and the evidence carries over to the next block. Counts the block
/// in [`AdaptationState::blocks`]. Real-time safe.
pub fn progress_between_blocks(
    state: &mut AdaptationState,
    perf: &BlockPerformance,
    c: &ProgressionConfig,
    tunnel: &TunnelConfig,
) -> Progression {
    state.blocks += 1;
    if (perf.trials as usize) < c.rescue_window.max(1) {
        return Progression::Same;
    }
    let rate = perf.success_rate();
    let decision = if rate >= c.success_high {
        Progression::Harder
    } else if rate <= c.success_low {
        Progression::Easier
    } else {
        Progression::Same
    };
    apply_progression(state, decision, c, tunnel);
    state.pending_outcomes = 0;
    decision
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ControllerConfig;

    fn cfg() -> ControllerConfig {
        ControllerConfig::default_config().unwrap()
    }

    #[test]
    fn emken_decays_inside_deadband_and_grows_with_error_within_bounds() {
        let c = cfg().aan.emken;
        let mut k = [100.0, 100.0];
        emken_update(&mut k, &[0.5 * c.deadband, 0.3], &c);
        assert!((k[0] - c.forgetting * 100.0).abs() < 1e-12, "error inside the deadband only forgets");
        assert!(k[1] > 100.0, "a large error raises the stiffness");
        for _ in 0..1000 {
            emken_update(&mut k, &[10.0, 0.0], &c);
        }
        assert_eq!(k[0], c.k_max, "bounded above");
        assert!(k[1] <= c.k_min + 1e-6, "decays to the lower bound without error");
    }

    #[test]
    fn emken_continuous_matches_trial_update_direction() {
        let c = cfg().aan.emken;
        let mut k = [50.0];
        for _ in 0..2000 {
            emken_update_continuous(&mut k, &[0.3], 0.001, &c);
        }
        assert!(k[0] > 50.0);
        let mut k2 = [50.0];
        for _ in 0..2000 {
            emken_update_continuous(&mut k2, &[0.0], 0.001, &c);
        }
        assert!(k2[0] < 50.0);
    }

    #[test]
    fn rbf_learns_a_constant_deficit_then_decays() {
        let c = cfg().aan.rbf;
        let mut w = [0.0; MAX_RBF];
        let (mut mid, mut start) = ([0.0; MAX_RBF], [0.0; MAX_RBF]);
        rbf_basis(0.5, &c, &mut mid);
        rbf_basis(0.0, &c, &mut start);
        for _ in 0..5000 {
            rbf_adapt(&mut w, &mid, 0.2, 0.001, &c);
        }
        let learned = rbf_torque(&w, &mid);
        assert!(learned > 1.0, "positive error builds positive assistance, got {learned}");
        assert!(rbf_torque(&w, &start) < learned, "localised near the phase where the error was");
        assert!(w.iter().all(|x| x.abs() <= c.weight_max));
        for _ in 0..20_000 {
            rbf_adapt(&mut w, &mid, 0.0, 0.001, &c);
        }
        assert!(rbf_torque(&w, &mid) < 0.01 * learned + 1e-9, "decay removes unneeded assistance");
    }

    #[test]
    fn tunnel_is_free_inside_and_pushes_back_outside() {
        let c = cfg().aan.tunnel;
        let mut out = JointArray::splat(2, 0.0);
        let start = [0.0, 0.0];
        let target = [1.0, 0.0];
        tunnel_torque(&[0.5, 0.5 * c.width], &[0.0, 0.0], &start, &target, c.width, &c, &mut out);
        assert!(out[1].abs() < 1e-12, "no normal force inside the tunnel");
        assert!((out[0] - c.flow_torque).abs() < 1e-12, "only the supportive flow along the path");
        tunnel_torque(&[0.5, c.width + 0.1], &[0.0, 0.0], &start, &target, c.width, &c, &mut out);
        assert!((out[1] + c.stiffness * 0.1).abs() < 1e-9, "spring back to the wall: {}", out[1]);
        // Free timing: the force does not depend on where along the path the patient is.
        let mut out2 = JointArray::splat(2, 0.0);
        tunnel_torque(&[0.2, c.width + 0.1], &[0.0, 0.0], &start, &target, c.width, &c, &mut out2);
        assert!((out2[1] - out[1]).abs() < 1e-12);
    }

    #[test]
    fn progression_is_bounded_and_directional() {
        let mut c = cfg();
        // The mechanism with a speed-up allowed (the shipped duration_min = 1 never speeds past the prescription).
        c.aan.progression.duration_min = 0.6;
        let p = &c.aan.progression;
        let mut s = AdaptationState::new(4, &c.aan);
        let good = BlockPerformance { trials: 10, successes: 10 };
        assert_eq!(progress_between_blocks(&mut s, &good, p, &c.aan.tunnel), Progression::Harder);
        assert!(s.assistance_scale < 1.0 && s.tunnel_width < c.aan.tunnel.width);
        assert_eq!(s.duration_scale, 1.0, "help is withdrawn before the movement is sped up");
        for _ in 0..100 {
            progress_between_blocks(&mut s, &good, p, &c.aan.tunnel);
        }
        assert_eq!(s.assistance_scale, p.assistance_min);
        assert_eq!(s.duration_scale, p.duration_min);
        assert_eq!(s.tunnel_width, c.aan.tunnel.width_min);
        let bad = BlockPerformance { trials: 10, successes: 1 };
        assert_eq!(progress_between_blocks(&mut s, &bad, p, &c.aan.tunnel), Progression::Easier);
        assert!(s.assistance_scale > p.assistance_min);
    }

    #[test]
    fn the_shipped_progression_never_speeds_the_movement_past_its_prescription() {
        // Regression (EFFICACY.md): sped up to 0.6 x the movement time once help was at its floor, the mild
        // patient lagged the faster reference, the assistance rose again and its effort share fell.
        let c = cfg();
        let p = &c.aan.progression;
        let mut s = AdaptationState::new(4, &c.aan);
        let good = BlockPerformance { trials: 10, successes: 10 };
        for _ in 0..100 {
            progress_between_blocks(&mut s, &good, p, &c.aan.tunnel);
        }
        assert_eq!(s.assistance_scale, p.assistance_min);
        assert_eq!(s.duration_scale, 1.0, "{s:?}");
        // A rescue slows the movement; withdrawals bring it back to the prescription, not beyond.
        progress_between_blocks(&mut s, &BlockPerformance { trials: 10, successes: 1 }, p, &c.aan.tunnel);
        assert!(s.duration_scale > 1.0);
        for _ in 0..100 {
            progress_between_blocks(&mut s, &good, p, &c.aan.tunnel);
        }
        assert_eq!(s.duration_scale, 1.0, "{s:?}");
    }

    #[test]
    fn harder_speeds_the_movement_up_only_once_the_help_is_at_its_floor() {
        // Regression: withdrawal shortened the movement while it withdrew help, so patients lagged the faster
        // reference and the Emken stiffness rose as the patient improved.
        let mut c = cfg();
        c.aan.progression.duration_min = 0.6;
        let p = &c.aan.progression;
        let mut s = AdaptationState::new(4, &c.aan);
        let good = BlockPerformance { trials: 10, successes: 10 };
        let mut withdrawals = 0;
        while s.assistance_scale > p.assistance_min {
            progress_between_blocks(&mut s, &good, p, &c.aan.tunnel);
            assert_eq!(s.duration_scale, 1.0, "withdrawal {withdrawals}: {s:?}");
            withdrawals += 1;
            assert!(withdrawals < 100);
        }
        // 0.9^n reaches 0.2 after ceil(ln 0.2 / ln 0.9) = 16 withdrawals.
        let expected = (p.assistance_min.ln() / (1.0 - p.assistance_step_down).ln()).ceil() as usize;
        assert_eq!(withdrawals, expected);
        progress_between_blocks(&mut s, &good, p, &c.aan.tunnel);
        assert!((s.duration_scale - (1.0 - p.duration_step_down)).abs() < 1e-12, "{s:?}");
        assert_eq!(s.assistance_scale, p.assistance_min);
        // A rescue adds help and time at once.
        let bad = BlockPerformance { trials: 10, successes: 1 };
        progress_between_blocks(&mut s, &bad, p, &c.aan.tunnel);
        assert!(s.assistance_scale > p.assistance_min && s.duration_scale > 1.0 - p.duration_step_down, "{s:?}");
    }

    #[test]
    fn emken_task_error_is_zero_within_the_deadband_and_shared_by_joint_beyond_it() {
        let mut x = [1.0; 3];
        // ||(0.03, 0.04, 0)|| = 0.05: on the deadband edge, no error.
        emken_task_error(&[0.03, -0.04, 0.0], &[0.0, 0.0, 0.0], 0.05, &mut x);
        assert_eq!(x, [0.0; 3]);
        // The larger of arrival and last error per joint: e = (0.3, 0.4, 0), ||e|| = 0.5, excess 0.45 shared 3:4.
        emken_task_error(&[0.3, 0.0, 0.0], &[0.1, -0.4, 0.0], 0.05, &mut x);
        assert!((x[0] - 0.6 * 0.45).abs() < 1e-12 && (x[1] - 0.8 * 0.45).abs() < 1e-12 && x[2] == 0.0, "{x:?}");
        let norm = (x[0] * x[0] + x[1] * x[1]).sqrt();
        assert!((norm - 0.45).abs() < 1e-12, "the shares add up to the distance beyond the deadband");
        // On target: the stiffness only forgets.
        let c = cfg().aan.emken;
        let mut k = [100.0, 50.0];
        emken_task_error(&[0.0, 0.0], &[0.0, 0.0], 0.0, &mut x[..2]);
        emken_update_excess(&mut k, &x[..2], &c);
        assert_eq!(k, [c.forgetting * 100.0, c.forgetting * 50.0]);
        emken_update_excess(&mut k, &[0.1, 0.0], &c);
        assert!((k[0] - (c.forgetting * c.forgetting * 100.0 + c.gain * 0.1)).abs() < 1e-9);
    }

    #[test]
    fn emken_window_leaves_errors_inside_it_to_the_patient_and_is_continuous_at_its_edge() {
        let w = 0.02;
        assert_eq!(emken_window_factor(0.0, w), 0.0);
        assert_eq!(emken_window_factor(0.5 * w, w), 0.0, "inside the window the law does no work");
        assert_eq!(emken_window_factor(w, w), 0.0, "no torque step at the edge");
        assert!(emken_window_factor(w * (1.0 + 1e-9), w) < 1e-8, "continuous just outside the edge");
        // Outside: the position term K phi e has the magnitude K (|e| - w), a spring from the window's edge.
        for e in [0.03, 0.1, 1.0] {
            let k = 40.0;
            assert!((k * emken_window_factor(e, w) * e - k * (e - w)).abs() < 1e-12, "e = {e}");
        }
        assert!(emken_window_factor(10.0, w) > 0.99, "far outside, the whole impedance");
        assert_eq!(emken_window_factor(0.001, 0.0), 1.0, "no window: the impedance acts on every error");
        assert_eq!(emken_window_factor(0.001, -1.0), 1.0);
    }

    #[test]
    fn emken_window_widens_as_the_progression_withdraws_help_and_narrows_on_a_rescue() {
        let mut c = cfg().aan.emken;
        c.window_fraction = 0.4;
        c.window_max_fraction = 0.8;
        let tol = 0.05;
        assert!((emken_window_half_width(&c, 1.0, tol) - 0.02).abs() < 1e-12, "at full help: window_fraction");
        assert!((emken_window_half_width(&c, 0.8, tol) - 0.025).abs() < 1e-12, "help withdrawn: wider");
        assert!((emken_window_half_width(&c, 0.2, tol) - 0.04).abs() < 1e-12, "capped at window_max_fraction");
        assert!((emken_window_half_width(&c, 1.5, tol) - 0.4 / 1.5 * tol).abs() < 1e-12, "a rescue narrows it");
        assert!(emken_window_half_width(&c, 1.0, tol) < tol, "the window stays inside the tolerance");
        assert_eq!(emken_window_half_width(&c, 0.0, tol), 0.0, "a degenerate scale gives no window, not infinity");
        c.window_fraction = 0.0;
        assert_eq!(emken_window_half_width(&c, 0.2, tol), 0.0, "no window configured");
    }

    #[test]
    fn emken_damping_keeps_the_damping_ratio_of_the_initial_impedance() {
        let mut c = cfg().aan.emken;
        c.constant_damping_ratio = true;
        assert!((emken_damping(3.0, c.initial, 1.0, &c) - 3.0).abs() < 1e-12, "configured at the initial K");
        // A quarter of the stiffness (or of the scale) halves the damping: D / (2 sqrt(K)) stays constant.
        assert!((emken_damping(3.0, 0.25 * c.initial, 1.0, &c) - 1.5).abs() < 1e-12);
        assert!((emken_damping(3.0, c.initial, 0.25, &c) - 1.5).abs() < 1e-12);
        assert_eq!(emken_damping(3.0, 0.0, 1.0, &c), 0.0, "no stiffness, no damping");
        c.constant_damping_ratio = false;
        assert_eq!(emken_damping(3.0, 0.0, 0.2, &c), 3.0);
    }

    #[test]
    fn window_rescues_within_the_rescue_window_and_withdraws_only_on_a_full_window() {
        let c = cfg();
        let p = &c.aan.progression;
        let mut s = AdaptationState::new(4, &c.aan);
        // Success: nothing happens before a full window, then exactly one withdrawal per window.
        for i in 1..=3 * p.window {
            let d = record_trial_outcome(&mut s, true, p, &c.aan.tunnel);
            assert_eq!(d, (i % p.window == 0).then_some(Progression::Harder), "trial {i}");
        }
        let withdrawn = (1.0 - p.assistance_step_down).powi(3);
        assert!((s.assistance_scale - withdrawn).abs() < 1e-12, "{}", s.assistance_scale);
        assert_eq!(s.pending_outcomes, 0);
        // A sudden run of failures: help rises within `rescue_window` trials and keeps rising while they last.
        let before = s.assistance_scale;
        let mut first_rescue = None;
        for i in 1..=12 {
            if record_trial_outcome(&mut s, false, p, &c.aan.tunnel) == Some(Progression::Easier) {
                first_rescue.get_or_insert(i);
            }
        }
        assert!(first_rescue.is_some_and(|i| i <= p.rescue_window), "{first_rescue:?}");
        assert!(s.assistance_scale > 2.0 * before && s.duration_scale > 1.0, "{s:?}");
        // Isolated failures (one in five: 80 % success) never trigger a rescue; two close together do.
        let mut s2 = AdaptationState::new(4, &c.aan);
        for i in 0..10 * p.window {
            let d = record_trial_outcome(&mut s2, i % 5 != 4, p, &c.aan.tunnel);
            assert_ne!(d, Some(Progression::Easier), "trial {i}");
        }
        assert!(s2.assistance_scale < 1.0, "80 % success withdraws help: {}", s2.assistance_scale);
        let before = s2.assistance_scale;
        assert_eq!(
            record_trial_outcome(&mut s2, false, p, &c.aan.tunnel),
            Some(Progression::Easier),
            "loop ended on F"
        );
        let before_second = s2.assistance_scale;
        record_trial_outcome(&mut s2, false, p, &c.aan.tunnel);
        assert_eq!(record_trial_outcome(&mut s2, false, p, &c.aan.tunnel), Some(Progression::Easier));
        assert!(s2.assistance_scale > before_second && before_second > before);
    }

    #[test]
    fn window_scales_stay_within_their_bounds() {
        let c = cfg();
        let p = &c.aan.progression;
        let t = &c.aan.tunnel;
        let mut s = AdaptationState::new(4, &c.aan);
        for i in 0..2000 {
            record_trial_outcome(&mut s, i % 7 != 0 && i < 1000, p, t);
            assert!((p.assistance_min..=p.assistance_max).contains(&s.assistance_scale), "{s:?}");
            assert!((p.duration_min..=p.duration_max).contains(&s.duration_scale), "{s:?}");
            assert!((t.width_min..=t.width_max).contains(&s.tunnel_width), "{s:?}");
            assert!(s.pending_outcomes as usize <= MAX_WINDOW);
        }
        assert_eq!(s.assistance_scale, p.assistance_max, "1000 failures end at the upper bound");
    }

    #[test]
    fn a_version_1_file_is_refused_naming_version() {
        let c = cfg();
        let mut text = toml::to_string(&AdaptationState::new(4, &c.aan)).unwrap();
        text = text.replace("version = 2", "version = 1");
        text = text.lines().filter(|l| !l.contains("outcomes")).collect::<Vec<_>>().join("\n");
        let err = AdaptationState::from_toml_str(&text, "old.toml").unwrap_err().to_string();
        assert!(err.contains("version") && err.contains("old.toml"), "{err}");
        // Nested in another file (the app's session state), an old state parses and is refused on resume.
        let nested: AdaptationState = toml::from_str(&text).unwrap();
        let err = nested.validated(4, &c.aan, "session.toml").unwrap_err().to_string();
        assert!(err.contains("version") && err.contains("session.toml"), "{err}");
    }

    #[test]
    fn progression_window_config_has_hard_ranges() {
        let mut c = cfg();
        c.aan.progression.assistance_step_up = 0.5 * c.aan.progression.assistance_step_down;
        let err = c.validate(4, "cfg").unwrap_err().to_string();
        assert!(err.contains("assistance_step_up"), "a rescue smaller than a withdrawal is refused: {err}");
        let mut c = cfg();
        c.aan.progression.window = MAX_WINDOW + 1;
        assert!(c.validate(4, "cfg").unwrap_err().to_string().contains("window"));
        let mut c = cfg();
        c.aan.progression.rescue_window = c.aan.progression.window + 1;
        assert!(c.validate(4, "cfg").unwrap_err().to_string().contains("rescue_window"));
    }

    #[test]
    fn support_rises_when_the_law_carries_the_arm_and_is_forgotten_when_it_does_not() {
        let c = cfg().aan.support;
        // The law's torque is 0.4 x the arm's gravity torque at every tick: it carried 40 % of the weight.
        let g = [3.0, -1.0, 0.5];
        let (mut lg, mut gg) = (0.0, 0.0);
        for _ in 0..100 {
            for gj in g {
                lg += 0.4 * gj * gj;
                gg += gj * gj;
            }
        }
        let share = law_weight_share(lg, gg, 1e-6).unwrap();
        assert!((share - 0.4).abs() < 1e-12, "{share}");
        assert!(law_weight_share(1.0, 0.0, 1e-6).is_none(), "no weight on the joints: nothing to tell");
        assert!(law_weight_share(f64::NAN, 1.0, 1e-6).is_none());
        let raised = support_update(0.3, share, &c);
        let expected = c.forgetting * 0.3 + c.gain * (0.4 - c.tolerated_share);
        assert!((raised - expected).abs() < 1e-12 && raised > 0.3, "{raised}");
        // A patient who carries its arm (the law carries no more than it may): the support falls.
        let mut a = 0.3;
        for _ in 0..96 {
            a = support_update(a, c.tolerated_share, &c);
        }
        assert!((a - 0.3 * c.forgetting.powi(96)).abs() < 1e-12 && a < 0.3, "{a}");
        assert!(support_update(0.3, 0.0, &c) < 0.3 * c.forgetting, "carrying nothing withdraws faster");
        // A support that lifts the arm: the law pushes down and the support falls at once; bounded both ways.
        assert!(support_update(0.5, -0.2, &c) < 0.5 * c.forgetting);
        assert_eq!(support_update(0.1, -5.0, &c), c.min);
        assert_eq!(support_update(0.9, 5.0, &c), c.max);
        // Equilibrium: the law carries tolerated_share + (1 - f) a / g of the weight.
        let eq = c.tolerated_share + (1.0 - c.forgetting) * 0.5 / c.gain;
        assert!((support_update(0.5, eq, &c) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn a_state_without_arm_support_resumes_and_a_bad_one_is_refused_naming_it() {
        let c = cfg();
        let mut s = AdaptationState::new(4, &c.aan);
        let text = toml::to_string(&s).unwrap();
        assert!(!text.contains("arm_support"), "not written until adapted: {text}");
        let back = AdaptationState::from_toml_str(&text, "old.toml").unwrap();
        assert_eq!(back.arm_support, None);
        s.arm_support = Some(0.45);
        let back = AdaptationState::from_toml_str(&toml::to_string(&s).unwrap(), "new.toml").unwrap();
        assert_eq!(back.arm_support, Some(0.45));
        s.arm_support = Some(-0.1);
        let err = s.clone().validated(4, &c.aan, "state.toml").unwrap_err().to_string();
        assert!(err.contains("arm_support") && err.contains("state.toml"), "{err}");
        let mut narrow = c.aan.clone();
        narrow.support.max = 0.4;
        s.arm_support = Some(0.9);
        let (state, clamped) = s.validated(4, &narrow, "state.toml").unwrap();
        assert_eq!(state.arm_support, Some(0.4));
        assert!(clamped.iter().any(|v| v.field == "arm_support" && v.saved == 0.9), "{clamped:?}");
    }

    #[test]
    fn adaptation_state_round_trips_through_json_like_toml() {
        let c = cfg();
        let mut s = AdaptationState::new(4, &c.aan);
        s.rbf_weights[2][3] = 1.25;
        s.trials = 17;
        let text = toml::to_string(&s).unwrap();
        let back: AdaptationState = toml::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
