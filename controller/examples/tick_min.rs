//! Best-case cost of one full control tick (`Controller::update` + `SafetySupervisor::apply`) on plexo-arm4 in
//! every mode and AAN law: the minimum over 300 batches of 300 ticks.
//!
//! Criterion (`cargo bench -p plexo-controller --bench tick`) reports wall-clock medians, which on a shared,
//! loaded machine measure the load as much as the code; the minimum over many short batches is a robust
//! estimate of the undisturbed cost. Run with `cargo run --release -p plexo-controller --example tick_min`.
//!
//! `cargo run --release -p plexo-controller --example tick_min -- <case> <ticks>` runs only `ticks` ticks of
//! one case without timing, for instruction counts with
//! `valgrind --tool=callgrind target/release/examples/tick_min <case> 100000`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use plexo_controller::{AanLaw, Controller, Mode, SafetySupervisor, Space, TaskReference};
use plexo_hal::JointState;
use plexo_testkit::rig::TickWorkload;

/// Every mode and law, named as in the criterion bench.
const CASES: [(&str, Mode, AanLaw, Space); 10] = [
    ("aan_emken", Mode::ActiveAssisted, AanLaw::Emken, Space::Joint),
    ("aan_fixed", Mode::ActiveAssisted, AanLaw::Fixed, Space::Joint),
    ("aan_rbf", Mode::ActiveAssisted, AanLaw::Rbf, Space::Joint),
    ("aan_tunnel", Mode::ActiveAssisted, AanLaw::Tunnel, Space::Joint),
    ("passive_joint_ff", Mode::Passive, AanLaw::Fixed, Space::Joint),
    ("passive_cartesian", Mode::Passive, AanLaw::Fixed, Space::Cartesian),
    ("transparent", Mode::Transparent, AanLaw::Fixed, Space::Joint),
    ("resistive", Mode::Resistive, AanLaw::Fixed, Space::Joint),
    ("error_augmentation", Mode::ErrorAugmentation, AanLaw::Fixed, Space::Joint),
    ("rest_hold", Mode::Passive, AanLaw::Fixed, Space::Joint),
];

struct Case {
    controller: Controller,
    supervisor: SafetySupervisor,
    state: JointState,
    reference: TaskReference,
    now: Duration,
    t: f64,
}

impl Case {
    fn new(mode: Mode, law: AanLaw, space: Space) -> Self {
        let TickWorkload { controller, supervisor, state, reference } = TickWorkload::new(mode, law, space);
        Self { controller, supervisor, state, reference, now: Duration::from_secs(1), t: 0.0 }
    }

    #[inline(never)]
    fn tick(&mut self) {
        self.t += 0.001;
        self.now += Duration::from_millis(1);
        self.state.stamp = self.now;
        self.state.position[0] += 1e-9; // never frozen
        let mut cmd = self.controller.update(black_box(&self.state), black_box(&self.reference), self.t);
        black_box(self.supervisor.apply(&self.state, self.controller.report(), &mut cmd, self.now));
        black_box(&cmd);
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [name, ticks] = args.as_slice() {
        let (_, mode, law, space) =
            CASES.iter().find(|c| c.0 == name).ok_or_else(|| format!("unknown case `{name}`"))?;
        let mut case = Case::new(*mode, *law, *space);
        if name == "rest_hold" {
            case.reference = TaskReference::hold(&case.state.position);
        }
        for _ in 0..ticks.parse::<u64>()? {
            case.tick();
        }
        return Ok(());
    }
    println!("| case | best case per tick |");
    println!("|---|---|");
    for (name, mode, law, space) in CASES {
        let mut case = Case::new(mode, law, space);
        if name == "rest_hold" {
            case.reference = TaskReference::hold(&case.state.position);
        }
        let mut best = f64::INFINITY;
        for _ in 0..300 {
            let start = Instant::now();
            for _ in 0..300 {
                case.tick();
            }
            best = best.min(start.elapsed().as_nanos() as f64 / 300.0);
        }
        println!("| {name} | {:.0} ns |", best);
    }
    Ok(())
}
