//! A session bound to a stored patient (`plexo sim|run --patient-id P`): the patient's spec (and virtual
//! profile) come from the store, the last adaptation state resumes the therapy (unless `--resume FILE` names
//! another), each trial is stored as it ends ([`super::recorder`]) and the session's end and new state are
//! stored at the end.

use std::path::Path;

use plexo_sim::PatientProfile;

use super::{Store, StoredPatient};
use crate::AppError;
use crate::options::OutputArgs;
use crate::setup::{Loaded, Patient};

/// What a session needs to record itself in the store.
pub struct StoreBinding {
    /// The open store.
    pub store: Store,
    /// The patient's id.
    pub patient_id: String,
    /// `sim` or `run`.
    pub kind: &'static str,
    /// The operator's notes (`--notes`).
    pub notes: Option<String>,
    /// The effective controller configuration as TOML (stored with its hash).
    pub controller_toml: String,
}

/// Opens the store of `--db` and reads patient `--patient-id`, if a patient id was given. Not real-time safe.
pub fn open_for_session(args: &OutputArgs) -> Result<Option<(Store, StoredPatient)>, AppError> {
    let Some(id) = &args.patient_id else { return Ok(None) };
    let store = Store::open_existing(&args.db)?;
    let patient = store.patient(id)?;
    Ok(Some((store, patient)))
}

/// The session's patient from the store: the virtual patient (its profile with the stored spec) when
/// `simulated`, else the clinical spec. `db` names the source in messages.
pub fn session_patient(stored: &StoredPatient, db: &Path, simulated: bool) -> Result<Loaded<Patient>, AppError> {
    let source = format!("{} (patient {})", db.display(), stored.id);
    if !simulated {
        return Ok(Loaded { value: Patient::Clinical(stored.spec.clone()), source });
    }
    let Some(profile) = &stored.virtual_profile_toml else {
        return Err(AppError::Store {
            db: db.display().to_string(),
            reason: format!(
                "patient {:?} is a clinical patient without a virtual profile: a simulation needs one (add a virtual \
                 patient with plexo patient add ID --virtual moderate)",
                stored.id
            ),
        });
    };
    Ok(Loaded { value: Patient::Virtual(Box::new(profile_with_spec(profile, stored, &source)?)), source })
}

/// The stored virtual profile with its `[spec]` replaced by the patient's current spec (the measured range of
/// motion and personal limits the clinic set after the patient was added).
pub fn profile_with_spec(profile: &str, stored: &StoredPatient, source: &str) -> Result<PatientProfile, AppError> {
    let bad = |reason: String| AppError::Config { file: source.to_owned(), key: "virtual_profile".into(), reason };
    let mut table: toml::Table = toml::from_str(profile).map_err(|e| bad(e.to_string()))?;
    let spec = toml::Value::try_from(&stored.spec).map_err(|e| bad(e.to_string()))?;
    table.insert("spec".into(), spec);
    let text = toml::to_string(&table).map_err(|e| bad(e.to_string()))?;
    Ok(PatientProfile::from_toml_str(&text, source)?)
}

/// The virtual patient's body for a range-of-motion assessment (`--assess-rom`): the stored profile with the
/// patient's current spec, except the passive range of motion of its tissue, which stays the profile's own
/// (what it was added with). A therapy session's virtual patient has the stored range as its tissue range
/// ([`session_patient`]: a range the clinic narrowed narrows the simulated arm too, which keeps the relaxed arm
/// inside the walls at enable); an assessment must measure the patient, not the last measurement — with the
/// stored range as its tissue range the virtual patient could never move beyond it (it plans inside its passive
/// range), and a measured range would feed back into the arm it measures. Not real-time safe.
pub fn physiology(stored: &StoredPatient, db: &Path) -> Result<Option<PatientProfile>, AppError> {
    let Some(profile) = &stored.virtual_profile_toml else { return Ok(None) };
    let source = format!("{} (patient {})", db.display(), stored.id);
    let own = PatientProfile::from_toml_str(profile, &source)?.spec.range_of_motion;
    let mut body = profile_with_spec(profile, stored, &source)?;
    for (joint, range) in own {
        body.spec.range_of_motion.insert(joint, range);
    }
    Ok(Some(body))
}

#[cfg(test)]
mod tests {
    use plexo_hal::JointInfo;
    use plexo_kinematics::JointSafetyLimits;

    use super::*;
    use crate::setup;

    /// A stored patient's personal limits (and a range of motion set after the patient was added) reach the
    /// session: they tighten the supervisor as a patient file's do, for the virtual profile too.
    #[test]
    fn a_stored_patients_personal_limits_and_new_range_reach_the_supervisor() {
        let d = std::env::temp_dir().join(format!("plexo-binding-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut store = Store::open(&d.join("plexo.db")).unwrap();
        let profile = plexo_sim::default_patient_toml("moderate").unwrap();
        let mut spec = PatientProfile::builtin("moderate").unwrap().spec().clone();
        spec.id = "L-1".into();
        store.add_patient(&spec, Some(profile)).unwrap();
        spec.limits
            .insert("elbow_flexion".into(), JointSafetyLimits { max_velocity: Some(1.1), max_torque: Some(5.0) });
        spec.range_of_motion.insert("elbow_flexion".into(), [0.4, 1.9]);
        store.update_spec(&spec, "test").unwrap();
        let stored = store.patient("L-1").unwrap();
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let model = &robot.value.0;
        for simulated in [true, false] {
            let patient = session_patient(&stored, store.path(), simulated).unwrap();
            assert_eq!(matches!(patient.value, Patient::Virtual(_)), simulated);
            assert_eq!(patient.value.spec().range_of("elbow_flexion"), Some([0.4, 1.9]));
            let parts = setup::build_session(
                model,
                &setup::load_controller(None, "plexo-arm4").unwrap(),
                &setup::load_protocol("center-out").unwrap(),
                &setup::patient_arm(&patient).unwrap(),
                &setup::patient_rom(model, &patient).unwrap(),
                &setup::patient_limits(model, &patient),
                &JointInfo::from_model(model),
            )
            .unwrap();
            let elbow = model.joints().iter().position(|j| j.name == "elbow_flexion").unwrap();
            assert_eq!(parts.supervisor.torque_max(elbow), 5.0);
            assert_eq!(parts.supervisor.velocity_max(elbow), 1.1);
        }
        std::fs::remove_dir_all(&d).unwrap();
    }

    /// An assessment's simulated arm keeps the passive range it was added with when the clinic's measured range
    /// changes; the session (walls, targets) uses the measured one.
    #[test]
    fn a_virtual_patients_tissue_keeps_its_own_range_when_the_measured_range_changes() {
        let d = std::env::temp_dir().join(format!("plexo-binding-body-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut store = Store::open(&d.join("plexo.db")).unwrap();
        let profile = plexo_sim::default_patient_toml("moderate").unwrap();
        let own = PatientProfile::builtin("moderate").unwrap().spec().range_of("elbow_flexion").unwrap();
        let mut spec = PatientProfile::builtin("moderate").unwrap().spec().clone();
        spec.id = "B-1".into();
        store.add_patient(&spec, Some(profile)).unwrap();
        spec.range_of_motion.insert("elbow_flexion".into(), [0.6, 1.6]);
        spec.height += 0.05;
        store.update_spec(&spec, "test").unwrap();
        let stored = store.patient("B-1").unwrap();
        let session = session_patient(&stored, store.path(), true).unwrap();
        assert_eq!(session.value.spec().range_of("elbow_flexion"), Some([0.6, 1.6]));
        let body = physiology(&stored, store.path()).unwrap().unwrap();
        assert_eq!(body.spec.range_of("elbow_flexion"), Some(own), "the tissue's own range");
        assert_eq!(body.spec.height, spec.height, "the rest of the stored spec applies");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_clinical_patient_cannot_be_simulated_and_the_error_says_how_to_add_a_virtual_one() {
        let d = std::env::temp_dir().join(format!("plexo-binding-clinical-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut store = Store::open(&d.join("plexo.db")).unwrap();
        let mut spec = PatientProfile::builtin("mild").unwrap().spec().clone();
        spec.id = "C-9".into();
        store.add_patient(&spec, None).unwrap();
        let e = session_patient(&store.patient("C-9").unwrap(), store.path(), true).unwrap_err().to_string();
        assert!(e.contains("C-9") && e.contains("--virtual"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
