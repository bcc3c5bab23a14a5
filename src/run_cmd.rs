//! `plexo run`: a therapy session on the real robot over CAN — the same loop, controller and supervisor as
//! `plexo sim`, with [`CanRobot`] over SocketCAN instead of the simulated plant.
//!
//! Order of operations (each step refuses to go on if it fails):
//! 1. the `check` validation of every file (the same function);
//! 2. the explicit confirmation flag;
//! 3. the calibration (homing) is applied; CAN interfaces opened, drives brought up torque-free;
//! 4. a few cycles read with torque off: every joint must read inside its limits;
//! 5. the session (paced at the configured rate, absolute deadlines), Ctrl-C = controlled stop, torque off.
//!
//! `--home` instead measures the zero offsets of the `reference-pose` joints (robot in its jig, no patient),
//! stores them beside the configuration and exits.
//!
//! `--emulate articulated|rapier` replaces the SocketCAN interfaces with emulated drives of exactly the
//! configured protocols, node ids, ratios, directions and limits on virtual buses, backed by a simulated plant
//! with the profile's virtual patient: a dry run of the clinic configuration, homing included, before anyone
//! touches the robot. Everything else — validation, confirmation, calibration, read-back, loop, supervisor — is
//! the same code.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use plexo_can::emulated::SimOverCan;
use plexo_can::socketcan::SocketCanBus;
use plexo_can::{CanRobot, CanRobotConfig};
use plexo_hal::{PatientHooks, WithoutPatient};
use plexo_sim::{ArticulatedPlant, PlantConfig, RapierOptions, RapierPlant, SimulatedPlant};

use crate::AppError;
use crate::check_cmd::{self, CheckArgs};
use crate::hardware::{self, HardwareConfig};
use crate::options::{OutputArgs, file_inputs};
use crate::runtime::LoopConfig;
use crate::session::{self, SessionSetup};
use crate::setup;
use crate::sim_cmd::PlantKind;
use crate::telemetry::RecordingInfo;

/// Options of `plexo run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Hardware configuration (.toml): robot, CAN buses and drives, homing.
    #[arg(long)]
    pub hardware: PathBuf,
    /// CAN interfaces, in the order of the configuration's buses (e.g. `can0,can1`).
    #[arg(long, value_delimiter = ',', required_unless_present = "emulate", conflicts_with = "emulate")]
    pub can: Vec<String>,
    /// Dry run: emulated drives of this configuration on virtual buses, backed by a simulated plant (with the
    /// profile's virtual patient), instead of SocketCAN. Unpaced unless --realtime.
    #[arg(long, value_enum, value_name = "PLANT")]
    pub emulate: Option<PlantKind>,
    /// With --emulate: pace the loop at wall clock like the hardware run.
    #[arg(long, requires = "emulate")]
    pub realtime: bool,
    /// The patient: a clinical patient file (.toml: pseudonymous id, body height and mass, measured range of
    /// motion per joint, personal limits), or with --emulate a virtual patient profile (.toml or embedded name).
    #[arg(long)]
    pub patient: String,
    /// Protocol (.toml or embedded name).
    #[arg(long, default_value = "center-out")]
    pub protocol: String,
    /// Controller configuration (.toml; default: the embedded one).
    #[arg(long)]
    pub controller: Option<PathBuf>,
    /// Measure the zero offsets of the reference-pose joints (robot in its homing jig, no patient) and exit.
    #[arg(long)]
    pub home: bool,
    /// Accept a new zero offset that differs from the stored one by more than the tolerance.
    #[arg(long, requires = "home")]
    pub force_homing: bool,
    /// Required: the operator confirms the patient is seated, strapped in and supervised (or, with --home,
    /// that no patient is in the robot), and the e-stop is within reach.
    #[arg(long = "i-confirm-the-patient-is-safe")]
    pub confirmed: bool,
    /// Stop after this many trials.
    #[arg(long)]
    pub trials: Option<usize>,
    /// Stop after this much session time [s] (a finite number above 0).
    #[arg(long, value_parser = crate::options::positive_seconds)]
    pub duration: Option<f64>,
    /// Outputs and real-time settings.
    #[command(flatten)]
    pub output: OutputArgs,
}

/// Runs `plexo run`.
pub fn run(args: &RunArgs) -> Result<(), AppError> {
    // 0. No output may overwrite an input or another output — the files the hardware configuration names
    // included (its robot URDF and its calibration file: a `--state` onto the URDF overwrote it).
    let mut hw = HardwareConfig::from_file(&args.hardware)?;
    let calibration = hw.calibration_path();
    let mut inputs = file_inputs(&[
        ("--patient", &args.patient),
        ("--protocol", &args.protocol),
        ("the robot of --hardware", &hw.robot),
    ]);
    inputs.push(("--hardware", &args.hardware));
    inputs.extend(args.controller.as_deref().map(|p| ("--controller", p)));
    if calibration.exists() {
        inputs.push(("the calibration of --hardware", &calibration));
    }
    args.output.check_paths(&inputs, &[])?;
    // 1. The same validation as `plexo check`.
    let check_args = CheckArgs {
        robot: hw.robot.clone(),
        patient: args.patient.clone(),
        protocol: args.protocol.clone(),
        controller: args.controller.clone(),
        hardware: Some(args.hardware.clone()),
    };
    let checked = check_cmd::check(&check_args, Some(hw.clone()))?;
    println!("{}", check_cmd::render(&checked));
    // 2. Confirmation.
    if !args.confirmed {
        return Err(AppError::NotConfirmed);
    }
    // 3. Calibration, buses, drives.
    let calibration_path = hw.calibration_path();
    let calibration = hardware::load_calibration(&calibration_path)?;
    if !args.home {
        hw.apply_calibration(calibration.as_ref())?;
    } else {
        for j in &mut hw.can.joints {
            if let Some(z) = calibration.as_ref().and_then(|c| c.zero_offset.get(&j.name)) {
                j.zero_offset = *z;
            }
        }
    }
    match args.emulate {
        None => {
            // Hardware: no virtual patient behind the drives.
            let robot = WithoutPatient(open_can_robot(args, &hw)?);
            run_on(args, &hw, calibration.as_ref(), checked, robot)
        }
        Some(kind) => {
            let model = &checked.robot.value.0;
            let can = hw.can.clone();
            // The emulated robot starts where a real one would: at the jig's reference posture when homing, else
            // with the patient's arm at rest.
            let initial = if args.home {
                hw.can.joints.iter().map(|j| hw.homing_of(&j.name)).map(|h| h.reference).collect::<Vec<_>>()
            } else {
                setup::patient_rest(model, &setup::virtual_patient(&checked.patient)?)?
            };
            let mut plant_config = PlantConfig { initial_position: Some(initial), ..PlantConfig::default() };
            plant_config.period = Duration::from_secs_f64(1.0 / hw.can.control_rate_hz);
            if !args.home {
                plant_config = plant_config.with_patient(setup::virtual_patient(&checked.patient)?.value);
            }
            match kind {
                PlantKind::Articulated => {
                    let plant = ArticulatedPlant::new(model, plant_config)?;
                    run_on(args, &hw, calibration.as_ref(), checked, emulated(plant, can)?)
                }
                PlantKind::Rapier => {
                    let plant = RapierPlant::new(model, plant_config, RapierOptions::default())?;
                    run_on(args, &hw, calibration.as_ref(), checked, emulated(plant, can)?)
                }
            }
        }
    }
}

fn emulated<P: SimulatedPlant + PatientHooks>(plant: P, can: CanRobotConfig) -> Result<SimOverCan<P>, AppError> {
    Ok(SimOverCan::new(plant, can)?)
}

/// Opens the configured buses on the `--can` interfaces (in order) and brings the drives up torque-free.
fn open_can_robot(args: &RunArgs, hw: &HardwareConfig) -> Result<CanRobot<SocketCanBus>, AppError> {
    if args.can.len() != hw.can.buses.len() {
        return Err(AppError::Config {
            file: hw.source.clone(),
            key: "can.buses".into(),
            reason: format!(
                "--can names {} interface(s) but the configuration has {} buses ({})",
                args.can.len(),
                hw.can.buses.len(),
                hw.can.buses.iter().map(|b| b.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    let mut buses = Vec::with_capacity(args.can.len());
    for (iface, bus) in args.can.iter().zip(&hw.can.buses) {
        let fd = bus.data_bitrate.is_some();
        let socket = SocketCanBus::open(iface, fd)
            .map_err(|e| AppError::Robot(format!("cannot open CAN interface `{iface}` for bus `{}`: {e}", bus.name)))?;
        buses.push(socket);
    }
    // The configuration's bus names stay the logical names; the sockets are matched in order.
    let mut can_config = hw.can.clone();
    for (bus, iface) in can_config.buses.iter_mut().zip(&args.can) {
        if bus.name != *iface {
            for j in can_config.joints.iter_mut().filter(|j| j.bus == bus.name) {
                j.bus = iface.clone();
            }
            bus.name = iface.clone();
        }
    }
    Ok(CanRobot::new(can_config, buses)?)
}

/// Steps 4–5 on a brought-up robot: torque-off read-back (homing, or the position check), then the session.
fn run_on<P: PatientHooks>(
    args: &RunArgs,
    hw: &HardwareConfig,
    calibration: Option<&hardware::Calibration>,
    checked: check_cmd::Checked,
    mut robot: P,
) -> Result<(), AppError> {
    // 4. Torque-off read-back.
    let state = hardware::settle_read(&mut robot, 20)?;
    if args.home {
        let calibration_path = hw.calibration_path();
        let new = hardware::measure_zero_offsets(hw, &state, calibration, args.force_homing)?;
        hardware::save_calibration(&calibration_path, &new)?;
        println!("zero offsets saved to {}:", calibration_path.display());
        for (joint, z) in &new.zero_offset {
            println!("  {joint:<20} {z:+.5} rad");
        }
        return Ok(());
    }
    hardware::check_positions(hw, &state)?;

    // 5. The session.
    let model = &checked.robot.value.0;
    let session = setup::session_name(&checked.protocol.value.name, args.output.patient_id(&checked.patient.value));
    let period = Duration::from_secs_f64(1.0 / hw.can.control_rate_hz);
    let mut loop_config = LoopConfig::new(period);
    loop_config.paced = args.emulate.is_none() || args.realtime;
    loop_config.max_trials = args.trials;
    loop_config.max_session_time = args.duration;
    // In the clinic a spasm release is resumed by the therapist, not automatically: the session stops.
    loop_config.auto_resume_after = None;
    let nominal = args.duration.unwrap_or_else(|| checked.protocol.value.nominal_duration());
    let setup = SessionSetup {
        name: &session,
        model,
        urdf: &checked.robot.value.1,
        parts: checked.parts,
        loop_config,
        nominal,
        output: &args.output,
        default_save: false,
        hardware: true,
        info: RecordingInfo {
            robot: checked.robot.source.clone(),
            protocol: checked.protocol.source.clone(),
            patient: args.output.patient_id(&checked.patient.value).to_owned(),
            controller: checked.controller.source.clone(),
            // An emulated dry run's virtual patient has a seed; the real robot has none.
            seed: match (&args.emulate, &checked.patient.value) {
                (Some(_), setup::Patient::Virtual(profile)) => Some(profile.seed),
                _ => None,
            },
        },
    };
    session::run(setup, robot)
}
