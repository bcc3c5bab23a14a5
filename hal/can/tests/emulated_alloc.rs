//! The sim-over-CAN tick (`SimOverCan::write` + `read`: `CanRobot` frames, stepped virtual buses, emulated
//! drives, plant) allocates nothing, also while every frame is recorded to a candump file (the buses only push
//! `Copy` records into the writer's bounded channel; the writer thread formats and writes). Counting global
//! allocator, current thread only.

use plexo_can::DriveProtocol;
use plexo_can::emulated::SimOverCan;
use plexo_can::testing::TestPlant;
use plexo_hal::{JointCommand, JointState, Robot};
use plexo_testkit::count_allocations;

plexo_testkit::install_counting_allocator!();

#[test]
fn sim_over_can_tick_allocates_nothing_while_recording_a_candump_file() {
    for protocol in [DriveProtocol::Mit, DriveProtocol::Cia402] {
        let plant = TestPlant::new(4, 0.05, 0.2, 0.002);
        let config = SimOverCan::<TestPlant>::default_config(plant.joints(), protocol, 500.0).unwrap();
        let mut sim = SimOverCan::new(plant, config).unwrap();
        let path = std::env::temp_dir().join(format!("plexo-alloc-{}-{}.log", std::process::id(), protocol.name()));
        sim.record_candump(&path).unwrap();
        sim.enable().unwrap();
        let mut state = JointState::zeros(4);
        let mut command = JointCommand::zeros(4);
        // Warm-up: first heartbeats, lazily initialised statics.
        for _ in 0..100 {
            sim.write(&command).unwrap();
            sim.read(&mut state).unwrap();
        }
        let allocations = count_allocations(|| {
            for k in 0..2000 {
                command.torque[k % 4] = 0.2 * ((k as f64) * 0.01).sin();
                sim.write(&command).unwrap();
                sim.read(&mut state).unwrap();
            }
        });
        assert_eq!(allocations, 0, "{protocol:?}: allocations in 2000 sim-over-CAN cycles");
        let summary = sim.finish_candump().unwrap();
        assert_eq!(summary.dropped, 0, "{protocol:?}");
        // The cycles did real work and all of it was recorded: ≥ 2 frames per joint per cycle.
        assert!(summary.written >= 2100 * 8, "{protocol:?}: {summary:?}");
        assert!(state.flags.iter().all(|f| f.is_empty()), "{protocol:?}: {:?}", state.flags);
        let lines = std::fs::read_to_string(&path).unwrap().lines().count() as u64;
        assert_eq!(lines, summary.written);
        std::fs::remove_file(&path).unwrap();
        // The counter does count on this thread.
        assert!(count_allocations(|| drop(std::hint::black_box(vec![0u8; 16]))) > 0);
    }
}
