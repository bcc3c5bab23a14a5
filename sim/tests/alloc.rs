//! Allocation-freedom of `read`/`write` (counting global allocator; one test binary, this one).
//!
//! ArticulatedPlant: zero allocations per step, asserted. RapierPlant: rapier 0.36's `PhysicsPipeline::step`
//! allocates internally every step — 8 buffers, at the sites listed on `RapierPlant::write` (LU copies in
//! `Multibody::update_mass_matrix`, the solver's velocity vectors, the stage-sync cursors, the modified-bodies
//! list) — and 9 more when a joint moves faster than 1e-3/dt (the "implicit Coriolis divergence" guard of
//! `Multibody::update_acceleration`); none can be avoided through rapier's API. The count is measured and bounded
//! here, and the numbers are recorded in sim/BENCHMARKS.md.

use plexo_hal::{JointCommand, JointState, Robot};
use plexo_sim::{ArticulatedPlant, Integrator, PlantConfig, RapierOptions, RapierPlant, SimulatedPlant};
use plexo_testkit::count_allocations;
use plexo_testkit::patients::profile;
use plexo_testkit::robots::{arm4, impedance_hold};

plexo_testkit::install_counting_allocator!();

/// Runs `steps` control periods with the patient reaching, the way the runtime does.
fn drive<P: SimulatedPlant>(plant: &mut P, steps: usize, state: &mut JointState, cmd: &mut JointCommand) {
    for k in 0..steps {
        plant.read(state).unwrap();
        cmd.torque[1] = 3.0 + (k as f64 * 0.01).sin();
        plant.write(cmd).unwrap();
    }
}

fn prepared<P: SimulatedPlant>(plant: &mut P) -> (JointState, JointCommand) {
    plant.enable().unwrap();
    plant.patient_mut().unwrap().set_target(&[0.6, 0.9, 0.3, 1.4], 1.0).unwrap();
    (JointState::zeros(plant.dof()), JointCommand::zeros(plant.dof()))
}

#[test]
fn articulated_plant_read_write_and_patient_api_do_not_allocate() {
    let model = arm4();
    for integrator in [Integrator::SemiImplicitEuler, Integrator::Rk4] {
        let mut plant = ArticulatedPlant::new(&model, PlantConfig::default().with_patient(profile("spastic")))
            .unwrap()
            .with_integrator(integrator);
        let (mut state, mut cmd) = prepared(&mut plant);
        drive(&mut plant, 10, &mut state, &mut cmd); // warm-up
        let n = count_allocations(|| {
            drive(&mut plant, 2000, &mut state, &mut cmd);
            let p = plant.patient_mut().unwrap();
            p.end_trial(&plexo_sim::TrialOutcome { error: 0.1, success: true, duration: 2.0 }).unwrap();
            p.set_target(&[0.2, 0.3, 0.0, 0.8], 1.0).unwrap();
            p.clear_target();
            drive(&mut plant, 500, &mut state, &mut cmd);
        });
        assert_eq!(n, 0, "{integrator:?}: {n} allocations in 2500 steps");
        assert!(plant.velocity().iter().any(|v| v.abs() > 0.1), "the arm must move during the test");
    }
}

#[test]
fn articulated_plant_without_rotor_inertia_does_not_allocate() {
    let model = arm4();
    let mut config = PlantConfig::ideal(&model).with_patient(profile("moderate"));
    config.sensors = plexo_sim::SensorParams::default();
    let mut plant = ArticulatedPlant::new(&model, config).unwrap();
    let (mut state, mut cmd) = prepared(&mut plant);
    drive(&mut plant, 10, &mut state, &mut cmd);
    assert_eq!(count_allocations(|| drive(&mut plant, 2000, &mut state, &mut cmd)), 0);
}

#[test]
fn rapier_plant_allocations_are_rapier_internal_and_bounded() {
    let model = arm4();
    let mut plant =
        RapierPlant::new(&model, PlantConfig::default().with_patient(profile("moderate")), RapierOptions::default())
            .unwrap();
    let (mut state, mut cmd) = prepared(&mut plant);
    drive(&mut plant, 10, &mut state, &mut cmd);
    // Held still by the drives' impedance loop (all joint speeds < 1 rad/s): rapier's fixed per-step allocations only
    // (measured 8 per step).
    let hold = [0.3, 0.4, 0.0, 0.9];
    plant.patient_mut().unwrap().clear_target();
    plant.set_state(&hold, &[0.0; 4]).unwrap();
    let held = impedance_hold(&hold, 100.0, 3.0);
    let slow = count_allocations(|| {
        for _ in 0..200 {
            plant.read(&mut state).unwrap();
            plant.write(&held).unwrap();
        }
    });
    let zero = JointCommand::zeros(4);
    let max_speed = plant.velocity().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
    assert!(max_speed < 1.0, "precondition: slow motion ({max_speed} rad/s)");
    eprintln!("rapier: {slow} allocations in 200 slow steps");
    // Every other code path of write() (core, motors, sensors, patient) is shared with ArticulatedPlant, which
    // is proven allocation-free above: these come from rapier's step. Bounded, constant per step.
    assert!(slow <= 200 * 16, "rapier allocated {slow} times in 200 slow steps");
    // Fast motion: rapier's divergence guard allocates a bounded number of buffers per step.
    plant.set_state(&[0.3, 0.4, 0.0, 0.9], &[0.0, 2.0, 0.0, 2.0]).unwrap();
    let fast = count_allocations(|| {
        for _ in 0..20 {
            plant.read(&mut state).unwrap();
            plant.write(&zero).unwrap();
        }
    });
    eprintln!("rapier: {fast} allocations in 20 fast steps");
    assert!(fast <= 20 * 24, "rapier allocated {fast} times in 20 fast steps");
}

#[test]
fn rapier_plant_with_cuffs_adds_no_allocations_of_its_own() {
    let model = arm4();
    let hold = [0.3, 0.4, 0.0, 0.9];
    let held = impedance_hold(&hold, 100.0, 3.0);
    let mut counts = Vec::new();
    for cuffs in [None, Some(plexo_sim::CuffParams::default())] {
        let options = RapierOptions { cuffs, ..RapierOptions::default() };
        let mut plant =
            RapierPlant::new(&model, PlantConfig::default().with_patient(profile("moderate")), options).unwrap();
        let (mut state, _) = prepared(&mut plant);
        plant.patient_mut().unwrap().clear_target();
        plant.set_state(&hold, &[0.0; 4]).unwrap();
        for _ in 0..300 {
            plant.write(&held).unwrap(); // let the arm settle into the cuffs
        }
        let n = count_allocations(|| {
            for _ in 0..200 {
                plant.read(&mut state).unwrap();
                plant.write(&held).unwrap();
            }
        });
        let max_speed = plant.velocity().iter().fold(0.0_f64, |m, v| m.max(v.abs()));
        assert!(max_speed < 1.0, "precondition: slow motion ({max_speed} rad/s)");
        assert!(state.interaction_torque.is_some() == cuffs.is_some());
        counts.push(n);
    }
    eprintln!("rapier 200 slow steps: rigid {} allocations, cuffs {} allocations", counts[0], counts[1]);
    // The cuff code (human arm state, cuff wrenches, Jacobians, sensor noise) is fixed-size arithmetic on
    // buffers allocated at construction; rapier's step allocates per multibody and the human arm is a second
    // multibody (measured 9 → 14 per step, sim/BENCHMARKS.md). Same per-step bound as the rigid test.
    assert!(counts[1] <= 200 * 16, "cuffs: {} allocations in 200 steps (rigid {})", counts[1], counts[0]);
}
