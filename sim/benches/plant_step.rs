//! One 1 kHz step of plexo-arm4 with the moderate patient, for both plants.

use criterion::{Criterion, criterion_group, criterion_main};
use plexo_hal::{JointCommand, JointState, Robot};
use plexo_kinematics::Model;
use plexo_sim::{ArticulatedPlant, Integrator, PatientProfile, PlantConfig, RapierOptions, RapierPlant};

fn model() -> Model {
    Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").expect("embedded")).expect("valid URDF")
}

fn config() -> PlantConfig {
    PlantConfig::default().with_patient(PatientProfile::builtin("moderate").expect("embedded profile"))
}

fn run<R: Robot>(c: &mut Criterion, name: &str, mut plant: R, set_target: impl FnOnce(&mut R)) {
    plant.enable().ok();
    set_target(&mut plant);
    let mut state = JointState::zeros(plant.dof());
    let mut command = JointCommand::zeros(plant.dof());
    command.torque[1] = 2.0;
    c.bench_function(name, |b| {
        b.iter(|| {
            plant.read(&mut state).ok();
            plant.write(std::hint::black_box(&command)).ok();
        })
    });
}

fn benches(c: &mut Criterion) {
    use plexo_sim::SimulatedPlant;
    let target = |p: &mut dyn SimulatedPlant| {
        if let Some(patient) = p.patient_mut() {
            patient.set_target(&[0.3, 0.5, 0.0, 1.2], 2.0).ok();
        }
    };
    let m = model();
    run(c, "articulated_arm4_moderate_euler", ArticulatedPlant::new(&m, config()).expect("plant"), |p| target(p));
    run(
        c,
        "articulated_arm4_moderate_rk4",
        ArticulatedPlant::new(&m, config()).expect("plant").with_integrator(Integrator::Rk4),
        |p| target(p),
    );
    let mut bare = PlantConfig::ideal(&m);
    bare.sensors = plexo_sim::SensorParams::default();
    let mut ideal_motors = PlantConfig::ideal(&m).with_patient(PatientProfile::builtin("moderate").expect("embedded"));
    ideal_motors.sensors = plexo_sim::SensorParams::default();
    run(
        c,
        "articulated_arm4_moderate_no_rotor_inertia_aba_euler",
        ArticulatedPlant::new(&m, ideal_motors).expect("plant"),
        |p| target(p),
    );
    run(c, "articulated_arm4_bare_aba_euler", ArticulatedPlant::new(&m, bare).expect("plant"), |p| target(p));
    run(c, "rapier_arm4_moderate", RapierPlant::new(&m, config(), RapierOptions::default()).expect("plant"), |p| {
        target(p)
    });
    let with_table = RapierOptions { arm_colliders: true, table: Some(Default::default()), ..Default::default() };
    run(c, "rapier_arm4_moderate_table_contacts", RapierPlant::new(&m, config(), with_table).expect("plant"), |p| {
        target(p)
    });
    let with_cuffs = RapierOptions { cuffs: Some(plexo_sim::CuffParams::default()), ..Default::default() };
    run(c, "rapier_arm4_moderate_cuffs", RapierPlant::new(&m, config(), with_cuffs).expect("plant"), |p| target(p));
}

criterion_group!(plant_step, benches);
criterion_main!(plant_step);
