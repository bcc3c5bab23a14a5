//! Patient profiles embedded at compile time, so the application works from any directory.

use crate::SimError;

/// Names of the embedded patient profiles (`assets/patients/<name>.toml`).
pub const DEFAULT_PATIENTS: [&str; 5] = ["healthy", "mild", "moderate", "severe", "spastic"];

const AVAILABLE: &str = "healthy, mild, moderate, severe, spastic";

/// The TOML text of an embedded patient profile. Parse it with [`crate::PatientProfile::from_toml_str`] (or
/// use [`crate::PatientProfile::builtin`]).
pub fn default_patient_toml(name: &str) -> Result<&'static str, SimError> {
    match name {
        "healthy" => Ok(include_str!("../../assets/patients/healthy.toml")),
        "mild" => Ok(include_str!("../../assets/patients/mild.toml")),
        "moderate" => Ok(include_str!("../../assets/patients/moderate.toml")),
        "severe" => Ok(include_str!("../../assets/patients/severe.toml")),
        "spastic" => Ok(include_str!("../../assets/patients/spastic.toml")),
        _ => Err(SimError::UnknownProfile { name: name.to_owned(), available: AVAILABLE }),
    }
}
