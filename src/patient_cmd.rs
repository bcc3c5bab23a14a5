//! `plexo patient add|list|show|set-rom|export|delete`: the clinic's patients in the store ([`crate::store`]).

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use plexo_kinematics::PatientSpec;

use crate::AppError;
use crate::setup::{self, Patient};
use crate::store::{self, Store, StoredPatient};
use crate::summary::{csv_field, trials_csv_header};

/// Options of `plexo patient`.
#[derive(Args, Debug, Clone)]
pub struct PatientArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: PatientAction,
    /// The patient store (SQLite; created 0600 by `add`).
    #[arg(long, value_name = "FILE", default_value = store::DEFAULT_DB, global = true)]
    pub db: PathBuf,
}

/// Export formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// Everything: spec, spec history, sessions (with controller configuration hash, end, notes, state), blocks,
    /// trials.
    Json,
    /// One row per trial, with its session's name, start, end, outcome and controller hash in front.
    Csv,
}

/// `plexo patient` actions.
#[derive(Subcommand, Debug, Clone)]
pub enum PatientAction {
    /// Add a patient under a pseudonymous id (never a name), from a clinical patient file or a virtual patient
    /// profile (the id replaces the file's).
    Add {
        /// The pseudonymous id: 1-64 characters of A-Z a-z 0-9 - _ . starting with a letter or digit.
        #[arg(value_parser = crate::options::pseudonymous_id)]
        id: String,
        /// A clinical patient file (.toml: side, height, mass, measured range of motion, personal limits).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "virtual_profile",
            required_unless_present = "virtual_profile"
        )]
        spec: Option<PathBuf>,
        /// A virtual patient for simulation (`plexo sim --patient-id`): an embedded profile (healthy, mild,
        /// moderate, severe, spastic) or a profile .toml.
        #[arg(long = "virtual", value_name = "PROFILE")]
        virtual_profile: Option<String>,
    },
    /// List the stored patients with their session counts.
    List {
        /// Machine-readable JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show a patient's spec, spec history and sessions.
    Show {
        /// The patient's id.
        id: String,
    },
    /// Set the measured range of motion of one joint [rad] (recorded in the spec's history).
    SetRom {
        /// The patient's id.
        id: String,
        /// The joint (robot joint name, e.g. elbow_flexion).
        joint: String,
        /// Lower end [rad].
        #[arg(allow_negative_numbers = true)]
        lower: f64,
        /// Upper end [rad].
        #[arg(allow_negative_numbers = true)]
        upper: f64,
    },
    /// Set the measured range of motion from a range-of-motion assessment recorded as joint angles (CSV: `t` [s]
    /// and one column per joint [rad], as `plexo analyze` reads): each joint's range becomes the smallest and
    /// largest angle recorded (after the 10 Hz zero-phase low-pass of `plexo analyze`); recorded in the history.
    /// (An assessment the robot runs itself: `plexo sim|run --patient-id ID --assess-rom`.)
    AssessRom {
        /// The patient's id.
        id: String,
        /// The assessment recording (.csv).
        file: PathBuf,
    },
    /// Export everything stored about a patient (JSON) or their trials (CSV), for the clinic's own records.
    Export {
        /// The patient's id.
        id: String,
        /// Format.
        #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
        format: ExportFormat,
        /// Write to this file (0600) instead of standard output.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Delete everything stored about a patient (spec, history, sessions, trials, states).
    Delete {
        /// The patient's id.
        id: String,
        /// Confirm: the deletion cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

/// Runs `plexo patient`.
pub fn run(args: &PatientArgs) -> Result<(), AppError> {
    match &args.action {
        PatientAction::Add { id, spec, virtual_profile } => {
            let (spec, profile) = load_new_patient(id, spec.as_ref(), virtual_profile.as_deref())?;
            let mut store = Store::open(&args.db)?;
            store.add_patient(&spec, profile.as_deref())?;
            println!(
                "patient {id} added to {} ({}, {} side, {} joints with a measured range of motion)",
                args.db.display(),
                if profile.is_some() { "virtual" } else { "clinical" },
                match spec.side {
                    plexo_kinematics::Side::Left => "left",
                    plexo_kinematics::Side::Right => "right",
                },
                spec.range_of_motion.len()
            );
            Ok(())
        }
        PatientAction::List { json } => {
            let store = Store::open_existing(&args.db)?;
            let list = store.patients()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list).expect("a listing serializes"));
            } else {
                println!("{:<24} {:<9} {:>8}  last session (UTC)", "id", "kind", "sessions");
                for p in &list {
                    println!(
                        "{:<24} {:<9} {:>8}  {}",
                        p.id,
                        p.kind,
                        p.sessions,
                        p.last_session.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(())
        }
        PatientAction::Show { id } => {
            let store = Store::open_existing(&args.db)?;
            let patient = store.patient(id)?;
            print!("{}", render_show(&store, &patient)?);
            Ok(())
        }
        PatientAction::SetRom { id, joint, lower, upper } => {
            let mut store = Store::open_existing(&args.db)?;
            let mut spec = store.patient(id)?.spec;
            let known: Vec<&String> = spec.range_of_motion.keys().collect();
            if !spec.range_of_motion.contains_key(joint) {
                return Err(AppError::Config {
                    file: format!("{} (patient {id})", args.db.display()),
                    key: format!("range_of_motion.{joint}"),
                    reason: format!("unknown joint; the patient's joints are {known:?}"),
                });
            }
            let before = spec.range_of_motion.insert(joint.clone(), [*lower, *upper]);
            spec.validate(&format!("{} (patient {id})", args.db.display()), "")?;
            let reason = format!("set-rom {joint} [{lower}, {upper}] rad");
            store.update_spec(&spec, &reason)?;
            println!(
                "patient {id}: {joint} range of motion {:?} -> [{lower}, {upper}] rad (recorded in the spec history)",
                before.unwrap_or([f64::NAN; 2])
            );
            Ok(())
        }
        PatientAction::AssessRom { id, file } => {
            let mut store = Store::open_existing(&args.db)?;
            let mut spec = store.patient(id)?.spec;
            let source = file.display().to_string();
            let rec = crate::analyze_cmd::parse(&crate::files::read_input(file, 512 * 1024 * 1024)?, &source)?;
            let measured = crate::analyze_cmd::joint_extents(&rec, true).ok_or_else(|| AppError::Recording {
                file: source.clone(),
                line: 1,
                reason: "a hand path (x, y, z): an assessment needs joint angles, one column per joint [rad]".into(),
            })?;
            for (joint, [lo, hi]) in &measured {
                if !spec.range_of_motion.contains_key(joint) {
                    return Err(AppError::Recording {
                        file: source.clone(),
                        line: 1,
                        reason: format!(
                            "column `{joint}` is not a joint of patient {id} ({:?})",
                            spec.range_of_motion.keys().collect::<Vec<_>>()
                        ),
                    });
                }
                let before = spec.range_of_motion.insert(joint.clone(), [*lo, *hi]).unwrap_or([f64::NAN; 2]);
                println!("{joint:<20} [{:.3}, {:.3}] -> [{lo:.3}, {hi:.3}] rad", before[0], before[1]);
            }
            spec.validate(&source, "")?;
            let joints: Vec<&str> = measured.iter().map(|(j, _)| j.as_str()).collect();
            store.update_spec(&spec, &format!("assessment {source}: {}", joints.join(", ")))?;
            println!("patient {id}: range of motion of {} joints set from {source}", measured.len());
            Ok(())
        }
        PatientAction::Export { id, format, out } => {
            let store = Store::open_existing(&args.db)?;
            store.begin_read()?;
            let text = match format {
                ExportFormat::Json => export_json(&store, id)?,
                ExportFormat::Csv => export_csv(&store, id)?,
            };
            store.end_read()?;
            match out {
                Some(path) => {
                    crate::files::write_atomically(path, text.as_bytes())?;
                    println!("patient {id} exported to {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        PatientAction::Delete { id, yes } => {
            if !yes {
                return Err(AppError::Store {
                    db: args.db.display().to_string(),
                    reason: format!("deleting patient {id:?} removes all their sessions for good: add --yes"),
                });
            }
            let mut store = Store::open_existing(&args.db)?;
            let sessions = store.delete_patient(id)?;
            println!("patient {id} deleted from {} with {sessions} sessions", args.db.display());
            Ok(())
        }
    }
}

/// The spec and (virtual) profile text of a new patient, with `id` as their id.
fn load_new_patient(
    id: &str,
    spec: Option<&PathBuf>,
    virtual_profile: Option<&str>,
) -> Result<(PatientSpec, Option<String>), AppError> {
    if let Some(path) = spec {
        let mut spec = PatientSpec::from_toml_str(
            &crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?,
            &path.display().to_string(),
        )?;
        spec.id = id.to_owned();
        return Ok((spec, None));
    }
    let name = virtual_profile.expect("clap requires --spec or --virtual");
    let loaded = setup::load_patient(name)?;
    let Patient::Virtual(profile) = &loaded.value else {
        return Err(AppError::Config {
            file: loaded.source,
            key: "spec".into(),
            reason: "a clinical patient file: --virtual needs a virtual patient profile (use --spec for this one)"
                .into(),
        });
    };
    let mut spec = profile.spec().clone();
    spec.id = id.to_owned();
    let text = match plexo_sim::DEFAULT_PATIENTS.contains(&name) && !std::path::Path::new(name).exists() {
        true => plexo_sim::default_patient_toml(name)?.to_owned(),
        false => crate::files::read_input(std::path::Path::new(name), crate::files::MAX_CONFIG_BYTES)?,
    };
    // The profile's `name` and `description` are free text a clinic may have filled with a person's name: the
    // store keeps the id in their place, never them.
    let mut table: toml::Table = toml::from_str(&text).map_err(|e| AppError::Config {
        file: loaded.source.clone(),
        key: "(document)".into(),
        reason: e.to_string(),
    })?;
    table.insert("name".into(), toml::Value::String(id.to_owned()));
    if table.contains_key("description") {
        table.insert("description".into(), toml::Value::String("virtual patient".into()));
    }
    let text = toml::to_string(&table).map_err(|e| AppError::Config {
        file: loaded.source.clone(),
        key: "(document)".into(),
        reason: e.to_string(),
    })?;
    Ok((spec, Some(text)))
}

/// `plexo patient show`.
fn render_show(store: &Store, patient: &StoredPatient) -> Result<String, AppError> {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "patient {} ({}), added {}",
        patient.id,
        if patient.virtual_profile_toml.is_some() { "virtual" } else { "clinical" },
        patient.created_at
    );
    let _ = writeln!(out, "\n[spec]\n{}", store::spec_to_toml(&patient.spec));
    let _ = writeln!(out, "spec history:");
    for h in store.spec_history(&patient.id)? {
        let _ = writeln!(out, "  {}  {}", h.changed_at, h.reason);
    }
    let sessions = store.sessions(&patient.id)?;
    let _ = writeln!(out, "\nsessions ({}):", sessions.len());
    for s in &sessions {
        let trials = store.trials(s.id)?;
        let reached = trials.iter().filter(|t| t.row.reached).count();
        let _ = writeln!(
            out,
            "  {}  {}  {} trials ({reached} reached)  controller {}  {}",
            s.started_at,
            s.name,
            trials.len(),
            s.controller_hash,
            s.outcome.as_deref().unwrap_or("no end recorded (the process stopped mid-session)")
        );
    }
    Ok(out)
}

/// Everything stored about a patient as JSON.
pub fn export_json(store: &Store, id: &str) -> Result<String, AppError> {
    let patient = store.patient(id)?;
    let mut sessions = Vec::new();
    for s in store.sessions(id)? {
        sessions.push(serde_json::json!({
            "session": s,
            "blocks": store.blocks(s.id)?,
            "trials": store.trials(s.id)?,
        }));
    }
    let json = serde_json::json!({
        "format": "plexo patient export",
        "schema_version": store.schema_version()?,
        "exported_at": store::now_utc(),
        "patient": patient,
        "spec_history": store.spec_history(id)?,
        "sessions": sessions,
    });
    Ok(serde_json::to_string_pretty(&json).expect("a JSON value serializes") + "\n")
}

/// The patient's trials as CSV: session columns, then the trial table's columns ([`trials_csv_header`]) over
/// the union of the sessions' joints, then `effort_provisional`.
pub fn export_csv(store: &Store, id: &str) -> Result<String, AppError> {
    store.patient(id)?;
    let sessions = store.sessions(id)?;
    let mut joints: Vec<String> = Vec::new();
    for s in &sessions {
        for j in &s.joints {
            if !joints.contains(j) {
                joints.push(j.clone());
            }
        }
    }
    let mut header = vec![
        "patient_id".to_owned(),
        "session".into(),
        "session_started_at".into(),
        "session_ended_at".into(),
        "session_outcome".into(),
        "controller_hash".into(),
    ];
    header.extend(trials_csv_header(&joints));
    header.push("effort_provisional".into());
    let mut out = header.join(",") + "\n";
    for s in &sessions {
        for t in store.trials(s.id)? {
            let mut fields = vec![
                csv_field(id),
                csv_field(&s.name),
                csv_field(&s.started_at),
                csv_field(s.ended_at.as_deref().unwrap_or("")),
                csv_field(s.outcome.as_deref().unwrap_or("")),
                csv_field(&s.controller_hash),
            ];
            let mut row = t.row.csv_fields();
            // The per-joint ROM columns in the union's order.
            let rom_start = row.len() - t.row.rom_rad.len();
            row.truncate(rom_start);
            fields.extend(row);
            for j in &joints {
                let v = s.joints.iter().position(|n| n == j).and_then(|i| t.row.rom_rad.get(i)).copied();
                fields.push(v.filter(|v| v.is_finite()).map_or_else(String::new, |v| v.to_string()));
            }
            fields.push(u8::from(t.effort_provisional).to_string());
            out.push_str(&fields.join(","));
            out.push('\n');
        }
    }
    Ok(out)
}
