//! The control tick allocates nothing: the whole runtime loop (plant read, therapy update, supervisor, plant
//! write, trial/block bookkeeping, telemetry send — the lossless sender's waits included —, patient hooks) is run for two session lengths and the
//! allocations counted on the control thread must be identical — every allocation is set-up or teardown.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use plexo::runtime::{LoopConfig, LoopSignals, Runtime, run_session};
use plexo::setup;
use plexo::telemetry::{Sinks, Telemetry, TelemetryConfig};
use plexo_hal::Robot;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PlantConfig};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a thread-local Cell (no allocation, no locking).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> usize {
    ALLOCATIONS.with(|c| c.get())
}

/// Allocations on this thread for one session of `seconds` of session time (setup excluded, loop and teardown
/// included).
fn session_allocations(seconds: f64) -> (usize, u64) {
    let robot = setup::load_robot("plexo-arm4").unwrap();
    let patient = setup::load_patient("moderate").unwrap();
    let protocol = setup::load_protocol("center-out").unwrap();
    let controller = setup::load_controller(None).unwrap();
    let (model, urdf) = &robot.value;
    let rom = setup::patient_rom(model, &patient).unwrap();
    let rest = setup::patient_rest(model, &patient).unwrap();
    let arm = ArmAnthropometrics::from_height_mass(patient.value.spec.height, patient.value.spec.mass).unwrap();
    let config =
        PlantConfig { initial_position: Some(rest), ..PlantConfig::default() }.with_patient(patient.value.clone());
    let plant = ArticulatedPlant::new(model, config).unwrap();
    let parts = setup::build_session(model, &controller, &protocol, &arm, &rom, plant.joints()).unwrap();
    let telemetry = Telemetry::start(TelemetryConfig {
        session_name: "no-alloc".into(),
        model: model.clone(),
        urdf: urdf.clone(),
        handle_frame: "handle".into(),
        block_names: parts.block_names.clone(),
        block_targets: parts.block_targets.clone(),
        pose_every: 10,
        // Small, so the lossless sender of an unpaced run (the default `plexo sim`) waits for the writer.
        capacity: 64,
        sinks: Sinks::default(),
    })
    .unwrap();
    let sender = telemetry.sender_for(false);
    let mut rt = Runtime {
        plant,
        therapy: parts.therapy,
        supervisor: parts.supervisor,
        model: model.clone(),
        handle: parts.handle,
    };
    let mut loop_config = LoopConfig::new(Duration::from_millis(1));
    loop_config.max_session_time = Some(seconds);
    let signals = LoopSignals::default();
    let before = allocations();
    let report = run_session(&mut rt, &loop_config, &sender, &signals).unwrap();
    let used = allocations() - before;
    let trials = u64::from(report.summary.trials());
    drop(report);
    assert!(sender.waits() > 0, "the loop never waited for the telemetry writer: the waiting path went untested");
    telemetry.finish().unwrap();
    (used, trials)
}

#[test]
fn runtime_loop_allocates_nothing_per_tick_or_per_trial() {
    let (short, short_trials) = session_allocations(8.0);
    let (long, long_trials) = session_allocations(40.0);
    assert!(long_trials > short_trials + 3, "the long run must cover more trials ({short_trials} vs {long_trials})");
    assert_eq!(
        short, long,
        "allocations differ between an 8 s and a 40 s session ({short} vs {long}): the loop allocates per tick or per trial"
    );
}
