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
//!
//! `--candump FILE` records every frame sent and received on every bus, from the drives' start-up (MIT polls,
//! CiA 402 NMT and SDO configuration) to the last torque-off frame, in the can-utils candump log format: on
//! hardware each socket is wrapped in a [`RecordingBus`] (UNIX-time stamps, as `candump -l` writes), with
//! `--emulate` the virtual buses record from before the emulated drives boot (bus time from 0, as `plexo sim
//! --candump`). The recorder never blocks the loop (a full channel drops and counts, reported at the end), and
//! the file is written beside its target and renamed over it when complete (`crate::files`), also after a
//! failed start-up or session, whose traffic is the most useful to have.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use plexo_can::emulated::SimOverCan;
use plexo_can::recorder::RecordingBus;
use plexo_can::socketcan::SocketCanBus;
use plexo_can::{CanRobot, CanRobotConfig};
use plexo_hal::{PatientHooks, WithoutPatient};
use plexo_sim::{ArticulatedPlant, PlantConfig, RapierOptions, RapierPlant, SimulatedPlant};

use crate::AppError;
use crate::can_log::CanLog;
use crate::check_cmd::{self, CheckArgs};
use crate::hardware::{self, HardwareConfig};
use crate::options::{OutputArgs, file_inputs};
use crate::runtime::LoopConfig;
use crate::session::{self, SessionSetup};
use crate::setup;
use crate::sim_cmd::PlantKind;
use crate::store::binding::StoreBinding;
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
    /// With --patient-id, the patient comes from the store instead.
    #[arg(long, required_unless_present = "patient_id")]
    pub patient: Option<String>,
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
    /// Record every frame sent and received on every bus, from the drives' start-up on, to this file in the
    /// can-utils candump log format (UNIX-time stamps on hardware, as `candump -l`; bus time with --emulate).
    #[arg(long, value_name = "FILE")]
    pub candump: Option<PathBuf>,
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
    let patient_arg = args.patient.clone().unwrap_or_default();
    let mut inputs = file_inputs(&[
        ("--patient", &patient_arg),
        ("--protocol", &args.protocol),
        ("the robot of --hardware", &hw.robot),
    ]);
    inputs.push(("--hardware", &args.hardware));
    inputs.extend(args.controller.as_deref().map(|p| ("--controller", p)));
    let assess_input = args.output.assess_rom.clone().unwrap_or_default();
    inputs.extend(file_inputs(&[("--assess-rom", &assess_input)]));
    if calibration.exists() {
        inputs.push(("the calibration of --hardware", &calibration));
    }
    let candump: Vec<(&str, &Path)> = args.candump.as_deref().map(|p| ("--candump", p)).into_iter().collect();
    args.output.check_paths(&inputs, &candump)?;
    // 1. The same validation as `plexo check`.
    let check_args = CheckArgs {
        robot: hw.robot.clone(),
        patient: patient_arg.clone(),
        protocol: args.protocol.clone(),
        controller: args.controller.clone(),
        hardware: Some(args.hardware.clone()),
    };
    // `--patient-id`: the patient (a virtual one for --emulate) comes from the store.
    let stored = crate::store::binding::open_for_session(&args.output)?;
    let patient = match &stored {
        Some((store, p)) => Some(crate::store::binding::session_patient(p, store.path(), args.emulate.is_some())?),
        None => None,
    };
    let checked = check_cmd::check_with_patient(&check_args, Some(hw.clone()), patient)?;
    let stored_patient = stored.as_ref().map(|(store, p)| (store.path().to_path_buf(), p.clone()));
    let store = std::cell::Cell::new(stored.map(|(store, _)| store));
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
            let log = args.candump.as_deref().map(|path| CanLog::start(path, &args.can)).transpose()?;
            // Hardware: no virtual patient behind the drives. The robot (and with it every recording sink) is
            // gone when `run_on` returns or the start-up fails, so the log can be finished then.
            let result = open_can_robot(args, &hw, log.as_ref())
                .and_then(|robot| run_on(args, &hw, calibration.as_ref(), checked, WithoutPatient(robot), &store));
            CanLog::finish_after(log, result)
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
                let mut body = setup::virtual_patient(&checked.patient)?.value;
                // An assessment measures the virtual patient's own range: its tissue keeps the passive range it
                // was added with, not the stored (measured) one a therapy session gives it.
                if args.output.assess_rom.is_some()
                    && let Some((db, p)) = &stored_patient
                    && let Some(mut own) = crate::store::binding::physiology(p, db)?
                {
                    own.seed = body.seed;
                    body = own;
                }
                plant_config = plant_config.with_patient(body);
            }
            // The log is kept outside the robot, so that a failed start-up's traffic is committed too.
            let mut log = None;
            let result = match kind {
                PlantKind::Articulated => ArticulatedPlant::new(model, plant_config)
                    .map_err(AppError::from)
                    .and_then(|plant| emulated(args, plant, can, &mut log))
                    .and_then(|robot| run_on(args, &hw, calibration.as_ref(), checked, robot, &store)),
                PlantKind::Rapier => RapierPlant::new(model, plant_config, RapierOptions::default())
                    .map_err(AppError::from)
                    .and_then(|plant| emulated(args, plant, can, &mut log))
                    .and_then(|robot| run_on(args, &hw, calibration.as_ref(), checked, robot, &store)),
            };
            CanLog::finish_after(log, result)
        }
    }
}

/// The plant behind emulated drives on virtual buses; with `--candump` the buses record into `log` from before
/// the drives boot.
fn emulated<P: SimulatedPlant + PatientHooks>(
    args: &RunArgs,
    plant: P,
    can: CanRobotConfig,
    log: &mut Option<CanLog>,
) -> Result<SimOverCan<P>, AppError> {
    let (sim, ()) = SimOverCan::with_recording(plant, can, |buses| match args.candump.as_deref() {
        Some(path) => CanLog::record_virtual(path, buses, log),
        None => Ok(()),
    })?;
    Ok(sim)
}

/// Opens the configured buses on the `--can` interfaces (in order), each recording into `log` if given (before
/// the first frame), and brings the drives up torque-free.
fn open_can_robot(
    args: &RunArgs,
    hw: &HardwareConfig,
    log: Option<&CanLog>,
) -> Result<CanRobot<RecordingBus<SocketCanBus>>, AppError> {
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
    for (i, (iface, bus)) in args.can.iter().zip(&hw.can.buses).enumerate() {
        let fd = bus.data_bitrate.is_some();
        let socket = SocketCanBus::open(iface, fd)
            .map_err(|e| AppError::Robot(format!("cannot open CAN interface `{iface}` for bus `{}`: {e}", bus.name)))?;
        buses.push(RecordingBus::new(socket, log.map(|l| l.sink(i)).transpose()?));
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
    store: &std::cell::Cell<Option<crate::store::Store>>,
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

    // 5. The session (`--assess-rom`: the assessment's protocol, walls and limits instead of `--protocol`'s).
    let mut checked = checked;
    let mut assessment = None;
    if let Some(spec) = args.output.assess_rom.as_deref() {
        let model = &checked.robot.value.0;
        let spec = crate::assessment::load(spec)?;
        let (protocol, parts, run) = crate::assessment::prepare(
            model,
            &checked.controller,
            &spec,
            &setup::patient_arm(&checked.patient)?,
            &setup::patient_rom(model, &checked.patient)?,
            &setup::patient_limits(model, &checked.patient),
            &checked.joints,
        )?;
        checked.protocol = protocol;
        checked.parts = parts;
        assessment = Some(run);
    }
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
        store: match (store.take(), &args.output.patient_id) {
            (Some(store), Some(id)) => Some(StoreBinding {
                store,
                patient_id: id.clone(),
                kind: "run",
                notes: args.output.notes.clone(),
                controller_toml: toml::to_string(&checked.controller.value).unwrap_or_default(),
            }),
            _ => None,
        },
        assessment,
    };
    session::run(setup, robot)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use plexo_can::{CanBus as _, CanFrame, VirtualBus, VirtualBusConfig};

    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("plexo-run-cmd-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn the_candump_of_a_failed_run_is_committed_with_unix_time_stamps_from_the_first_frame() {
        let d = dir("candump");
        let path = d.join("logs/run.log");
        let log = CanLog::start(&path, &["can0".to_owned(), "can1".to_owned()]).unwrap();
        let buses: Vec<VirtualBus> =
            ["can0", "can1"].iter().map(|n| VirtualBus::new(VirtualBusConfig::stepped(n, 1_000_000))).collect();
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        {
            // What `open_can_robot` does with each socket: the recording starts before the first frame.
            let mut hosts: Vec<_> = buses
                .iter()
                .enumerate()
                .map(|(i, b)| RecordingBus::new(b.node("plexo"), Some(log.sink(i).unwrap())))
                .collect();
            let mut drives: Vec<_> = buses.iter().map(|b| b.node("drive")).collect();
            for (host, drive) in hosts.iter_mut().zip(&mut drives) {
                host.transmit(&CanFrame::standard(0x000, &[0x80, 0]).unwrap()).unwrap(); // NMT start-up
                drive.transmit(&CanFrame::standard(0x701, &[0x7F]).unwrap()).unwrap();
                assert!(host.receive(Duration::ZERO).unwrap().is_some());
            }
        } // the robot and its sinks are gone
        assert!(!path.exists(), "written beside the target until finished");
        let failed = CanLog::finish_after(Some(log), Err(AppError::Robot("start-up failed".into())));
        assert!(matches!(failed, Err(AppError::Robot(m)) if m == "start-up failed"), "the run's error comes first");
        let text = std::fs::read_to_string(&path).unwrap();
        let records = plexo_can::candump::parse_log(&text).unwrap();
        assert_eq!(records.len(), 4, "{text}");
        assert_eq!(records[0].frame.id().raw(), 0x000, "from the first frame: {text}");
        assert!(records.iter().any(|r| r.ifname == "can1" && r.frame.id().raw() == 0x701), "received frames: {text}");
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(
            records
                .iter()
                .all(|r| r.time + Duration::from_secs(1) >= before && r.time < before + Duration::from_secs(60))
        );
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no partial file left");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
