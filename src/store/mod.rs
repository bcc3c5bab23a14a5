//! The patient store: one embedded SQLite database (default `plexo-data/plexo.db`, `--db` to choose) that
//! remembers a clinic's patients across sessions — each patient by pseudonymous id with their
//! [`PatientSpec`] and its history (and, for a virtual patient, the simulator's profile), every session bound to
//! a patient (robot, protocol, controller configuration and its hash, software version, start and end, how it
//! ended, operator notes), its blocks, its trials with their metrics and assistance / effort measures
//! ([`TrialRow`]), and the adaptation state after each session (the `<session>.state.toml` text).
//!
//! - **Schema versions**: `PRAGMA user_version` holds the version; [`MIGRATIONS`] lists the SQL that brings a
//!   database from version `i` to `i + 1`, each applied in one transaction on open, so a database written by an
//!   older Plexo opens and migrates (tested from versions 1 and 2).
//! - **Durability**: WAL journal with `synchronous = FULL`: every committed trial survives a `kill -9` or a power
//!   cut; a crash mid-transaction leaves the previous consistent state. Trials are written by a thread of their
//!   own ([`recorder`]), never by the control thread.
//! - **Concurrency**: another process may read (a report, an export) while a session writes: WAL readers never
//!   block the writer and see the last committed state; two writers wait for each other up to
//!   [`BUSY_TIMEOUT`].
//! - **Privacy**: the file (and SQLite's `-wal` and `-shm` files, which take its mode) is owner-only (0600), its
//!   directory created 0700. Ids are pseudonyms ([`validate_patient_id`]); the store holds no names.

pub mod binding;
pub mod recorder;

use std::collections::BTreeMap;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use plexo_kinematics::PatientSpec;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::AppError;
use crate::summary::TrialRow;

/// Where the store is when `--db` is not given.
pub const DEFAULT_DB: &str = "plexo-data/plexo.db";

/// How long a write waits for another process's write transaction to end before it fails.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema's migrations: entry `i` brings a database from version `i` to `i + 1` (version 0 = empty file).
/// Never edit a released entry: add one.
pub const MIGRATIONS: [&str; 3] = [
    // Version 1: patients, sessions, blocks, trials.
    "CREATE TABLE patients (
        id TEXT PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL,
        spec_toml TEXT NOT NULL,
        virtual_profile_toml TEXT
    ) STRICT;
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        robot TEXT NOT NULL,
        protocol TEXT NOT NULL,
        controller TEXT NOT NULL,
        controller_toml TEXT NOT NULL,
        controller_hash TEXT NOT NULL,
        software_version TEXT NOT NULL,
        seed INTEGER,
        joints_json TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        outcome TEXT,
        notes TEXT,
        state_toml TEXT
    ) STRICT;
    CREATE INDEX sessions_by_patient ON sessions(patient_id, id);
    CREATE TABLE blocks (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        block INTEGER NOT NULL,
        name TEXT NOT NULL,
        mode TEXT NOT NULL,
        planned_trials INTEGER NOT NULL,
        PRIMARY KEY (session_id, block)
    ) STRICT;
    CREATE TABLE trials (
        session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        block INTEGER NOT NULL,
        trial INTEGER NOT NULL,
        block_name TEXT NOT NULL,
        mode TEXT NOT NULL,
        target_x_m REAL, target_y_m REAL, target_z_m REAL,
        reached INTEGER NOT NULL,
        duration_s REAL,
        final_error_m REAL,
        rms_error_rad REAL,
        reaction_time_s REAL,
        movement_time_s REAL,
        peak_speed_m_s REAL,
        speed_peaks INTEGER NOT NULL,
        path_length_ratio REAL,
        max_perpendicular_deviation_m REAL,
        initial_direction_error_rad REAL,
        sparc REAL,
        ldlj REAL,
        normalized_jerk REAL,
        rom_json TEXT NOT NULL,
        effort_j REAL,
        assistance_j REAL,
        effort_share REAL,
        true_effort_j REAL,
        true_effort_share REAL,
        assistance_rms_nm REAL,
        emken_stiffness_nm_rad REAL,
        effort_provisional INTEGER NOT NULL,
        PRIMARY KEY (session_id, block, trial)
    ) STRICT;",
    // Version 2: the history of each patient's spec (every add and range-of-motion change); a patient stored
    // before it gets their current spec as the first entry.
    "CREATE TABLE spec_history (
        id INTEGER PRIMARY KEY,
        patient_id TEXT NOT NULL REFERENCES patients(id) ON DELETE CASCADE,
        changed_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        spec_toml TEXT NOT NULL
    ) STRICT;
    CREATE INDEX spec_history_by_patient ON spec_history(patient_id, id);
    INSERT INTO spec_history (patient_id, changed_at, reason, spec_toml)
        SELECT id, created_at, 'stored before schema version 2', spec_toml FROM patients;",
    // Version 3: per trial, the arm-weight support the robot carried and the share of the arm's weight the
    // assist-as-needed law carried on top (what adapts the support); NULL for trials stored before.
    "ALTER TABLE trials ADD COLUMN arm_support REAL;
    ALTER TABLE trials ADD COLUMN law_weight_share REAL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Checks a pseudonymous patient id: 1–64 characters of `A–Z a–z 0–9 - _ .`, starting with a letter or digit
/// (the rule of [`PatientSpec::id`]). A name with spaces, a path or an e-mail address is refused; whether an id
/// *is* a pseudonym cannot be checked, only that it cannot be free text.
pub fn validate_patient_id(id: &str) -> Result<(), String> {
    let chars_ok = id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    let first_ok = id.chars().next().is_some_and(|c| c.is_ascii_alphanumeric());
    if (1..=plexo_kinematics::MAX_ID_LEN).contains(&id.len()) && chars_ok && first_ok {
        Ok(())
    } else {
        Err(format!(
            "{id:?} is not a pseudonymous id: 1-{} characters of A-Z a-z 0-9 - _ . starting with a letter or digit \
             (never a name)",
            plexo_kinematics::MAX_ID_LEN
        ))
    }
}

/// The current time in UTC, RFC 3339 (`2026-12-03T14:02:11.123Z`).
pub fn now_utc() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Millisecond)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

/// A patient as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredPatient {
    /// The pseudonymous id.
    pub id: String,
    /// When the patient was added (UTC, RFC 3339).
    pub created_at: String,
    /// The current spec (body size, side, measured range of motion, personal limits).
    pub spec: PatientSpec,
    /// For a virtual patient (simulation), the profile's TOML (its `[spec]` is replaced by [`Self::spec`] when
    /// a session loads it).
    pub virtual_profile_toml: Option<String>,
}

/// One entry of a patient's spec history.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecChange {
    /// When (UTC, RFC 3339).
    pub changed_at: String,
    /// Why: `added`, `set-rom …`, `assessment …`.
    pub reason: String,
    /// The spec after the change (TOML).
    pub spec_toml: String,
}

/// A line of `plexo patient list`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatientListing {
    /// The pseudonymous id.
    pub id: String,
    /// Real (`clinical`) or `virtual`.
    pub kind: &'static str,
    /// Sessions stored.
    pub sessions: i64,
    /// Start of the last session (UTC), if any.
    pub last_session: Option<String>,
}

/// What is known of a session when it starts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NewSession {
    /// The patient's id (must be stored).
    pub patient_id: String,
    /// The session's name (`<protocol>_<patient>_<UTC stamp>`).
    pub name: String,
    /// `sim` or `run`.
    pub kind: String,
    /// The robot (file or embedded name).
    pub robot: String,
    /// The protocol (file or embedded name).
    pub protocol: String,
    /// The controller configuration's source.
    pub controller: String,
    /// The effective controller configuration (TOML), as the session ran it.
    pub controller_toml: String,
    /// The seed of the virtual patient (simulation).
    pub seed: Option<u64>,
    /// The robot's joint names in order (the per-joint values' order).
    pub joints: Vec<String>,
    /// The operator's notes.
    pub notes: Option<String>,
    /// The protocol's blocks: name, mode label, planned trials.
    pub blocks: Vec<(String, String, usize)>,
}

/// A session as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredSession {
    /// Row id (the order sessions were stored in).
    pub id: i64,
    /// Session name.
    pub name: String,
    /// `sim` or `run`.
    pub kind: String,
    /// Robot.
    pub robot: String,
    /// Protocol.
    pub protocol: String,
    /// Controller configuration source.
    pub controller: String,
    /// The first 16 hex digits of the SHA-256 of the effective controller configuration.
    pub controller_hash: String,
    /// Plexo's version.
    pub software_version: String,
    /// Virtual patient's seed.
    pub seed: Option<i64>,
    /// Joint names in order.
    pub joints: Vec<String>,
    /// Start (UTC, RFC 3339).
    pub started_at: String,
    /// End (UTC), `None` if the process died before the end was recorded.
    pub ended_at: Option<String>,
    /// How it ended (`completed`, `stopped by SIGINT`, a safety stop…); `None` as for `ended_at`.
    pub outcome: Option<String>,
    /// Operator notes.
    pub notes: Option<String>,
    /// The adaptation state after the session (`<session>.state.toml` text).
    pub state_toml: Option<String>,
}

/// A block as stored.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredBlock {
    /// Index in the protocol.
    pub block: i64,
    /// Name.
    pub name: String,
    /// Mode label.
    pub mode: String,
    /// Trials planned.
    pub planned_trials: i64,
}

/// A trial as stored: its row and whether its effort is still the provisional estimate (a trial of the relaxed
/// first passive block before the block's end fitted the passive-tissue model).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredTrial {
    /// The trial's measures.
    #[serde(flatten)]
    pub row: TrialRow,
    /// The effort estimate is provisional (see above).
    pub effort_provisional: bool,
}

/// The open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

/// Maps a SQLite error to the app's error, naming the database and what was being done.
fn sql(path: &Path, doing: &str) -> impl FnOnce(rusqlite::Error) -> AppError {
    let db = path.display().to_string();
    let doing = doing.to_owned();
    move |e| AppError::Store { db, reason: format!("{doing}: {e}") }
}

fn opt_f64(v: Option<f64>) -> Option<f64> {
    v.filter(|x| x.is_finite())
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

impl Store {
    /// Opens the store at `path`, creating it (0600, its directory 0700) if it does not exist, and migrates it to
    /// [`SCHEMA_VERSION`]. Not real-time safe.
    pub fn open(path: &Path) -> Result<Self, AppError> {
        Self::open_at(path, SCHEMA_VERSION)
    }

    /// Opens an existing store; a missing file is an error that says how to create one (reading commands must not
    /// leave an empty database behind a typo in `--db`).
    pub fn open_existing(path: &Path) -> Result<Self, AppError> {
        if !path.exists() {
            return Err(AppError::Store {
                db: path.display().to_string(),
                reason: "no such database (create it by adding a patient: plexo patient add ID --db FILE …)".into(),
            });
        }
        Self::open(path)
    }

    /// Opens (creating) the store and migrates it to `version` only: the current code uses [`SCHEMA_VERSION`];
    /// tests build databases of an older version with it.
    pub fn open_at(path: &Path, version: i64) -> Result<Self, AppError> {
        crate::files::create_parent(path)?;
        let io = |e| AppError::Io { path: path.display().to_string(), source: e };
        // Created owner-only before SQLite opens it; SQLite gives its -wal and -shm files the same mode.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        let mode = file.metadata().map_err(io)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(io)?;
            eprintln!("warning: {} was readable by others (mode {mode:o}); set to 0600", path.display());
        }
        drop(file);
        let conn = Connection::open(path).map_err(sql(path, "cannot open"))?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql(path, "busy timeout"))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql(path, "cannot switch to WAL"))?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql(path, "synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql(path, "foreign keys"))?;
        // Deleted rows are overwritten with zeros, not left in free pages (`patient delete`).
        conn.pragma_update(None, "secure_delete", "ON").map_err(sql(path, "secure delete"))?;
        let mut store = Self { conn, path: path.to_path_buf() };
        store.migrate(version)?;
        Ok(store)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version of the open database.
    pub fn schema_version(&self) -> Result<i64, AppError> {
        self.conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql(&self.path, "schema version"))
    }

    /// Applies the migrations from the database's version up to `target`, each in one transaction. A database
    /// newer than this build is refused (an older Plexo must not write into a schema it does not know).
    fn migrate(&mut self, target: i64) -> Result<(), AppError> {
        let current = self.schema_version()?;
        if current > SCHEMA_VERSION {
            return Err(AppError::Store {
                db: self.path.display().to_string(),
                reason: format!(
                    "schema version {current} is newer than this Plexo's ({SCHEMA_VERSION}): use a newer Plexo"
                ),
            });
        }
        for version in current..target.min(SCHEMA_VERSION) {
            let path = self.path.clone();
            let tx = self.conn.transaction().map_err(sql(&path, "migration"))?;
            tx.execute_batch(MIGRATIONS[version as usize])
                .map_err(sql(&path, &format!("migration to schema version {}", version + 1)))?;
            tx.pragma_update(None, "user_version", version + 1).map_err(sql(&path, "migration"))?;
            tx.commit().map_err(sql(&path, "migration commit"))?;
        }
        Ok(())
    }

    /// Starts a read transaction: every read until [`Self::end_read`] (or the store is dropped) sees one
    /// consistent snapshot, whatever a running session commits meanwhile (an export or a report is never half
    /// one session's state and half the next). A WAL reader never blocks the writer.
    pub fn begin_read(&self) -> Result<(), AppError> {
        self.conn.execute_batch("BEGIN").map_err(sql(&self.path, "begin read"))?;
        // The snapshot is taken at the first read.
        self.conn
            .query_row("SELECT count(*) FROM patients", [], |r| r.get::<_, i64>(0))
            .map_err(sql(&self.path, "begin read"))?;
        Ok(())
    }

    /// Ends the read transaction of [`Self::begin_read`].
    pub fn end_read(&self) -> Result<(), AppError> {
        self.conn.execute_batch("COMMIT").map_err(sql(&self.path, "end read"))
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`: `Ok` when the database is consistent.
    pub fn check_integrity(&self) -> Result<(), AppError> {
        let result: String = self
            .conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(sql(&self.path, "integrity check"))?;
        let orphans: i64 = self
            .conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
            .map_err(sql(&self.path, "foreign key check"))?;
        if result == "ok" && orphans == 0 {
            Ok(())
        } else {
            Err(AppError::Store {
                db: self.path.display().to_string(),
                reason: format!("inconsistent: integrity check {result:?}, {orphans} rows with a dangling reference"),
            })
        }
    }

    fn not_found(&self, id: &str) -> AppError {
        AppError::Store {
            db: self.path.display().to_string(),
            reason: format!("no patient {id:?} (plexo patient list shows the stored ids)"),
        }
    }

    /// Adds a patient: `spec.id` must be a valid, not yet stored id. `virtual_profile_toml`: a virtual patient's
    /// profile (simulation). Records the spec as the first history entry.
    pub fn add_patient(&mut self, spec: &PatientSpec, virtual_profile_toml: Option<&str>) -> Result<(), AppError> {
        validate_patient_id(&spec.id)
            .map_err(|reason| AppError::Store { db: self.path.display().to_string(), reason })?;
        let spec_toml = spec_to_toml(spec);
        let now = now_utc();
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path, "add patient"))?;
        let exists: bool = tx
            .query_row("SELECT 1 FROM patients WHERE id = ?1", [&spec.id], |_| Ok(true))
            .optional()
            .map_err(sql(&path, "add patient"))?
            .unwrap_or(false);
        if exists {
            return Err(AppError::Store {
                db: path.display().to_string(),
                reason: format!("patient {:?} already exists", spec.id),
            });
        }
        tx.execute(
            "INSERT INTO patients (id, created_at, spec_toml, virtual_profile_toml) VALUES (?1, ?2, ?3, ?4)",
            params![spec.id, now, spec_toml, virtual_profile_toml],
        )
        .map_err(sql(&path, "add patient"))?;
        tx.execute(
            "INSERT INTO spec_history (patient_id, changed_at, reason, spec_toml) VALUES (?1, ?2, 'added', ?3)",
            params![spec.id, now, spec_toml],
        )
        .map_err(sql(&path, "add patient"))?;
        tx.commit().map_err(sql(&path, "add patient"))
    }

    /// The patient `id`; an unknown id is an error naming it.
    pub fn patient(&self, id: &str) -> Result<StoredPatient, AppError> {
        let row = self
            .conn
            .query_row("SELECT created_at, spec_toml, virtual_profile_toml FROM patients WHERE id = ?1", [id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .optional()
            .map_err(sql(&self.path, "read patient"))?;
        let (created_at, spec_toml, virtual_profile_toml) = row.ok_or_else(|| self.not_found(id))?;
        let source = format!("{} (patient {id})", self.path.display());
        let spec = PatientSpec::from_toml_str(&spec_toml, &source)?;
        Ok(StoredPatient { id: id.to_owned(), created_at, spec, virtual_profile_toml })
    }

    /// Every stored patient, by id.
    pub fn patients(&self) -> Result<Vec<PatientListing>, AppError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT p.id, p.virtual_profile_toml IS NOT NULL, count(s.id), max(s.started_at)
                 FROM patients p LEFT JOIN sessions s ON s.patient_id = p.id GROUP BY p.id ORDER BY p.id",
            )
            .map_err(sql(&self.path, "list patients"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(PatientListing {
                    id: r.get(0)?,
                    kind: if r.get::<_, bool>(1)? { "virtual" } else { "clinical" },
                    sessions: r.get(2)?,
                    last_session: r.get(3)?,
                })
            })
            .map_err(sql(&self.path, "list patients"))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path, "list patients"))
    }

    /// Replaces the patient's spec (validated by the caller), recording `reason` in the history.
    pub fn update_spec(&mut self, spec: &PatientSpec, reason: &str) -> Result<(), AppError> {
        let spec_toml = spec_to_toml(spec);
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(sql(&path, "update spec"))?;
        let n = tx
            .execute("UPDATE patients SET spec_toml = ?2 WHERE id = ?1", params![spec.id, spec_toml])
            .map_err(sql(&path, "update spec"))?;
        if n == 0 {
            return Err(AppError::Store {
                db: path.display().to_string(),
                reason: format!("no patient {:?}", spec.id),
            });
        }
        tx.execute(
            "INSERT INTO spec_history (patient_id, changed_at, reason, spec_toml) VALUES (?1, ?2, ?3, ?4)",
            params![spec.id, now_utc(), reason, spec_toml],
        )
        .map_err(sql(&path, "update spec"))?;
        tx.commit().map_err(sql(&path, "update spec"))
    }

    /// The patient's spec history, oldest first.
    pub fn spec_history(&self, id: &str) -> Result<Vec<SpecChange>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT changed_at, reason, spec_toml FROM spec_history WHERE patient_id = ?1 ORDER BY id")
            .map_err(sql(&self.path, "spec history"))?;
        let rows = stmt
            .query_map([id], |r| Ok(SpecChange { changed_at: r.get(0)?, reason: r.get(1)?, spec_toml: r.get(2)? }))
            .map_err(sql(&self.path, "spec history"))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path, "spec history"))
    }

    /// Deletes everything stored about `id` (spec, history, sessions, blocks, trials, states): the rows are
    /// overwritten with zeros (`secure_delete`), then the write-ahead log is checkpointed and the file vacuumed so
    /// that no old page of theirs lingers. Returns the sessions removed. When another process holds the store
    /// (a session running), the deletion is done and committed but the checkpoint may not finish: a warning says
    /// so.
    pub fn delete_patient(&mut self, id: &str) -> Result<i64, AppError> {
        let path = self.path.clone();
        let sessions: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sessions WHERE patient_id = ?1", [id], |r| r.get(0))
            .map_err(sql(&path, "delete patient"))?;
        let n = self.conn.execute("DELETE FROM patients WHERE id = ?1", [id]).map_err(sql(&path, "delete patient"))?;
        if n == 0 {
            return Err(self.not_found(id));
        }
        if let Err(e) = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); VACUUM;") {
            eprintln!(
                "warning: {}: patient {id:?} deleted, but the file could not be compacted now ({e}; another process \
                 is using it): its rows are zeroed; older copies in the write-ahead log are overwritten as the log is reused",
                path.display()
            );
        }
        Ok(sessions)
    }

    /// Records the start of a session (and its blocks); returns its row id.
    pub fn begin_session(&mut self, s: &NewSession) -> Result<i64, AppError> {
        use sha2::Digest as _;
        let hash = format!("{:x}", sha2::Sha256::digest(s.controller_toml.as_bytes()));
        let path = self.path.clone();
        let joints = serde_json::to_string(&s.joints).expect("strings serialize");
        let tx = self.conn.transaction().map_err(sql(&path, "begin session"))?;
        tx.execute(
            "INSERT INTO sessions (patient_id, name, kind, robot, protocol, controller, controller_toml,
                controller_hash, software_version, seed, joints_json, started_at, notes)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                s.patient_id,
                s.name,
                s.kind,
                s.robot,
                s.protocol,
                s.controller,
                s.controller_toml,
                &hash[..16],
                env!("CARGO_PKG_VERSION"),
                s.seed.map(|v| v as i64),
                joints,
                now_utc(),
                s.notes
            ],
        )
        .map_err(sql(&path, "begin session"))?;
        let id = tx.last_insert_rowid();
        for (i, (name, mode, planned)) in s.blocks.iter().enumerate() {
            tx.execute(
                "INSERT INTO blocks (session_id, block, name, mode, planned_trials) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, i as i64, name, mode, *planned as i64],
            )
            .map_err(sql(&path, "begin session"))?;
        }
        tx.commit().map_err(sql(&path, "begin session"))?;
        Ok(id)
    }

    /// Stores (or replaces, for a re-estimated trial) one trial of session `session`, committed at once.
    pub fn put_trial(&mut self, session: i64, row: &TrialRow, effort_provisional: bool) -> Result<(), AppError> {
        let rom = serde_json::to_string(&row.rom_rad.iter().map(|v| finite(*v)).collect::<Vec<_>>())
            .expect("numbers serialize");
        self.conn
            .execute(
                "INSERT OR REPLACE INTO trials VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                    ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33)",
                params![
                    session,
                    row.block as i64,
                    row.trial as i64,
                    row.block_name,
                    row.mode,
                    finite(row.target_m[0]),
                    finite(row.target_m[1]),
                    finite(row.target_m[2]),
                    row.reached,
                    finite(row.duration_s),
                    finite(row.final_error_m),
                    finite(row.rms_error_rad),
                    opt_f64(row.reaction_time_s),
                    opt_f64(row.movement_time_s),
                    finite(row.peak_speed_m_s),
                    i64::from(row.speed_peaks),
                    opt_f64(row.path_length_ratio),
                    opt_f64(row.max_perpendicular_deviation_m),
                    opt_f64(row.initial_direction_error_rad),
                    opt_f64(row.sparc),
                    opt_f64(row.ldlj),
                    opt_f64(row.normalized_jerk),
                    rom,
                    finite(row.effort_j),
                    finite(row.assistance_j),
                    opt_f64(row.effort_share),
                    opt_f64(row.true_effort_j),
                    opt_f64(row.true_effort_share),
                    finite(row.assistance_rms_nm),
                    finite(row.emken_stiffness_nm_rad),
                    effort_provisional,
                    finite(row.arm_support),
                    finite(row.law_weight_share)
                ],
            )
            .map_err(sql(&self.path, &format!("store trial {} of block {}", row.trial, row.block)))?;
        Ok(())
    }

    /// Records the end of session `session`: when, how it ended, and the state carried to the next session.
    pub fn end_session(&mut self, session: i64, outcome: &str, state_toml: Option<&str>) -> Result<(), AppError> {
        self.conn
            .execute(
                "UPDATE sessions SET ended_at = ?2, outcome = ?3, state_toml = ?4 WHERE id = ?1",
                params![session, now_utc(), outcome, state_toml],
            )
            .map_err(sql(&self.path, "end session"))?;
        Ok(())
    }

    /// The patient's sessions, oldest first.
    pub fn sessions(&self, patient: &str) -> Result<Vec<StoredSession>, AppError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, name, kind, robot, protocol, controller, controller_hash, software_version, seed,
                    joints_json, started_at, ended_at, outcome, notes, state_toml
                 FROM sessions WHERE patient_id = ?1 ORDER BY id",
            )
            .map_err(sql(&self.path, "read sessions"))?;
        let rows = stmt
            .query_map([patient], |r| {
                let joints: String = r.get(9)?;
                Ok(StoredSession {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    kind: r.get(2)?,
                    robot: r.get(3)?,
                    protocol: r.get(4)?,
                    controller: r.get(5)?,
                    controller_hash: r.get(6)?,
                    software_version: r.get(7)?,
                    seed: r.get(8)?,
                    joints: serde_json::from_str(&joints).unwrap_or_default(),
                    started_at: r.get(10)?,
                    ended_at: r.get(11)?,
                    outcome: r.get(12)?,
                    notes: r.get(13)?,
                    state_toml: r.get(14)?,
                })
            })
            .map_err(sql(&self.path, "read sessions"))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path, "read sessions"))
    }

    /// The blocks of session `session`.
    pub fn blocks(&self, session: i64) -> Result<Vec<StoredBlock>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT block, name, mode, planned_trials FROM blocks WHERE session_id = ?1 ORDER BY block")
            .map_err(sql(&self.path, "read blocks"))?;
        let rows = stmt
            .query_map([session], |r| {
                Ok(StoredBlock { block: r.get(0)?, name: r.get(1)?, mode: r.get(2)?, planned_trials: r.get(3)? })
            })
            .map_err(sql(&self.path, "read blocks"))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path, "read blocks"))
    }

    /// The trials of session `session`, in protocol order.
    pub fn trials(&self, session: i64) -> Result<Vec<StoredTrial>, AppError> {
        let mut stmt = self
            .conn
            .prepare("SELECT * FROM trials WHERE session_id = ?1 ORDER BY block, trial")
            .map_err(sql(&self.path, "read trials"))?;
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let rows = stmt
            .query_map([session], |r| {
                let rom: String = r.get(22)?;
                let rom: Vec<Option<f64>> = serde_json::from_str(&rom).unwrap_or_default();
                Ok(StoredTrial {
                    row: TrialRow {
                        block: r.get::<_, i64>(1)? as usize,
                        trial: r.get::<_, i64>(2)? as usize,
                        block_name: r.get(3)?,
                        mode: r.get(4)?,
                        target_m: [nan(r.get(5)?), nan(r.get(6)?), nan(r.get(7)?)],
                        reached: r.get(8)?,
                        duration_s: nan(r.get(9)?),
                        final_error_m: nan(r.get(10)?),
                        rms_error_rad: nan(r.get(11)?),
                        reaction_time_s: r.get(12)?,
                        movement_time_s: r.get(13)?,
                        peak_speed_m_s: nan(r.get(14)?),
                        speed_peaks: r.get::<_, i64>(15)? as u32,
                        path_length_ratio: r.get(16)?,
                        max_perpendicular_deviation_m: r.get(17)?,
                        initial_direction_error_rad: r.get(18)?,
                        sparc: r.get(19)?,
                        ldlj: r.get(20)?,
                        normalized_jerk: r.get(21)?,
                        rom_rad: rom.into_iter().map(nan).collect(),
                        effort_j: nan(r.get(23)?),
                        assistance_j: nan(r.get(24)?),
                        effort_share: r.get(25)?,
                        true_effort_j: r.get(26)?,
                        true_effort_share: r.get(27)?,
                        assistance_rms_nm: nan(r.get(28)?),
                        emken_stiffness_nm_rad: nan(r.get(29)?),
                        arm_support: nan(r.get(31)?),
                        law_weight_share: nan(r.get(32)?),
                    },
                    effort_provisional: r.get(30)?,
                })
            })
            .map_err(sql(&self.path, "read trials"))?;
        rows.collect::<Result<_, _>>().map_err(sql(&self.path, "read trials"))
    }

    /// The state the patient's last session that recorded one left (`(session name, state TOML)`), if any.
    pub fn last_state(&self, patient: &str) -> Result<Option<(String, String)>, AppError> {
        self.conn
            .query_row(
                "SELECT name, state_toml FROM sessions WHERE patient_id = ?1 AND state_toml IS NOT NULL
                 ORDER BY id DESC LIMIT 1",
                [patient],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql(&self.path, "read the last state"))
    }

    /// Counts per table (patients, sessions, trials), for messages and tests.
    pub fn counts(&self) -> Result<BTreeMap<&'static str, i64>, AppError> {
        let mut out = BTreeMap::new();
        for table in ["patients", "sessions", "blocks", "trials", "spec_history"] {
            let n: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
                .map_err(sql(&self.path, "count"))?;
            out.insert(table, n);
        }
        Ok(out)
    }
}

/// A spec as TOML (the form stored and exported).
pub fn spec_to_toml(spec: &PatientSpec) -> String {
    toml::to_string(spec).expect("a PatientSpec serializes to TOML")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("plexo-store-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn spec(id: &str) -> PatientSpec {
        let mut spec = plexo_sim::PatientProfile::builtin("moderate").unwrap().spec().clone();
        spec.id = id.into();
        spec
    }

    #[test]
    fn ids_that_are_not_pseudonyms_are_refused() {
        for good in ["P-0042", "s7.v2", "A", &"x".repeat(64)] {
            assert!(validate_patient_id(good).is_ok(), "{good}");
        }
        for bad in ["", "Jane Doe", "../etc", "a/b", "jane@clinic.org", ".hidden", "-rf", &"x".repeat(65), "Zoë"] {
            assert!(validate_patient_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_version_1_database_opens_and_migrates_to_the_current_schema() {
        let d = dir("migrate");
        let path = d.join("old.db");
        {
            let store = Store::open_at(&path, 1).unwrap();
            assert_eq!(store.schema_version().unwrap(), 1);
            // What a version-1 Plexo wrote: a patient, no history table.
            store
                .conn
                .execute(
                    "INSERT INTO patients (id, created_at, spec_toml) VALUES ('P1', '2026-01-05T09:00:00Z', ?1)",
                    [spec_to_toml(&spec("P1"))],
                )
                .unwrap();
            assert!(store.conn.prepare("SELECT * FROM spec_history").is_err(), "no history table at version 1");
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        assert_eq!(store.patient("P1").unwrap().spec, spec("P1"));
        let history = store.spec_history("P1").unwrap();
        assert_eq!(history.len(), 1, "the stored spec becomes the first history entry");
        assert_eq!(history[0].changed_at, "2026-01-05T09:00:00Z");
        assert_eq!(PatientSpec::from_toml_str(&history[0].spec_toml, "h").unwrap(), spec("P1"));
        store.check_integrity().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_version_2_database_gains_the_trials_weight_support_columns() {
        let d = dir("migrate2");
        let path = d.join("v2.db");
        {
            let store = Store::open_at(&path, 2).unwrap();
            assert!(store.conn.prepare("SELECT arm_support FROM trials").is_err(), "no support column at version 2");
        }
        let store = Store::open(&path).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        store.conn.prepare("SELECT arm_support, law_weight_share FROM trials").unwrap();
        store.check_integrity().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_database_newer_than_this_build_is_refused() {
        let d = dir("newer");
        let path = d.join("new.db");
        drop(Store::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
        let e = Store::open(&path).unwrap_err().to_string();
        assert!(e.contains("new.db") && e.contains("newer"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn the_database_and_its_directory_are_owner_only() {
        let d = dir("mode");
        let path = d.join("data/plexo.db");
        let mut store = Store::open(&path).unwrap();
        store.add_patient(&spec("P2"), None).unwrap();
        for f in [path.clone(), path.with_extension("db-wal")] {
            assert_eq!(std::fs::metadata(&f).unwrap().permissions().mode() & 0o777, 0o600, "{}", f.display());
        }
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        std::fs::remove_dir_all(&d).unwrap();
    }

    fn row(block: usize, trial: usize) -> TrialRow {
        TrialRow {
            block,
            block_name: "b".into(),
            trial,
            mode: "Passive".into(),
            target_m: [0.1, 0.2, 0.3],
            reached: true,
            duration_s: 2.0,
            final_error_m: 0.01,
            rms_error_rad: 0.02,
            reaction_time_s: Some(0.2),
            movement_time_s: None,
            peak_speed_m_s: 0.3,
            speed_peaks: 2,
            path_length_ratio: Some(1.1),
            max_perpendicular_deviation_m: Some(0.01),
            initial_direction_error_rad: Some(0.1),
            sparc: Some(-1.7),
            ldlj: Some(-6.0),
            normalized_jerk: Some(20.0),
            rom_rad: vec![0.1, f64::NAN],
            effort_j: 0.5,
            assistance_j: 0.7,
            effort_share: Some(0.4),
            true_effort_j: None,
            true_effort_share: None,
            assistance_rms_nm: 1.2,
            emken_stiffness_nm_rad: 20.0,
            arm_support: 0.35,
            law_weight_share: f64::NAN,
        }
    }

    #[test]
    fn sessions_trials_and_states_round_trip_and_delete_removes_everything() {
        let d = dir("roundtrip");
        let path = d.join("plexo.db");
        let mut store = Store::open(&path).unwrap();
        store.add_patient(&spec("P3"), Some("name = \"x\"")).unwrap();
        store.add_patient(&spec("P4"), None).unwrap();
        assert!(store.add_patient(&spec("P3"), None).unwrap_err().to_string().contains("already exists"));
        let new = NewSession {
            patient_id: "P3".into(),
            name: "s1".into(),
            kind: "sim".into(),
            joints: vec!["a".into(), "b".into()],
            controller_toml: "k = 1".into(),
            blocks: vec![("b".into(), "Passive".into(), 2)],
            ..NewSession::default()
        };
        let s = store.begin_session(&new).unwrap();
        store.put_trial(s, &row(0, 0), true).unwrap();
        let mut re_estimated = row(0, 0);
        re_estimated.effort_j = 0.1;
        store.put_trial(s, &re_estimated, false).unwrap();
        store.put_trial(s, &row(0, 1), false).unwrap();
        store.end_session(s, "completed", Some("sessions = 1")).unwrap();
        let trials = store.trials(s).unwrap();
        assert_eq!(trials.len(), 2, "a re-estimated trial replaces its provisional row");
        assert_eq!(trials[0].row.effort_j, 0.1);
        assert!(!trials[0].effort_provisional);
        assert_eq!(trials[1].row.sparc, row(0, 1).sparc);
        assert!(trials[1].row.rom_rad[1].is_nan() && trials[1].row.movement_time_s.is_none());
        assert_eq!(trials[1].row.arm_support, 0.35, "the weight support is stored (schema version 3)");
        assert!(trials[1].row.law_weight_share.is_nan());
        let sessions = store.sessions("P3").unwrap();
        assert_eq!((sessions[0].outcome.as_deref(), sessions[0].joints.len()), (Some("completed"), 2));
        assert_eq!(sessions[0].controller_hash.len(), 16);
        assert_eq!(store.last_state("P3").unwrap(), Some(("s1".into(), "sessions = 1".into())));
        assert_eq!(store.blocks(s).unwrap()[0].planned_trials, 2);
        assert_eq!(store.delete_patient("P3").unwrap(), 1);
        let counts = store.counts().unwrap();
        assert_eq!(
            (counts["patients"], counts["sessions"], counts["blocks"], counts["trials"], counts["spec_history"]),
            (1, 0, 0, 0, 1),
            "only P4 and its history remain"
        );
        assert!(store.patient("P3").unwrap_err().to_string().contains("no patient"));
        store.check_integrity().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_reader_in_another_connection_neither_blocks_nor_sees_half_a_trial() {
        let d = dir("concurrent");
        let path = d.join("plexo.db");
        let mut writer = Store::open(&path).unwrap();
        writer.add_patient(&spec("P5"), None).unwrap();
        let s = writer
            .begin_session(&NewSession { patient_id: "P5".into(), name: "s".into(), ..NewSession::default() })
            .unwrap();
        let reader = Store::open(&path).unwrap();
        // The reader holds a read transaction open (as a long report would) while the writer commits trials.
        reader.conn.execute_batch("BEGIN").unwrap();
        assert_eq!(reader.trials(s).unwrap().len(), 0);
        let start = std::time::Instant::now();
        for t in 0..20 {
            writer.put_trial(s, &row(0, t), false).unwrap();
        }
        assert!(start.elapsed() < BUSY_TIMEOUT, "the writer never waited for the reader");
        assert_eq!(reader.trials(s).unwrap().len(), 0, "a snapshot: the reader sees the state it began with");
        reader.conn.execute_batch("COMMIT").unwrap();
        assert_eq!(reader.trials(s).unwrap().len(), 20);
        reader.check_integrity().unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }
}
