//! `plexo check`: validates every configuration file with the same code `sim` and `run` use, and prints the
//! joint limits (URDF, CAN drives, safety supervisor, patient ROM, effective), the safety settings and the
//! bus-load plan. `plexo run` runs exactly this first and refuses to start on any failure.

use std::path::PathBuf;

use clap::Args;
use plexo_hal::JointInfo;

use crate::AppError;
use crate::hardware::HardwareConfig;
use crate::setup::{self, Loaded, Patient, SessionParts};

/// Files to check (the same options as `sim` and `run`).
#[derive(Args, Debug, Clone)]
pub struct CheckArgs {
    /// Robot: a URDF file or an embedded default (ignored with --hardware, which names its robot).
    #[arg(long, default_value = "plexo-arm4")]
    pub robot: String,
    /// The patient (.toml: a clinical patient file or a virtual patient profile; or an embedded profile name): body
    /// size and range of motion.
    #[arg(long, default_value = "moderate")]
    pub patient: String,
    /// Protocol (.toml or embedded name).
    #[arg(long, default_value = "center-out")]
    pub protocol: String,
    /// Controller configuration (.toml; default: the embedded one).
    #[arg(long)]
    pub controller: Option<PathBuf>,
    /// Hardware configuration (.toml): CAN buses, drives, homing.
    #[arg(long)]
    pub hardware: Option<PathBuf>,
}

/// Everything a session needs, loaded and cross-checked.
pub struct Checked {
    /// Robot model and URDF text.
    pub robot: Loaded<(plexo_kinematics::Model, String)>,
    /// Patient profile.
    pub patient: Loaded<Patient>,
    /// Protocol.
    pub protocol: Loaded<plexo_controller::Protocol>,
    /// Controller configuration.
    pub controller: Loaded<plexo_controller::ControllerConfig>,
    /// Hardware configuration, if checked.
    pub hardware: Option<HardwareConfig>,
    /// The joints the supervisor was built for.
    pub joints: Vec<JointInfo>,
    /// Controller, supervisor, therapy.
    pub parts: SessionParts,
    /// Bus loads per bus (hardware).
    pub bus_loads: Vec<plexo_can::planner::BusLoad>,
}

/// Loads and cross-checks everything; the first error of each stage is returned (it names file and key).
pub fn check(args: &CheckArgs, hardware: Option<HardwareConfig>) -> Result<Checked, AppError> {
    check_with_patient(args, hardware, None)
}

/// [`check`] with the patient already loaded (`Some`: from the patient store; `args.patient` is then unused).
pub fn check_with_patient(
    args: &CheckArgs,
    hardware: Option<HardwareConfig>,
    patient: Option<Loaded<Patient>>,
) -> Result<Checked, AppError> {
    let robot_spec = hardware.as_ref().map_or(args.robot.clone(), |h| h.robot.clone());
    let robot = setup::load_session_robot(&robot_spec)?;
    let patient = match patient {
        Some(p) => p,
        None => setup::load_patient(&args.patient)?,
    };
    let protocol = setup::load_protocol(&args.protocol)?;
    let controller = setup::load_controller(args.controller.as_deref(), &robot_spec)?;
    let model = &robot.value.0;
    let rom = setup::patient_rom(model, &patient)?;
    let personal = setup::patient_limits(model, &patient);
    let arm = setup::patient_arm(&patient)?;
    let (joints, bus_loads) = match &hardware {
        Some(h) => {
            h.check_against(model)?;
            let loads =
                plexo_can::planner::check_bus_load(&h.can.bus_plans(), h.can.control_rate_hz, h.can.bus_load_limit)?;
            if (h.can.control_rate_hz * controller.value.safety.period - 1.0).abs() > 1e-6 {
                return Err(AppError::Config {
                    file: h.source.clone(),
                    key: "can.control_rate_hz".into(),
                    reason: format!(
                        "{} Hz does not match the controller's safety.period {} s ({})",
                        h.can.control_rate_hz, controller.value.safety.period, controller.source
                    ),
                });
            }
            (h.joints(), loads)
        }
        // Simulation: the plant's joints are the URDF's, with the URDF effort as the motor torque limit.
        None => (JointInfo::from_model(model), Vec::new()),
    };
    let parts = setup::build_session(model, &controller, &protocol, &arm, &rom, &personal, &joints)?;
    Ok(Checked { robot, patient, protocol, controller, hardware, joints, parts, bus_loads })
}

/// Runs `plexo check`: prints the report, or the error naming file and key.
pub fn run(args: &CheckArgs) -> Result<(), AppError> {
    let hardware = args.hardware.as_deref().map(HardwareConfig::from_file).transpose()?;
    let checked = check(args, hardware)?;
    print!("{}", render(&checked));
    println!("all configuration files are valid");
    Ok(())
}

/// The human-readable report.
pub fn render(c: &Checked) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let model = &c.robot.value.0;
    let _ = writeln!(s, "robot      {} ({} joints)", c.robot.source, model.nv());
    let _ = writeln!(s, "patient    {} ({})", c.patient.source, c.patient.value.name());
    let _ = writeln!(
        s,
        "protocol   {} ({} blocks, ~{:.1} min)",
        c.protocol.source,
        c.protocol.value.blocks.len(),
        c.protocol.value.nominal_duration() / 60.0
    );
    let _ = writeln!(s, "controller {}", c.controller.source);
    if let Some(h) = &c.hardware {
        let _ = writeln!(s, "hardware   {} ({} buses, {} Hz)", h.source, h.can.buses.len(), h.can.control_rate_hz);
    }
    let _ = writeln!(s, "\njoint limits [deg, deg/s, Nm, Nm/s]");
    let _ = writeln!(
        s,
        "{:<20} {:>17} {:>17} {:>17} {:>7} {:>7} {:>8} {:>9}",
        "joint", "robot range", "patient ROM", "effective", "vel", "torque", "rate", "homing"
    );
    let sup = &c.parts.supervisor;
    for (j, joint) in c.joints.iter().enumerate() {
        let range = |a: f64, b: f64| format!("[{:.0}, {:.0}]", a.to_degrees(), b.to_degrees());
        // `check` has verified that the range of motion covers every robot joint.
        let rom = c.patient.value.spec().range_of(&joint.name).unwrap_or([f64::NAN; 2]);
        let (lo, hi) = sup.effective_limits(j);
        let homing = c.hardware.as_ref().map_or("-".to_owned(), |h| format!("{:?}", h.homing_of(&joint.name).method));
        let _ = writeln!(
            s,
            "{:<20} {:>17} {:>17} {:>17} {:>7.0} {:>7.1} {:>8.0} {:>9}",
            joint.name,
            range(joint.position_min, joint.position_max),
            range(rom[0], rom[1]),
            range(lo, hi),
            sup.velocity_max(j).to_degrees(),
            sup.torque_max(j),
            sup.torque_rate_max(j),
            homing
        );
    }
    let sc = sup.config();
    let _ = writeln!(s, "\nsafety supervisor ({})", c.controller.source);
    let _ = writeln!(
        s,
        "  period {} ms, watchdog {} ms, soft start {} s, position tolerance {:.1} deg (enable up to {:.1} deg \
         outside the range), standstill {:.1} deg/s",
        sc.period * 1e3,
        sc.watchdog_timeout * 1e3,
        sc.soft_start_time,
        sc.position_tolerance.to_degrees(),
        sc.enable_outside_max.to_degrees(),
        sc.standstill_velocity.to_degrees()
    );
    let _ = writeln!(
        s,
        "  safe stop damping {} Nm s/rad (timeout {} s), spasm release after {} s, NaN fault after {} samples, \
         stale sensor after {} samples",
        sc.safe_stop_damping, sc.safe_stop_timeout, sc.spasm_time, sc.nonfinite_fault_samples, sc.stale_samples
    );
    if !c.bus_loads.is_empty() {
        let _ = writeln!(s, "\nbus-load plan");
        for load in &c.bus_loads {
            let _ = writeln!(
                s,
                "  {:<6} {} frames/cycle, {:.0} us/cycle worst case, load {:.0} %",
                load.name,
                load.frames_per_cycle,
                load.time_per_cycle.as_secs_f64() * 1e6,
                load.load * 100.0
            );
        }
    }
    s
}
