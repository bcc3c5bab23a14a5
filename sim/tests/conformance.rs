//! Every simulated backend honours the `plexo_hal::Robot` contract (`plexo_hal::conformance`): the plants
//! directly and behind emulated CAN drives. Plus the `Fault` clause of the contract (hal/src/robot.rs): a
//! diverged plant refuses every write with an error of kind `Fault` and does not advance; over CAN the host keeps
//! polling torque-free, so the state stays observable.

use std::time::Duration;

use plexo_can::DriveProtocol;
use plexo_can::emulated::SimOverCan;
use plexo_hal::conformance::check_lifecycle_contract;
use plexo_hal::{ErrorKind, JointCommand, JointState, Lifecycle, Robot, RobotError};
use plexo_sim::{ArticulatedPlant, PlantConfig, RapierOptions, RapierPlant, SimulatedPlant};
use plexo_testkit::patients::profile;
use plexo_testkit::robots::arm4;

fn config() -> PlantConfig {
    PlantConfig::default().with_patient(profile("moderate"))
}

fn period() -> Option<Duration> {
    Some(PlantConfig::default().period)
}

#[test]
fn articulated_plant_honours_the_robot_contract() {
    let mut plant = ArticulatedPlant::new(&arm4(), config()).unwrap();
    let report = check_lifecycle_contract(&mut plant, period()).unwrap();
    assert!(report.writes >= 11, "{report:?}");
}

#[test]
fn rapier_plant_honours_the_robot_contract() {
    let mut plant = RapierPlant::new(&arm4(), config(), RapierOptions::default()).unwrap();
    check_lifecycle_contract(&mut plant, period()).unwrap();
}

#[test]
fn articulated_plant_over_can_honours_the_robot_contract_for_both_protocols() {
    for protocol in [DriveProtocol::Mit, DriveProtocol::Cia402] {
        let plant = ArticulatedPlant::new(&arm4(), config()).unwrap();
        let rate = 1.0 / PlantConfig::default().period.as_secs_f64();
        let can = SimOverCan::<ArticulatedPlant>::default_config(plant.joints(), protocol, rate).unwrap();
        let mut sim = SimOverCan::new(plant, can).unwrap();
        check_lifecycle_contract(&mut sim, period()).unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
    }
}

#[test]
fn a_diverged_plant_refuses_writes_without_advancing_while_can_keeps_polling() {
    let model = arm4();
    let mut plant = ArticulatedPlant::new(&model, config()).unwrap();
    plant.enable().unwrap();
    let q = plant.position().to_vec();
    // A finite but absurd velocity: the velocity-product terms overflow to non-finite in the first step.
    plant.set_state(&q, &[1e200, 0.0, 0.0, 0.0]).unwrap();
    let zero = JointCommand::zeros(4);
    assert_eq!(plant.write(&zero).unwrap_err().kind(), ErrorKind::Fault, "divergence is reported");
    assert_eq!(plant.lifecycle(), Lifecycle::Fault);
    let t = plant.time();
    for _ in 0..3 {
        let e = plant.write(&zero).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Fault, "{e}");
    }
    assert_eq!(plant.time(), t, "a diverged plant does not advance");
    let mut state = JointState::zeros(4);
    plant.read(&mut state).unwrap();
    assert!(state.is_finite(), "the last finite state is reported");
    assert!(state.flags.iter().all(|f| f.is_fault()), "{:?}", state.flags);
    plant.reset().unwrap();
    assert_eq!(plant.lifecycle(), Lifecycle::Disabled);

    // CanRobot in Fault: zero commands are accepted and pace the cycle (the drives are polled torque-free).
    let plant = ArticulatedPlant::new(&model, config()).unwrap();
    let can = SimOverCan::<ArticulatedPlant>::default_config(plant.joints(), DriveProtocol::Mit, 1000.0).unwrap();
    let mut sim = SimOverCan::new(plant, can).unwrap();
    sim.enable().unwrap();
    sim.buses()[0].inject(plexo_can::FaultRule {
        fault: plexo_can::Fault::BusOff,
        matches: plexo_can::FrameMatch::FromNode(plexo_can::NodeId(1)),
        count: 1,
    });
    let _ = sim.write(&zero); // goes bus-off
    assert!(sim.read(&mut state).is_err());
    assert_eq!(sim.lifecycle(), Lifecycle::Fault);
    sim.reset().unwrap();
    sim.enable().unwrap();
    sim.write(&zero).unwrap();
    sim.read(&mut state).unwrap();
    // A reply timeout latches Fault on every bus; the other bus (the second pair of joints) still answers.
    sim.buses()[0].inject(plexo_can::FaultRule {
        fault: plexo_can::Fault::Drop,
        matches: plexo_can::FrameMatch::FromNode(plexo_can::NodeId(0)),
        count: u32::MAX,
    });
    for _ in 0..3 {
        let _ = sim.write(&zero);
        let _ = sim.read(&mut state); // the 3rd read reports the timeout
    }
    assert_eq!(sim.lifecycle(), Lifecycle::Fault);
    let before = state.stamp;
    for _ in 0..3 {
        sim.write(&zero).unwrap();
        let _ = sim.read(&mut state); // still faulted: no news
    }
    assert_eq!(state.stamp - before, 3 * PlantConfig::default().period, "paces in Fault");
    assert!(state.position[2].is_finite(), "joints on the healthy bus stay observable");
}
