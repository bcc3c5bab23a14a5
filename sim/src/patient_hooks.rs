//! The runtime's link to the virtual patient: [`plexo_hal::PatientHooks`] for both plants, so the runtime never
//! names a simulator type. The patient's state crosses sessions as a TOML table with the fields of
//! [`PatientState`] (`capacity`, `effort`, `fatigue`, `trials`, `successful_trials`, `model_fast`, `model_slow`,
//! `expected_support`), the same table the session state file's `[virtual_patient]` holds.

use plexo_hal::{JointArray, PatientHooks};

use crate::articulated::ArticulatedPlant;
use crate::patient::{PatientState, TrialOutcome};
use crate::rapier_plant::RapierPlant;
use crate::{SimError, SimulatedPlant};

/// The fields of a saved [`PatientState`] table, in the order they are written.
const STATE_FIELDS: [&str; 8] =
    ["capacity", "effort", "fatigue", "trials", "successful_trials", "model_fast", "model_slow", "expected_support"];
/// The fields a state saved before issue 12 lacks: the internal model (read as 0 when missing) and the expected
/// support (absent before the first trial end).
const OPTIONAL_FIELDS: [&str; 3] = ["model_fast", "model_slow", "expected_support"];

/// `state` as a TOML table: floats for the levels, integers for the trial counts (a count beyond `i64::MAX`,
/// 9.2e18 trials, is saved as `i64::MAX`). Not real-time safe (allocates).
pub fn patient_state_to_table(state: &PatientState) -> toml::Table {
    let count = |n: u64| toml::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    let mut table = toml::Table::new();
    table.insert(STATE_FIELDS[0].into(), toml::Value::Float(state.capacity));
    table.insert(STATE_FIELDS[1].into(), toml::Value::Float(state.effort));
    table.insert(STATE_FIELDS[2].into(), toml::Value::Float(state.fatigue));
    table.insert(STATE_FIELDS[3].into(), count(state.trials));
    table.insert(STATE_FIELDS[4].into(), count(state.successful_trials));
    table.insert(STATE_FIELDS[5].into(), toml::Value::Float(state.model_fast));
    table.insert(STATE_FIELDS[6].into(), toml::Value::Float(state.model_slow));
    if let Some(s) = state.expected_support {
        table.insert(STATE_FIELDS[7].into(), toml::Value::Float(s));
    }
    table
}

/// Parses a saved patient state table. Every field is required except `model_fast` and `model_slow` (0 when
/// missing: a state saved before the internal model existed) and `expected_support` (none saved before the first
/// trial end), and no other is allowed; errors name the field
/// (`patient_state.<field>`). The values' ranges are checked by [`crate::Patient::restore`]. Not real-time safe.
pub fn patient_state_from_table(table: &toml::Table) -> Result<PatientState, SimError> {
    let invalid =
        |field: &str, reason: String| SimError::InvalidPatientState { key: format!("patient_state.{field}"), reason };
    if let Some(unknown) = table.keys().find(|k| !STATE_FIELDS.contains(&k.as_str())) {
        return Err(invalid(unknown, format!("unknown field; expected one of {}", STATE_FIELDS.join(", "))));
    }
    let get = |field: &str| table.get(field).ok_or_else(|| invalid(field, "missing".into()));
    let level = |field: &str| match get(field)? {
        toml::Value::Float(x) => Ok(*x),
        // A hand-edited `capacity = 1` is a whole number, not a type error.
        toml::Value::Integer(i) => Ok(*i as f64),
        other => Err(invalid(field, format!("expected a number, found {}", other.type_str()))),
    };
    let optional_level = |field: &str| if table.contains_key(field) { level(field) } else { Ok(0.0) };
    let count = |field: &str| match get(field)? {
        toml::Value::Integer(i) => u64::try_from(*i).map_err(|_| invalid(field, format!("{i} is negative"))),
        other => Err(invalid(field, format!("expected a whole number of trials, found {}", other.type_str()))),
    };
    Ok(PatientState {
        capacity: level("capacity")?,
        effort: level("effort")?,
        fatigue: level("fatigue")?,
        trials: count("trials")?,
        successful_trials: count("successful_trials")?,
        model_fast: optional_level(OPTIONAL_FIELDS[0])?,
        model_slow: optional_level(OPTIONAL_FIELDS[1])?,
        expected_support: if table.contains_key(OPTIONAL_FIELDS[2]) { Some(level(OPTIONAL_FIELDS[2])?) } else { None },
    })
}

fn patient_goal(plant: &mut impl SimulatedPlant, goal: &JointArray<f64>, duration: f64) -> Result<(), SimError> {
    match plant.patient_mut() {
        Some(p) => p.set_target(goal, duration),
        None => Ok(()),
    }
}

fn patient_trial_end(plant: &mut impl SimulatedPlant, outcome: TrialOutcome) -> Result<(), SimError> {
    if let Some(p) = plant.patient_mut() {
        p.end_trial(&outcome)?;
        p.clear_target();
    }
    Ok(())
}

fn restore_patient(plant: &mut impl SimulatedPlant, table: &toml::Table) -> Result<bool, SimError> {
    match plant.patient_mut() {
        Some(p) => {
            p.restore(patient_state_from_table(table)?)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// The hooks of a simulated plant: the clock is simulated, the patient (if one is strapped in) gets the goal
/// and the trial outcome, and its true torque and state are reported.
macro_rules! simulated_patient_hooks {
    ($plant:ty) => {
        impl PatientHooks for $plant {
            fn is_simulated(&self) -> bool {
                true
            }

            fn patient_goal(&mut self, goal: &JointArray<f64>, duration: f64) -> Result<(), SimError> {
                patient_goal(self, goal, duration)
            }

            fn patient_trial_end(&mut self, error: f64, success: bool, duration: f64) -> Result<(), SimError> {
                patient_trial_end(self, TrialOutcome { error, success, duration })
            }

            fn true_patient_torque(&self) -> Option<JointArray<f64>> {
                self.patient().map(|p| p.torques().total)
            }

            fn true_voluntary_torque(&self) -> Option<JointArray<f64>> {
                self.patient().map(|p| p.torques().voluntary_drive())
            }

            fn patient_state(&self) -> Option<toml::Table> {
                self.patient().map(|p| patient_state_to_table(p.state()))
            }

            fn restore_patient(&mut self, state: &toml::Table) -> Result<bool, SimError> {
                restore_patient(self, state)
            }
        }
    };
}

simulated_patient_hooks!(ArticulatedPlant);
simulated_patient_hooks!(RapierPlant);

#[cfg(test)]
mod tests {
    use plexo_hal::{JointCommand, JointState, Robot};
    use plexo_kinematics::Model;

    use super::*;
    use crate::{PatientProfile, PlantConfig, RapierOptions};

    fn arm4() -> Model {
        Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap()).unwrap()
    }

    fn plant() -> ArticulatedPlant {
        let config = PlantConfig::default().with_patient(PatientProfile::builtin("moderate").unwrap());
        ArticulatedPlant::new(&arm4(), config).unwrap()
    }

    /// A patient that has done a few trials through the hooks: its state differs from the profile's start.
    fn trained() -> ArticulatedPlant {
        let mut plant = plant();
        plant.enable().unwrap();
        let mut state = JointState::zeros(4);
        for trial in 0..3 {
            let goal = JointArray::from_slice(&[0.3, 0.4, 0.0, 1.0]).unwrap();
            plant.patient_goal(&goal, 1.0).unwrap();
            for _ in 0..300 {
                plant.read(&mut state).unwrap();
                plant.write(&JointCommand::zeros(4)).unwrap();
            }
            plant.patient_trial_end(0.2, trial > 0, 0.3).unwrap();
        }
        assert!(plant.patient().unwrap().target().is_none(), "the trial end clears the target");
        plant
    }

    #[test]
    fn the_patient_state_round_trips_through_its_table_into_a_new_plant() {
        let trained = trained();
        let saved = trained.patient_state().unwrap();
        let expected = *trained.patient().unwrap().state();
        assert_eq!(expected.trials, 3);
        assert_eq!(expected.successful_trials, 2);
        // The table is what serde wrote for the session state file's [virtual_patient] before the hooks existed.
        assert_eq!(saved, toml::Table::try_from(expected).unwrap());
        // Through the file's text and back.
        let text = toml::to_string(&saved).unwrap();
        let reread: toml::Table = toml::from_str(&text).unwrap();
        let mut next = plant();
        assert!(next.restore_patient(&reread).unwrap());
        assert_eq!(*next.patient().unwrap().state(), expected);
        assert!(next.is_simulated());
        assert!(next.true_patient_torque().unwrap().all_finite());
    }

    #[test]
    fn a_bad_or_unknown_field_of_the_saved_state_is_named() {
        let saved = trained().patient_state().unwrap();
        let mut plant = plant();
        let before = *plant.patient().unwrap().state();
        let cases: [(&str, Option<toml::Value>, &str); 6] = [
            ("capacity", Some(toml::Value::Float(5.0)), "patient_state.capacity"),
            ("effort", Some(toml::Value::String("high".into())), "patient_state.effort"),
            ("fatigue", Some(toml::Value::Float(f64::NAN)), "patient_state.fatigue"),
            ("trials", Some(toml::Value::Integer(-1)), "patient_state.trials"),
            ("successful_trials", None, "patient_state.successful_trials"),
            ("mood", Some(toml::Value::Integer(3)), "patient_state.mood"),
        ];
        for (field, value, named) in cases {
            let mut table = saved.clone();
            match value {
                Some(v) => table.insert(field.into(), v),
                None => table.remove(field),
            };
            let e = plant.restore_patient(&table).unwrap_err();
            assert!(e.to_string().contains(named), "{field}: {e}");
            assert_eq!(*plant.patient().unwrap().state(), before, "{field}: a refused state changes nothing");
        }
    }

    #[test]
    fn a_plant_without_a_patient_has_no_patient_state() {
        let mut plant = RapierPlant::new(&arm4(), PlantConfig::default(), RapierOptions::default()).unwrap();
        assert!(plant.is_simulated());
        assert!(plant.patient_state().is_none());
        assert!(plant.true_patient_torque().is_none());
        assert!(plant.true_voluntary_torque().is_none());
        let table = patient_state_to_table(&PatientState {
            capacity: 1.0,
            effort: 1.0,
            fatigue: 0.0,
            trials: 0,
            successful_trials: 0,
            model_fast: 0.0,
            model_slow: 0.0,
            expected_support: None,
        });
        assert!(!plant.restore_patient(&table).unwrap());
        plant.patient_goal(&JointArray::splat(4, 0.0), 1.0).unwrap();
        plant.patient_trial_end(0.1, true, 1.0).unwrap();
    }

    /// The voluntary torque the hooks report is the patient's own drive (voluntary + synergy) of the last tick,
    /// and the total torque is that plus reflex, tremor and passive tissue.
    #[test]
    fn the_true_voluntary_torque_is_the_voluntary_drive_without_reflex_tremor_and_tissue() {
        let mut plant = plant();
        plant.enable().unwrap();
        let mut state = JointState::zeros(4);
        let goal = JointArray::from_slice(&[0.3, 0.4, 0.0, 1.0]).unwrap();
        plant.patient_goal(&goal, 1.0).unwrap();
        let mut moved = 0.0f64;
        for _ in 0..400 {
            plant.read(&mut state).unwrap();
            plant.write(&JointCommand::zeros(4)).unwrap();
            let torques = *plant.patient().unwrap().torques();
            let voluntary = plant.true_voluntary_torque().unwrap();
            let total = plant.true_patient_torque().unwrap();
            for j in 0..4 {
                assert_eq!(voluntary[j], torques.voluntary[j] + torques.synergy[j]);
                let rest = torques.reflex[j] + torques.tremor[j] + torques.passive[j];
                assert!((total[j] - voluntary[j] - rest).abs() < 1e-12);
                moved = moved.max(voluntary[j].abs());
            }
        }
        assert!(moved > 0.1, "the patient drives towards its goal: max |voluntary| = {moved} Nm");
    }
}
