//! `plexo sim`: a simulated therapy session — the same runtime loop, controller and supervisor as `plexo run`,
//! with a simulated plant (rapier3d or the articulated-body plant), optionally behind emulated CAN drives, and a
//! virtual stroke patient strapped in.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use plexo_can::DriveProtocol;
use plexo_can::emulated::SimOverCan;
use plexo_hal::PatientHooks;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PlantConfig, RapierOptions, RapierPlant, SimulatedPlant};

use crate::AppError;
use crate::can_log::CanLog;
use crate::options::{OutputArgs, file_inputs};
use crate::runtime::LoopConfig;
use crate::session::{self, SessionSetup};
use crate::setup::{self, Loaded, Patient};
use crate::store::binding::StoreBinding;
use crate::telemetry::RecordingInfo;

/// Which physics engine simulates the robot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PlantKind {
    /// rapier3d-f64 multibody (the default: independent physics engine).
    Rapier,
    /// plexo-kinematics articulated-body algorithm (fast, for sweeps).
    Articulated,
}

/// Drive protocol of the emulated CAN drives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OverCanProtocol {
    /// CubeMars AK-series MIT mode on classic CAN 1 Mbit/s.
    Mit,
    /// CiA 402 cyclic synchronous torque over CANopen FD.
    Cia402,
}

/// Options of `plexo sim`.
#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Robot: a URDF file, or an embedded exoskeleton (plexo-arm4, plexo-arm6), each with its embedded controller
    /// configuration
    #[arg(long, default_value = "plexo-arm4")]
    pub robot: String,
    /// Virtual patient: a profile .toml, or an embedded profile (healthy, mild, moderate, severe, spastic).
    #[arg(long, default_value = "moderate")]
    pub patient: String,
    /// Protocol: a .toml file, or an embedded protocol (center-out, rom-exercise).
    #[arg(long, default_value = "center-out")]
    pub protocol: String,
    /// Controller configuration .toml (default: the embedded assets/configs/controller.toml, with the simulated
    /// actuators' friction as the identified friction).
    #[arg(long)]
    pub controller: Option<PathBuf>,
    /// Physics of the simulated plant.
    #[arg(long, value_enum, default_value_t = PlantKind::Rapier)]
    pub plant: PlantKind,
    /// Put emulated drives on a virtual CAN bus between the runtime and the plant (the hardware code path).
    #[arg(long, value_enum)]
    pub over_can: Option<OverCanProtocol>,
    /// With --over-can: record every bus's traffic to this file in the can-utils candump log format
    /// (`(seconds) ifname ID#DATA`, readable by can-utils, python-can and `plexo replay`).
    #[arg(long, requires = "over_can", value_name = "FILE")]
    pub candump: Option<PathBuf>,
    /// Pace the loop at wall clock (1 kHz) with absolute deadlines instead of running as fast as possible.
    #[arg(long)]
    pub realtime: bool,
    /// Seed of every random part (sensor noise, patient tremor and variability).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stop after this many trials.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Stop after this much session time [s] (a finite number above 0).
    #[arg(long, value_parser = crate::options::positive_seconds)]
    pub duration: Option<f64>,
    /// Real-time scheduling, memory locking, CPU pinning and outputs.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `plexo sim`. Returns the process outcome: an error if the configuration is invalid or the session was
/// aborted by a safety stop.
pub fn run(args: &SimArgs) -> Result<(), AppError> {
    let mut inputs =
        file_inputs(&[("--robot", &args.robot), ("--patient", &args.patient), ("--protocol", &args.protocol)]);
    inputs.extend(args.controller.as_deref().map(|p| ("--controller", p)));
    let assess_input = args.output.assess_rom.clone().unwrap_or_default();
    inputs.extend(file_inputs(&[("--assess-rom", &assess_input)]));
    let candump: Vec<(&str, &Path)> = args.candump.as_deref().map(|p| ("--candump", p)).into_iter().collect();
    args.output.check_paths(&inputs, &candump)?;
    let robot = setup::load_session_robot(&args.robot)?;
    // `--patient-id`: the virtual patient bound to the id comes from the store, with the stored spec.
    let stored = crate::store::binding::open_for_session(&args.output)?;
    let mut patient = match &stored {
        Some((store, p)) => crate::store::binding::session_patient(p, store.path(), true)?,
        None => setup::load_patient(&args.patient)?,
    };
    // `--assess-rom`: the assessment's protocol replaces `--protocol`.
    let assessment = args.output.assess_rom.as_deref().map(crate::assessment::load).transpose()?;
    let protocol = match &assessment {
        Some(a) => Loaded { value: a.value.to_protocol(), source: a.source.clone() },
        None => setup::load_protocol(&args.protocol)?,
    };
    let mut controller = setup::load_controller(args.controller.as_deref(), &args.robot)?;
    let model = &robot.value.0;
    if let (Some(seed), Patient::Virtual(profile)) = (args.seed, &mut patient.value) {
        profile.seed = seed;
    }
    let mut profile = setup::virtual_patient(&patient)?;
    // An assessment measures the virtual patient's own range: its tissue keeps the passive range it was added
    // with, not the stored (measured) one a therapy session gives it.
    if assessment.is_some()
        && let Some((store, p)) = &stored
        && let Some(mut body) = crate::store::binding::physiology(p, store.path())?
    {
        body.seed = profile.value.seed;
        profile.value = body;
    }
    let rom = setup::patient_rom(model, &patient)?;
    let personal = setup::patient_limits(model, &patient);
    let rest = setup::patient_rest(model, &profile)?;
    let arm = setup::patient_arm(&patient)?;

    let mut plant_config = PlantConfig { initial_position: Some(rest), ..PlantConfig::default() };
    plant_config.period = Duration::from_secs_f64(controller.value.safety.period);
    if let Some(seed) = args.seed {
        plant_config.sensors.seed = seed ^ 0x5EED_0001;
    }
    if args.controller.is_none() {
        // The embedded controller file is written for a frictionless plant; the simulated actuators have
        // friction (plexo-sim MotorParams::default), which a clinic would identify: use the identified values.
        let motor = plexo_sim::MotorParams::default();
        let n = model.nv();
        controller.value.friction.coulomb = vec![motor.coulomb; n];
        controller.value.friction.viscous = vec![motor.viscous; n];
        controller.value.friction.smoothing_velocity = motor.coulomb_velocity;
        controller.value.observer.subtract_friction = true;
        controller.source = format!("{} + identified sim friction", controller.source);
    }
    let plant_config = plant_config.with_patient(profile.value);
    let rate_hz = 1.0 / controller.value.safety.period;
    let ctx = Context {
        args,
        robot: &robot,
        patient: &patient,
        protocol: &protocol,
        controller: &controller,
        arm,
        rom,
        personal,
        store: std::cell::Cell::new(stored.map(|(store, _)| store)),
        assessment: assessment.as_ref(),
    };
    match (args.plant, args.over_can) {
        (PlantKind::Rapier, None) => ctx.run(RapierPlant::new(model, plant_config, RapierOptions::default())?),
        (PlantKind::Articulated, None) => ctx.run(ArticulatedPlant::new(model, plant_config)?),
        (PlantKind::Rapier, Some(proto)) => {
            let plant = RapierPlant::new(model, plant_config, RapierOptions::default())?;
            ctx.run_over_can(plant, proto, rate_hz)
        }
        (PlantKind::Articulated, Some(proto)) => {
            let plant = ArticulatedPlant::new(model, plant_config)?;
            ctx.run_over_can(plant, proto, rate_hz)
        }
    }
}

fn can_protocol(p: OverCanProtocol) -> DriveProtocol {
    match p {
        OverCanProtocol::Mit => DriveProtocol::Mit,
        OverCanProtocol::Cia402 => DriveProtocol::Cia402,
    }
}

struct Context<'a> {
    args: &'a SimArgs,
    robot: &'a Loaded<(plexo_kinematics::Model, String)>,
    patient: &'a Loaded<Patient>,
    protocol: &'a Loaded<plexo_controller::Protocol>,
    controller: &'a Loaded<plexo_controller::ControllerConfig>,
    arm: ArmAnthropometrics,
    rom: Vec<plexo_controller::RomLimit>,
    personal: Vec<plexo_kinematics::JointSafetyLimits>,
    /// The patient store of `--patient-id` (taken by the one session that runs).
    store: std::cell::Cell<Option<crate::store::Store>>,
    /// `--assess-rom`: the range-of-motion assessment to run.
    assessment: Option<&'a Loaded<crate::assessment::AssessmentSpec>>,
}

impl Context<'_> {
    /// The plant behind emulated drives on virtual CAN buses, recording the traffic to `--candump` if asked.
    fn run_over_can<P: SimulatedPlant + PatientHooks>(
        &self,
        plant: P,
        protocol: OverCanProtocol,
        rate_hz: f64,
    ) -> Result<(), AppError> {
        let config = SimOverCan::<P>::default_config(plant.joints(), can_protocol(protocol), rate_hz)?;
        // The recording starts before the drives boot: the log holds the NMT and SDO start-up, not only the cycles.
        let mut log = None;
        let result = SimOverCan::with_recording(plant, config, |buses| match self.args.candump.as_deref() {
            Some(path) => CanLog::record_virtual(path, buses, &mut log),
            None => Ok(()),
        })
        .and_then(|(sim, ())| self.run(sim));
        CanLog::finish_after(log, result)
    }

    fn run<P: PatientHooks>(&self, plant: P) -> Result<(), AppError> {
        let (model, urdf) = &self.robot.value;
        let (parts, assessment) = match self.assessment {
            Some(a) => {
                let (_, parts, run) = crate::assessment::prepare(
                    model,
                    self.controller,
                    a,
                    &self.arm,
                    &self.rom,
                    &self.personal,
                    plant.joints(),
                )?;
                (parts, Some(run))
            }
            None => (
                setup::build_session(
                    model,
                    self.controller,
                    self.protocol,
                    &self.arm,
                    &self.rom,
                    &self.personal,
                    plant.joints(),
                )?,
                None,
            ),
        };
        let name = setup::session_name(&self.protocol.value.name, self.args.output.patient_id(&self.patient.value));
        let mut loop_config = LoopConfig::new(Duration::from_secs_f64(self.controller.value.safety.period));
        loop_config.paced = self.args.realtime;
        loop_config.max_trials = self.args.trials;
        loop_config.max_session_time = self.args.duration;
        let nominal = self.args.duration.unwrap_or_else(|| self.protocol.value.nominal_duration());
        tracing::info!(
            robot = self.robot.source,
            patient = self.patient.source,
            protocol = self.protocol.source,
            controller = self.controller.source,
            plant = ?self.args.plant,
            over_can = ?self.args.over_can,
            "simulated session {name}"
        );
        let setup = SessionSetup {
            name: &name,
            model,
            urdf,
            parts,
            loop_config,
            nominal,
            output: &self.args.output,
            default_save: true,
            hardware: false,
            info: RecordingInfo {
                robot: self.robot.source.clone(),
                protocol: self.protocol.source.clone(),
                patient: self.args.output.patient_id(&self.patient.value).to_owned(),
                controller: self.controller.source.clone(),
                seed: match &self.patient.value {
                    Patient::Virtual(profile) => Some(profile.seed),
                    Patient::Clinical(_) => self.args.seed,
                },
            },
            store: match (self.store.take(), &self.args.output.patient_id) {
                (Some(store), Some(id)) => Some(StoreBinding {
                    store,
                    patient_id: id.clone(),
                    kind: "sim",
                    notes: self.args.output.notes.clone(),
                    controller_toml: toml::to_string(&self.controller.value).unwrap_or_default(),
                }),
                _ => None,
            },
            assessment,
        };
        session::run(setup, plant)
    }
}
