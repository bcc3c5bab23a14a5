//! What one session hands to the next: everything the assist-as-needed laws learnt (Emken stiffness, RBF
//! weights, tunnel width, Krebs progression — [`AdaptationState`]) and, in simulation, the virtual patient's
//! trial-to-trial state (capacity, effort, fatigue), so therapy adapts across sessions and a simulated patient
//! recovers over weeks of sessions. The virtual patient's state is an opaque TOML table here
//! ([`PatientHooks::patient_state`]): only the simulator reads and validates it.
//!
//! Written at the end of every `sim`/`run` session as `<recording>.state.toml` (or `--state <file>`), read back
//! with `--resume <file>`. The file is TOML so a clinician can read it; it is validated on load (format
//! version, joint count, RBF basis, finite and non-negative values), and values outside the current
//! configuration's bounds are clamped and reported, never silently used.

use std::path::Path;

use plexo_controller::{AdaptationState, ClampedValue, Therapy};
use plexo_hal::PatientHooks;
use serde::{Deserialize, Serialize};

use crate::AppError;
use crate::runtime::Runtime;

/// The state carried from one session to the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionState {
    /// Name of the session that wrote it.
    pub session: String,
    /// Sessions in this series so far, this one included (1 for a first session).
    pub sessions: u32,
    /// What the assist-as-needed laws learnt.
    pub adaptation: AdaptationState,
    /// The virtual patient's state at the end of the session (simulation only), as the simulator wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_patient: Option<toml::Table>,
}

impl SessionState {
    /// Reads a state file. Errors name the file (and the field, for a bad value). Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        toml::from_str(&text).map_err(|e| AppError::Config {
            file: path.display().to_string(),
            key: "(session state)".into(),
            reason: e.to_string(),
        })
    }

    /// Writes the state file atomically (creating its directory; a crash leaves the previous file). Not
    /// real-time safe.
    pub fn save(&self, path: &Path) -> Result<(), AppError> {
        let text = toml::to_string(self).map_err(|e| AppError::Config {
            file: path.display().to_string(),
            key: "(session state)".into(),
            reason: format!("cannot serialize: {e}"),
        })?;
        let header = "# Plexo session state: what the assist-as-needed laws learnt (and, in simulation, the virtual\n\
                      # patient's state). Resume the next session with `--resume <this file>`.\n";
        crate::files::write_atomically(path, format!("{header}{text}").as_bytes())
    }

    /// Resumes `therapy` from this state before the session starts; returns the values clamped to the current
    /// configuration's bounds. Errors name `source` and the field. Not real-time safe.
    pub fn resume(&self, therapy: &mut Therapy, source: &Path) -> Result<Vec<ClampedValue>, AppError> {
        // The controller's validation names the field; the file is named here.
        therapy.resume_from(self.adaptation.clone()).map_err(|e| AppError::Config {
            file: source.display().to_string(),
            key: "adaptation".into(),
            reason: e.to_string(),
        })
    }
}

/// Prints what a resume changed: the sessions so far and every clamped value. Not real-time safe.
pub fn report_resume(path: &Path, state: &SessionState, clamped: &[ClampedValue]) {
    println!(
        "resuming from {} (session {} of the series, {} adaptive trials so far)",
        path.display(),
        state.sessions + 1,
        state.adaptation.trials
    );
    for c in clamped {
        let text = format!(
            "{}: {} = {} is outside the current configuration's bounds; using {}",
            path.display(),
            c.field,
            c.saved,
            c.restored
        );
        tracing::warn!("{text}");
        eprintln!("warning: {text}");
    }
}

/// Loads `--resume` and applies it before the session starts: the therapy's adaptation and, when the plant has
/// one, the virtual patient's state. Returns the loaded state (`None` without `--resume`). Not real-time safe.
pub fn resume_session<P: PatientHooks>(
    resume: Option<&Path>,
    therapy: &mut plexo_controller::Therapy,
    plant: &mut P,
) -> Result<Option<SessionState>, AppError> {
    let Some(path) = resume else { return Ok(None) };
    let state = SessionState::load(path)?;
    apply_state(&state, path, therapy, plant)?;
    Ok(Some(state))
}

/// Applies a loaded state: the therapy's adaptation and, when the plant has one, the virtual patient's state;
/// `path` names the source in messages. Not real-time safe.
pub fn apply_state<P: PatientHooks>(
    state: &SessionState,
    path: &Path,
    therapy: &mut plexo_controller::Therapy,
    plant: &mut P,
) -> Result<(), AppError> {
    let clamped = state.resume(therapy, path)?;
    report_resume(path, state, &clamped);
    match &state.virtual_patient {
        Some(patient) => {
            let restored = plant.restore_patient(patient).map_err(|e| AppError::Config {
                file: path.display().to_string(),
                key: "virtual_patient".into(),
                reason: e.to_string(),
            })?;
            if !restored {
                eprintln!("note: {} holds a virtual patient's state; it is ignored on hardware", path.display());
            }
        }
        None if plant.patient_state().is_some() => {
            eprintln!("note: {} holds no virtual patient's state; the patient starts from its profile", path.display());
        }
        None => {}
    }
    Ok(())
}

/// This session's state to carry to the next one: the therapy's adaptation and the plant's virtual patient.
/// Not real-time safe.
pub fn session_state<P: PatientHooks>(session: &str, previous: Option<&SessionState>, rt: &Runtime<P>) -> SessionState {
    SessionState {
        session: session.to_owned(),
        sessions: previous.map_or(1, |p| p.sessions + 1),
        adaptation: rt.therapy.adaptation_state(),
        virtual_patient: rt.plant.patient_state(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SessionState {
        let config = plexo_controller::ControllerConfig::default_config().unwrap();
        SessionState {
            session: "s1".into(),
            sessions: 1,
            adaptation: AdaptationState::new(4, &config.aan),
            virtual_patient: Some(toml::toml! {
                capacity = 0.6
                effort = 0.9
                fatigue = 0.1
                trials = 40
                successful_trials = 30
            }),
        }
    }

    #[test]
    fn round_trips_through_a_file() {
        let dir = std::env::temp_dir().join(format!("plexo-state-{}", std::process::id()));
        let path = dir.join("s.state.toml");
        let s = state();
        s.save(&path).unwrap();
        assert_eq!(SessionState::load(&path).unwrap(), s);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unknown_key_is_rejected_naming_the_file_and_the_key() {
        let dir = std::env::temp_dir().join(format!("plexo-state-bad-{}", std::process::id()));
        let path = dir.join("bad.state.toml");
        state().save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap().replace("sessions = 1", "sessions = 1\nmood = 3");
        std::fs::write(&path, text).unwrap();
        let e = SessionState::load(&path).unwrap_err().to_string();
        assert!(e.contains("bad.state.toml") && e.contains("mood"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
