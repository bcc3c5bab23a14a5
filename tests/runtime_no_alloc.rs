//! The control tick allocates nothing: the whole runtime loop (plant read, therapy update, supervisor, plant
//! write, trial bookkeeping, the patient hooks, the sample's hand-over — the lossless sender's waits included) is
//! run for two session lengths and the allocations counted on the control thread must be identical — every
//! allocation is set-up or teardown. Both simulated plants: the articulated one allocates nothing itself; the
//! default rapier plant's physics step allocates inside rapier 0.36 (documented on `RapierPlant::write`, bounded
//! per step, `sim/tests/alloc.rs`), so allocations made inside the backend's own calls are counted apart and
//! everything outside them — Plexo's — must not grow with the session.

use std::cell::Cell;
use std::time::Duration;

use plexo::runtime::{LoopConfig, LoopSignals, Runtime, run_session};
use plexo::setup;
use plexo::telemetry::{Sinks, Telemetry, TelemetryConfig};
use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Lifecycle, PatientHooks, Robot};
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PlantConfig, RapierOptions, RapierPlant};
use plexo_testkit::AllocationWindow;

plexo_testkit::install_counting_allocator!();

thread_local! {
    /// Allocations made inside the backend's own calls on this thread (the physics engine's).
    static PLANT_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Runs one backend call, adding its allocations to [`PLANT_ALLOCATIONS`].
fn in_plant<T>(f: impl FnOnce() -> T) -> T {
    let before = plexo_testkit::allocations();
    let out = f();
    let made = plexo_testkit::allocations() - before;
    PLANT_ALLOCATIONS.with(|c| c.set(c.get() + made));
    out
}

/// A backend whose own calls count their allocations apart (as the plant's); every hook is forwarded.
struct Attributed<P> {
    inner: P,
    writes: u64,
}

impl<P: Robot> Robot for Attributed<P> {
    type Error = P::Error;
    fn dof(&self) -> usize {
        self.inner.dof()
    }
    fn joints(&self) -> &[JointInfo] {
        self.inner.joints()
    }
    fn lifecycle(&self) -> Lifecycle {
        self.inner.lifecycle()
    }
    fn read(&mut self, state: &mut JointState) -> Result<(), Self::Error> {
        in_plant(|| self.inner.read(state))
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), Self::Error> {
        self.writes += 1;
        in_plant(|| self.inner.write(command))
    }
    fn enable(&mut self) -> Result<(), Self::Error> {
        in_plant(|| self.inner.enable())
    }
    fn disable(&mut self) -> Result<(), Self::Error> {
        in_plant(|| self.inner.disable())
    }
    fn estop(&mut self) -> Result<(), Self::Error> {
        in_plant(|| self.inner.estop())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        in_plant(|| self.inner.reset())
    }
}

// The patient hooks are Plexo's and the simulator's own code: their allocations count as Plexo's.
impl<P: PatientHooks> PatientHooks for Attributed<P> {
    fn is_simulated(&self) -> bool {
        self.inner.is_simulated()
    }
    fn patient_goal(&mut self, goal: &JointArray<f64>, duration: f64) -> Result<(), Self::Error> {
        self.inner.patient_goal(goal, duration)
    }
    fn patient_trial_end(&mut self, error: f64, success: bool, duration: f64) -> Result<(), Self::Error> {
        self.inner.patient_trial_end(error, success, duration)
    }
    fn true_patient_torque(&self) -> Option<JointArray<f64>> {
        self.inner.true_patient_torque()
    }
}

#[derive(Clone, Copy, Debug)]
enum Physics {
    Articulated,
    Rapier,
}

/// What one session allocated on the control thread (setup excluded, loop and teardown included).
#[derive(Debug)]
struct Allocations {
    plexo: u64,
    plant: u64,
    writes: u64,
    trials: usize,
}

fn session_allocations(physics: Physics, seconds: f64) -> Allocations {
    let robot = setup::load_robot("plexo-arm4").unwrap();
    let patient = setup::load_patient("moderate").unwrap();
    let profile = setup::virtual_patient(&patient).unwrap();
    let protocol = setup::load_protocol("center-out").unwrap();
    let controller = setup::load_controller(None, "plexo-arm4").unwrap();
    let (model, urdf) = &robot.value;
    let rom = setup::patient_rom(model, &patient).unwrap();
    let rest = setup::patient_rest(model, &profile).unwrap();
    let arm = setup::patient_arm(&patient).unwrap();
    let config = PlantConfig { initial_position: Some(rest), ..PlantConfig::default() }.with_patient(profile.value);
    match physics {
        Physics::Articulated => {
            let plant = ArticulatedPlant::new(model, config).unwrap();
            run(plant, model, urdf, &controller, &protocol, &arm, &rom, seconds)
        }
        Physics::Rapier => {
            let plant = RapierPlant::new(model, config, RapierOptions::default()).unwrap();
            run(plant, model, urdf, &controller, &protocol, &arm, &rom, seconds)
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run<P: PatientHooks>(
    plant: P,
    model: &plexo_kinematics::Model,
    urdf: &str,
    controller: &setup::Loaded<plexo_controller::ControllerConfig>,
    protocol: &setup::Loaded<plexo_controller::Protocol>,
    arm: &ArmAnthropometrics,
    rom: &[plexo_controller::RomLimit],
    seconds: f64,
) -> Allocations {
    // No personal limits: the allocation count does not depend on the limits' values.
    let parts = setup::build_session(model, controller, protocol, arm, rom, &[], plant.joints()).unwrap();
    let telemetry = Telemetry::start(TelemetryConfig {
        session_name: "no-alloc".into(),
        model: model.clone(),
        urdf: urdf.to_owned(),
        urdf_dir: None,
        patient_arm: Some(parts.arm),
        handle_frame: "handle".into(),
        blocks: parts.blocks.clone(),
        period: 0.001,
        pose_every: 10,
        telemetry_rate: plexo::telemetry::DEFAULT_TELEMETRY_RATE,
        info: Default::default(),
        // Small, so the lossless sender of an unpaced run (the default `plexo sim`) waits for the analysis.
        capacity: 64,
        paced: false,
        sinks: Sinks::default(),
    })
    .unwrap();
    let sender = telemetry.sender_for(false);
    let mut rt =
        Runtime { plant: Attributed { inner: plant, writes: 0 }, therapy: parts.therapy, supervisor: parts.supervisor };
    let mut loop_config = LoopConfig::new(Duration::from_millis(1));
    loop_config.max_session_time = Some(seconds);
    let signals = LoopSignals::default();
    let window = AllocationWindow::open();
    let plant_before = PLANT_ALLOCATIONS.with(Cell::get);
    let report = run_session(&mut rt, &loop_config, &sender, &signals).unwrap();
    let (all, plant) = (window.allocations(), PLANT_ALLOCATIONS.with(Cell::get) - plant_before);
    let trials = report.trials;
    drop(report);
    assert!(sender.waits() > 0, "the loop never waited for the telemetry analysis: the waiting path went untested");
    let (_, summary) = telemetry.finish().unwrap();
    assert_eq!(summary.trials() as usize, trials, "the analysis saw every trial the loop ran");
    Allocations { plexo: all - plant, plant, writes: rt.plant.writes, trials }
}

#[test]
fn runtime_loop_allocates_nothing_per_tick_or_per_trial() {
    let short = session_allocations(Physics::Articulated, 8.0);
    let long = session_allocations(Physics::Articulated, 40.0);
    assert!(long.trials > short.trials + 3, "the long run must cover more trials ({short:?} vs {long:?})");
    assert_eq!(
        short.plexo, long.plexo,
        "allocations differ between an 8 s and a 40 s session ({short:?} vs {long:?}): the loop allocates per tick or per trial"
    );
    assert_eq!((short.plant, long.plant), (0, 0), "the articulated plant allocates nothing in its calls");
}

#[test]
fn runtime_loop_on_the_default_rapier_plant_allocates_nothing_of_its_own() {
    let short = session_allocations(Physics::Rapier, 8.0);
    let long = session_allocations(Physics::Rapier, 40.0);
    assert!(long.trials > short.trials + 3, "the long run must cover more trials ({short:?} vs {long:?})");
    assert_eq!(
        short.plexo, long.plexo,
        "Plexo's allocations (outside the plant's calls) differ between an 8 s and a 40 s session ({short:?} vs {long:?})"
    );
    // Rapier's own per-step allocations (RapierPlant::write): bounded per step, 8 small buffers (17 above 1 rad/s).
    eprintln!("rapier: {} allocations in {} steps ({short:?})", long.plant, long.writes);
    assert!(long.plant <= 17 * long.writes, "rapier allocated {} times in {} steps", long.plant, long.writes);
}
