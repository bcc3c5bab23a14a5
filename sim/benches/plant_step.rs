//! One 1 kHz step (`read` + `write`) of plexo-arm4 with the moderate patient reaching, for both plants. The
//! workload is plexo-testkit's `plant_step`; `examples/step_min.rs` times the same steps best-case.

use criterion::{Criterion, criterion_group, criterion_main};
use plexo_sim::{ArticulatedPlant, Integrator, PlantConfig, RapierOptions, RapierPlant, SensorParams, SimulatedPlant};
use plexo_testkit::plant_step::{Rig, moderate};
use plexo_testkit::robots::arm4;

fn bench<P: SimulatedPlant>(c: &mut Criterion, name: &str, plant: P) {
    let mut rig = Rig::new(plant);
    // Start mid-reach, caches warm.
    for _ in 0..1000 {
        rig.step();
    }
    c.bench_function(name, |b| b.iter(|| rig.step()));
}

fn benches(c: &mut Criterion) {
    let m = arm4();
    bench(c, "articulated_arm4_moderate_euler", ArticulatedPlant::new(&m, moderate()).expect("plant"));
    bench(
        c,
        "articulated_arm4_moderate_rk4",
        ArticulatedPlant::new(&m, moderate()).expect("plant").with_integrator(Integrator::Rk4),
    );
    let mut bare = PlantConfig::ideal(&m);
    bare.sensors = SensorParams::default();
    bench(c, "articulated_arm4_bare_euler", ArticulatedPlant::new(&m, bare).expect("plant"));
    bench(c, "rapier_arm4_moderate", RapierPlant::new(&m, moderate(), RapierOptions::default()).expect("plant"));
    let with_table = RapierOptions { arm_colliders: true, table: Some(Default::default()), ..Default::default() };
    bench(c, "rapier_arm4_moderate_table_contacts", RapierPlant::new(&m, moderate(), with_table).expect("plant"));
    let with_cuffs = RapierOptions { cuffs: Some(plexo_sim::CuffParams::default()), ..Default::default() };
    bench(c, "rapier_arm4_moderate_cuffs", RapierPlant::new(&m, moderate(), with_cuffs).expect("plant"));
}

criterion_group!(plant_step, benches);
criterion_main!(plant_step);
