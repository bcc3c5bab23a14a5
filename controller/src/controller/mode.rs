//! What a block sets on the controller: the therapy mode, the space of the passive impedance and the arm
//! support ([`ModeSettings`]).

use serde::{Deserialize, Serialize};

use crate::aan::AanLaw;
use crate::error::{ControllerError, check_range};

/// Therapy mode of a block (Basteris et al. 2014 taxonomy).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The robot moves the arm along the reference (stiff impedance + feed-forward).
    Passive,
    /// Assist-as-needed with the block's [`AanLaw`].
    ActiveAssisted,
    /// Gravity and friction compensation (plus a small residual damping): the patient moves freely.
    Transparent,
    /// Viscous and/or elastic resistance to the patient's motion.
    Resistive,
    /// The robot amplifies the tracking error (gain) and/or adds an offset (Wei & Patton 2005).
    ErrorAugmentation,
}

/// Where the passive impedance acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    /// Joint-space impedance.
    #[default]
    Joint,
    /// Cartesian impedance of the handle through Jᵀ, null-space posture towards the joint reference.
    Cartesian,
}

/// The per-block settings of the controller.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModeSettings {
    /// Mode.
    pub mode: Mode,
    /// AAN law (used in [`Mode::ActiveAssisted`]).
    pub law: AanLaw,
    /// Space of the passive impedance.
    pub space: Space,
    /// Share of the patient's arm weight carried by the robot [-], 0..=1.
    pub arm_support: f64,
    /// Error-augmentation gain override [-], 1..=3 (None = configuration).
    pub error_gain: Option<f64>,
}

impl ModeSettings {
    /// Passive joint-space tracking with full arm support.
    pub fn passive() -> Self {
        Self { mode: Mode::Passive, law: AanLaw::Fixed, space: Space::Joint, arm_support: 1.0, error_gain: None }
    }

    /// Checks the ranges: `arm_support` ∈ [0, 1], `error_gain` ∈ [1, 3]. `context` names the source in errors
    /// (e.g. `block settings`). Allocation-free when the settings are valid.
    pub fn validate(&self, context: &str) -> Result<(), ControllerError> {
        check_range(context, "arm_support", self.arm_support, 0.0, 1.0)?;
        if let Some(g) = self.error_gain {
            check_range(context, "error_gain", g, 1.0, 3.0)?;
        }
        Ok(())
    }
}
