//! Best-case cost of one 1 kHz plant step (`read` + `write`) of plexo-arm4 with the moderate patient reaching:
//! the minimum over 200 batches of 500 steps, robust on a loaded machine where criterion's means also measure the
//! load. The workload is the one of `benches/plant_step.rs` (plexo-testkit's `plant_step`).
//!
//! `cargo run --release -p plexo-sim --example step_min` prints a table; `... --example step_min -- <name> <steps>`
//! runs only `<name>` for `<steps>` steps (for `valgrind --tool=callgrind`, which counts instructions exactly).

use std::time::Instant;

use plexo_sim::{ArticulatedPlant, Integrator, PlantConfig, RapierOptions, RapierPlant, SensorParams};
use plexo_testkit::plant_step::{Rig, moderate};
use plexo_testkit::robots::arm4;

/// The benchmarked configurations, by name (the names of `benches/plant_step.rs`).
fn run(name: &str, f: &mut dyn FnMut(&mut dyn FnMut())) -> Result<(), Box<dyn std::error::Error>> {
    let m = arm4();
    match name {
        "articulated_arm4_moderate_euler" => {
            let mut rig = Rig::new(ArticulatedPlant::new(&m, moderate())?);
            f(&mut || rig.step());
        }
        "articulated_arm4_moderate_rk4" => {
            let mut rig = Rig::new(ArticulatedPlant::new(&m, moderate())?.with_integrator(Integrator::Rk4));
            f(&mut || rig.step());
        }
        "articulated_arm4_bare_euler" => {
            let mut bare = PlantConfig::ideal(&m);
            bare.sensors = SensorParams::default();
            let mut rig = Rig::new(ArticulatedPlant::new(&m, bare)?);
            f(&mut || rig.step());
        }
        "rapier_arm4_moderate" => {
            let mut rig = Rig::new(RapierPlant::new(&m, moderate(), RapierOptions::default())?);
            f(&mut || rig.step());
        }
        other => return Err(format!("unknown configuration `{other}`").into()),
    }
    Ok(())
}

const NAMES: [&str; 4] = [
    "articulated_arm4_moderate_euler",
    "articulated_arm4_moderate_rk4",
    "articulated_arm4_bare_euler",
    "rapier_arm4_moderate",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [name, steps] = args.as_slice() {
        let steps: u64 = steps.parse()?;
        return run(name, &mut |step| {
            for _ in 0..steps {
                step();
            }
        });
    }
    println!("| configuration | best µs/step | × real time |");
    println!("|---|---|---|");
    for name in NAMES {
        let mut best = f64::INFINITY;
        run(name, &mut |step| {
            // Warm-up: the patient is mid-reach and the caches are hot.
            for _ in 0..1000 {
                step();
            }
            for _ in 0..200 {
                let start = Instant::now();
                for _ in 0..500 {
                    step();
                }
                best = best.min(start.elapsed().as_secs_f64() / 500.0);
            }
        })?;
        println!("| `{name}` | {:.3} | {:.0}× |", best * 1e6, 1e-3 / best);
    }
    Ok(())
}
