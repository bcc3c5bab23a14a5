//! Running courses: each course is `sessions` headless sessions (no recording, no Rerun, unpaced) chained as
//! `--resume` chains them — the state of session k goes through [`SessionState`]'s TOML form into session k + 1
//! ([`SessionState::resume`] for the AAN laws, [`PatientHooks::restore_patient`] for the virtual patient). Courses
//! run in parallel on all cores (rayon); results are independent of thread count and order, since each course
//! owns its plant, therapy and seeds.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use plexo_controller::{ControllerConfig, Mode, Protocol};
use plexo_hal::{PatientHooks, Robot};
use plexo_kinematics::Model;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PatientProfile, PlantConfig, RapierOptions, RapierPlant};
use rayon::prelude::*;

use super::file::{Course, Study, StudyPlant, session_seed};
use super::raw::{BlockResult, CourseResult, SessionResult};
use crate::AppError;
use crate::runtime::{LoopConfig, LoopSignals, Runtime, run_session};
use crate::session_state::{SessionState, session_state};
use crate::setup::{self, Loaded};
use crate::telemetry::{Sinks, Telemetry, TelemetryConfig};

/// A controller of the study, ready to build sessions: its configuration and the protocol with its law.
struct ControllerSetup {
    name: String,
    config: Loaded<ControllerConfig>,
    protocol: Loaded<Protocol>,
}

/// A patient of the study.
struct PatientSetup {
    name: String,
    profile: Loaded<PatientProfile>,
    rom: Vec<plexo_controller::RomLimit>,
    personal: Vec<plexo_kinematics::JointSafetyLimits>,
    rest: Vec<f64>,
    arm: ArmAnthropometrics,
}

/// Everything loaded once for all courses.
pub struct Prepared {
    study: Study,
    model: Model,
    urdf: String,
    controllers: Vec<ControllerSetup>,
    patients: Vec<PatientSetup>,
}

/// Loads and validates every file the study names, before any course runs. Not real-time safe.
pub fn prepare(study: Study, study_path: &Path) -> Result<Prepared, AppError> {
    prepare_with(study, study_path, None)
}

/// As [`prepare`]; with `configs`, controller `i` of the study runs `configs[i]` (already parsed, e.g. a
/// candidate of `plexo tune`) instead of loading its `config` file. Every configuration still passes
/// `build_session` for every patient here, as in `plexo check`. Not real-time safe.
pub fn prepare_with(
    study: Study,
    study_path: &Path,
    configs: Option<Vec<Loaded<ControllerConfig>>>,
) -> Result<Prepared, AppError> {
    let robot = setup::load_session_robot(&study.robot)?;
    let (model, urdf) = robot.value;
    let protocol = setup::load_protocol(&study.protocol)?;
    if let Some(c) = &configs
        && c.len() != study.controllers.len()
    {
        return Err(AppError::Config {
            file: study_path.display().to_string(),
            key: "controllers".into(),
            reason: format!("{} configurations for {} controllers", c.len(), study.controllers.len()),
        });
    }
    let mut given = configs.map(|c| c.into_iter());
    let mut controllers = Vec::new();
    for (i, entry) in study.controllers.iter().enumerate() {
        let given_config = given.as_mut().and_then(Iterator::next);
        let from_file = given_config.is_none();
        let mut config = match given_config {
            Some(c) => c,
            None => setup::load_controller(entry.config.as_deref(), &study.robot)?,
        };
        if from_file && entry.config.is_none() {
            // As `plexo sim` without --controller: the simulated actuators' friction is the identified friction.
            let motor = plexo_sim::MotorParams::default();
            let n = model.nv();
            config.value.friction.coulomb = vec![motor.coulomb; n];
            config.value.friction.viscous = vec![motor.viscous; n];
            config.value.friction.smoothing_velocity = motor.coulomb_velocity;
            config.value.observer.subtract_friction = true;
            config.source = format!("{} + identified sim friction", config.source);
        }
        if let Some(k) = entry.stiffness {
            config.value.aan.emken.initial = k;
        }
        let mut protocol = match &entry.protocol {
            Some(own) => setup::load_protocol(own)?,
            None => Loaded { value: protocol.value.clone(), source: protocol.source.clone() },
        };
        if entry.law.is_some() || entry.progression.is_some() {
            for block in protocol.value.blocks.iter_mut().filter(|b| b.mode == Mode::ActiveAssisted) {
                block.law = entry.law.unwrap_or(block.law);
                block.progression = entry.progression.unwrap_or(block.progression);
            }
            protocol.source =
                format!("{} with the overrides of {}: controllers[{i}]", protocol.source, study_path.display());
        }
        controllers.push(ControllerSetup { name: entry.name.clone(), config, protocol });
    }
    let mut patients = Vec::new();
    for i in 0..study.patients.len() {
        let patient = setup::load_patient(&study.patients[i])?;
        let profile = setup::virtual_patient(&patient)?;
        let rom = setup::patient_rom(&model, &patient)?;
        let personal = setup::patient_limits(&model, &patient);
        let rest = setup::patient_rest(&model, &profile)?;
        let arm = setup::patient_arm(&patient)?;
        patients.push(PatientSetup { name: study.patient_name(i), profile, rom, personal, rest, arm });
    }
    // Every controller × patient combination builds (a bad config fails here, not after an hour of courses).
    for c in &controllers {
        for p in &patients {
            let plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(p.profile.value.clone()))?;
            setup::build_session(&model, &c.config, &c.protocol, &p.arm, &p.rom, &p.personal, plant.joints())?;
        }
    }
    Ok(Prepared { study, model, urdf, controllers, patients })
}

impl Prepared {
    /// The study.
    pub fn study(&self) -> &Study {
        &self.study
    }

    /// Runs `courses` in parallel on all cores, each course's sessions in sequence; `done(course)` is called as each
    /// course finishes (from a worker thread). Returns the results in course order. Progress bar with ETA over
    /// sessions unless `quiet`. Not real-time safe.
    pub fn run_courses(
        &self,
        courses: &[Course],
        quiet: bool,
        done: impl Fn(&CourseResult) -> Result<(), AppError> + Sync,
    ) -> Result<Vec<CourseResult>, AppError> {
        let bar = session_bar(courses.len() as u64 * u64::from(self.study.sessions), quiet);
        let results = self.run_courses_on(courses, &bar, done);
        bar.finish_and_clear();
        results
    }

    /// As [`Prepared::run_courses`], counting finished sessions on `bar` (one bar over several batches of
    /// courses, as `plexo tune` runs them); the bar is left running. Not real-time safe.
    pub fn run_courses_on(
        &self,
        courses: &[Course],
        bar: &ProgressBar,
        done: impl Fn(&CourseResult) -> Result<(), AppError> + Sync,
    ) -> Result<Vec<CourseResult>, AppError> {
        let first_error: Mutex<Option<AppError>> = Mutex::new(None);
        let results: Vec<Option<CourseResult>> = courses
            .par_iter()
            .map(|course| {
                if first_error.lock().map(|e| e.is_some()).unwrap_or(true) {
                    return None;
                }
                let result = self.run_course(course, bar).and_then(|r| done(&r).map(|()| r));
                match result {
                    Ok(r) => Some(r),
                    Err(e) => {
                        if let Ok(mut slot) = first_error.lock() {
                            slot.get_or_insert(e);
                        }
                        None
                    }
                }
            })
            .collect();
        if let Some(e) = first_error.into_inner().ok().flatten() {
            return Err(e);
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// One course: its sessions in sequence, each resumed from the previous one's state. Not real-time safe.
    fn run_course(&self, course: &Course, bar: &ProgressBar) -> Result<CourseResult, AppError> {
        let c = &self.controllers[course.controller];
        let p = &self.patients[course.patient];
        let mut previous: Option<SessionState> = None;
        let mut sessions = Vec::new();
        for k in 1..=self.study.sessions {
            let seed = session_seed(course.seed, k);
            let name = format!("{}_{}_{}_seed{}_s{k:02}", c.protocol.value.name, c.name, p.name, course.seed);
            if let Some(drop) = self.study.capacity_drop.filter(|d| d.session == k)
                && let Some(state) = previous.as_mut()
            {
                drop_capacity(state, drop.factor, &name)?;
            }
            let (result, state) = self.run_session(c, p, &name, seed, previous.as_ref())?;
            sessions.push(SessionResult { session: k, ..result });
            // Through the state file's text form, exactly as `--resume` reads what the previous session wrote.
            let text = toml::to_string(&state).map_err(|e| state_error(&name, e.to_string()))?;
            previous = Some(toml::from_str(&text).map_err(|e| state_error(&name, e.to_string()))?);
            bar.inc(1);
        }
        Ok(CourseResult {
            study: self.study.fingerprint.clone(),
            courses: self.study.courses().len(),
            index: course.index,
            controller: c.name.clone(),
            patient: p.name.clone(),
            seed: course.seed,
            joints: self.model.joints().iter().map(|j| j.name.clone()).collect(),
            sessions,
        })
    }

    fn run_session(
        &self,
        c: &ControllerSetup,
        p: &PatientSetup,
        name: &str,
        seed: u64,
        previous: Option<&SessionState>,
    ) -> Result<(SessionResult, SessionState), AppError> {
        let mut profile = p.profile.value.clone();
        profile.seed = seed;
        let mut plant_config = PlantConfig { initial_position: Some(p.rest.clone()), ..PlantConfig::default() };
        plant_config.period = Duration::from_secs_f64(c.config.value.safety.period);
        plant_config.sensors.seed = seed ^ 0x5EED_0001;
        let plant_config = plant_config.with_patient(profile);
        match self.study.plant {
            StudyPlant::Articulated => {
                self.session_on(c, p, name, seed, previous, ArticulatedPlant::new(&self.model, plant_config)?)
            }
            StudyPlant::Rapier => self.session_on(
                c,
                p,
                name,
                seed,
                previous,
                RapierPlant::new(&self.model, plant_config, RapierOptions::default())?,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn session_on<P: PatientHooks>(
        &self,
        c: &ControllerSetup,
        p: &PatientSetup,
        name: &str,
        seed: u64,
        previous: Option<&SessionState>,
        mut plant: P,
    ) -> Result<(SessionResult, SessionState), AppError> {
        let mut parts =
            setup::build_session(&self.model, &c.config, &c.protocol, &p.arm, &p.rom, &p.personal, plant.joints())?;
        if let Some(state) = previous {
            let source = Path::new(&state.session);
            for clamped in state.resume(&mut parts.therapy, source)? {
                tracing::warn!("{name}: {} = {} clamped to {}", clamped.field, clamped.saved, clamped.restored);
            }
            if let Some(patient) = &state.virtual_patient {
                plant.restore_patient(patient).map_err(|e| AppError::Config {
                    file: state.session.clone(),
                    key: "virtual_patient".into(),
                    reason: e.to_string(),
                })?;
            }
        }
        let period = c.config.value.safety.period;
        let mut loop_config = LoopConfig::new(Duration::from_secs_f64(period));
        loop_config.paced = false;
        loop_config.max_trials = self.study.limits.trials;
        loop_config.max_session_time = self.study.limits.duration;
        let telemetry = Telemetry::start(TelemetryConfig {
            session_name: name.to_owned(),
            model: self.model.clone(),
            urdf: self.urdf.clone(),
            urdf_dir: None,
            patient_arm: None,
            handle_frame: self.model.frames()[parts.handle.0].name.clone(),
            blocks: parts.blocks.clone(),
            period,
            pose_every: 10,
            telemetry_rate: crate::telemetry::DEFAULT_TELEMETRY_RATE,
            info: Default::default(),
            capacity: 65_536,
            paced: false,
            sinks: Sinks::default(),
        })?;
        let mut rt = Runtime { plant, therapy: parts.therapy, supervisor: parts.supervisor };
        let report = run_session(&mut rt, &loop_config, &telemetry.sender_for(false), &LoopSignals::default());
        let (_, summary) = telemetry.finish()?;
        let report = report?;
        let state = session_state(name, previous, &rt);
        let result = SessionResult {
            session: 0,
            seed,
            end: report.end.to_string(),
            session_time_s: report.session_time,
            blocks: BlockResult::of_session(&summary),
            trials: summary.trials.iter().map(|r| r.csv_fields().join(",")).collect(),
        };
        Ok((result, state))
    }
}

/// A progress bar over `total` sessions with elapsed time and ETA (hidden when `quiet`).
pub fn session_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} sessions, {elapsed_precise} elapsed, ETA {eta}")
            .expect("a valid progress template"),
    );
    bar
}

/// Multiplies the virtual patient's saved strength capacity by `factor` (the study's capacity drop), before the
/// session `session` resumes from it.
fn drop_capacity(state: &mut SessionState, factor: f64, session: &str) -> Result<(), AppError> {
    let patient = state
        .virtual_patient
        .as_mut()
        .ok_or_else(|| state_error(session, "capacity_drop: the previous session saved no virtual patient".into()))?;
    let capacity = patient.get("capacity").and_then(toml::Value::as_float).ok_or_else(|| {
        state_error(session, "capacity_drop: the saved virtual patient has no numeric capacity".into())
    })?;
    patient.insert("capacity".into(), toml::Value::Float(capacity * factor));
    Ok(())
}

fn state_error(session: &str, reason: String) -> AppError {
    AppError::Config { file: session.to_owned(), key: "(session state)".into(), reason }
}
