//! Closed-loop rigs: the controller, the safety supervisor and a simulated plant with a virtual patient, run as
//! the runtime runs them (`read → Controller::update → SafetySupervisor::apply → write`); the configurations, ranges
//! of motion and target sets the controller's tests share; the tick workload of the benchmarks.

use std::time::Duration;

use plexo_controller::{
    AanLaw, Controller, ControllerConfig, MinimumJerk, Mode, ModeSettings, RomLimit, SafetyOutcome, SafetySupervisor,
    Space, TargetKind, TargetSetSpec, TaskReference,
};
use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Robot};
use plexo_kinematics::Model;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;
use plexo_sim::{ArticulatedPlant, PatientProfile, PatientState, SimulatedPlant};

use crate::patients::{at_rest_config, profile};
use crate::robots::{DT, HOME, arm4};

/// The default controller configuration tuned to the sim plant's default actuators (plexo-sim
/// `MotorParams::default`): their identified friction (Coulomb 0.15 Nm, viscous 0.02 Nm·s/rad) is compensated and
/// removed from the observer's motor torque.
pub fn sim_actuator_config() -> ControllerConfig {
    let mut cfg = ControllerConfig::default_config().expect("default controller configuration");
    cfg.friction.coulomb = vec![0.15; 4];
    cfg.friction.viscous = vec![0.02; 4];
    cfg.friction.smoothing_velocity = 0.05;
    cfg.observer.subtract_friction = true;
    cfg
}

/// The patient's measured range of motion on `robot` [rad], in the model's joint order.
pub fn patient_rom(robot: &Model, profile: &PatientProfile) -> Vec<RomLimit> {
    robot
        .joints()
        .iter()
        .map(|j| {
            let r = profile.range_of(&j.name).expect("the profile measures every robot joint");
            RomLimit { min: r[0], max: r[1] }
        })
        .collect()
}

/// The URDF's position limits as a range of motion [rad] (a patient who can use the robot's whole range).
pub fn urdf_rom(model: &Model) -> Vec<RomLimit> {
    model.joints().iter().map(|j| RomLimit { min: j.limits.lower, max: j.limits.upper }).collect()
}

/// The target set "elbow" of the controller's protocol tests: elbow range-of-motion targets at half the range
/// about [`HOME`] (two trials per repetition: low end, high end).
pub fn elbow_rom_targets() -> TargetSetSpec {
    TargetSetSpec {
        name: "elbow".into(),
        kind: TargetKind::JointRom,
        home: HOME.to_vec(),
        count: None,
        radius_fraction: None,
        radius_cap: None,
        rom_margin: None,
        joint: Some("elbow_flexion".into()),
        range_fraction: Some(0.5),
    }
}

/// plexo-arm4 with a virtual patient on the articulated plant, the controller and the supervisor: one closed loop
/// as the runtime runs it. The fields are public: tests inspect the plant's true state, switch modes, inject faults.
pub struct ClosedLoop {
    /// The robot model (plexo-arm4).
    pub robot: Model,
    /// The simulated plant with the patient.
    pub plant: ArticulatedPlant,
    /// The controller under test.
    pub controller: Controller,
    /// The safety supervisor between controller and plant.
    pub supervisor: SafetySupervisor,
    /// The last measured state.
    pub state: JointState,
    /// The patient's range of motion given to the supervisor [rad].
    pub rom: Vec<RomLimit>,
    /// Controller time [s], advanced by [`DT`] each tick.
    pub t: f64,
}

impl ClosedLoop {
    /// The situation before a therapist enables the robot: the built-in `patient` on plexo-arm4 starts at its
    /// rest posture with the drives off and settles for 4 s under gravity and its passive tissue; controller
    /// (configuration `cfg`, the patient's anthropometrics) and supervisor (the patient's range of motion) are
    /// built, not started. `patient_state` resumes a virtual patient saved by an earlier session.
    pub fn resting(patient: &str, cfg: &ControllerConfig, patient_state: Option<PatientState>) -> Self {
        let robot = arm4();
        let profile = profile(patient);
        let mut plant = ArticulatedPlant::new(&robot, at_rest_config(&robot, &profile)).expect("plant");
        if let Some(s) = patient_state {
            plant.patient_mut().expect("a patient").restore(s).expect("saved patient state");
        }
        let arm = ArmAnthropometrics::from_height_mass(profile.spec.height, profile.spec.mass).expect("body size");
        let controller = Controller::new(&robot, cfg, &arm, "test").expect("controller");
        let rom = patient_rom(&robot, &profile);
        let supervisor = SafetySupervisor::new(&cfg.safety, plant.joints(), Some(&rom)).expect("supervisor");
        let mut state = JointState::zeros(4);
        plant.read(&mut state).expect("read");
        let mut rig = Self { robot, plant, controller, supervisor, state, rom, t: 0.0 };
        for _ in 0..4000 {
            rig.plant.write(&JointCommand::zeros(4)).expect("write");
        }
        rig
    }

    /// Enables as the runtime does: drives on, controller restarted on the measured state, supervisor soft start
    /// while holding the measured posture, until the supervisor is Active. Returns the outcome of the first tick.
    pub fn enable(&mut self) -> SafetyOutcome {
        self.plant.enable().expect("enable");
        self.plant.read(&mut self.state).expect("read");
        self.controller.start(&self.state);
        self.supervisor.request_enable().expect("request enable");
        let hold = TaskReference::hold(&self.state.position);
        let first = self.step(&hold);
        if !matches!(first, SafetyOutcome::Active { .. }) {
            while !matches!(self.step(&hold), SafetyOutcome::Active { .. }) {}
        }
        first
    }

    /// One runtime tick with `reference`: read, controller update at [`ClosedLoop::t`], supervisor, write;
    /// advances `t` by [`DT`]. Returns the supervisor's outcome.
    pub fn step(&mut self, reference: &TaskReference) -> SafetyOutcome {
        self.plant.read(&mut self.state).expect("read");
        let mut cmd = self.controller.update(&self.state, reference, self.t);
        let outcome = self.supervisor.apply(&self.state, self.controller.report(), &mut cmd, self.now());
        self.plant.write(&cmd).expect("write");
        self.t += DT;
        outcome
    }

    /// The supervisor's clock: 1 s plus the measured state's stamp.
    pub fn now(&self) -> Duration {
        Duration::from_secs(1) + self.state.stamp
    }

    /// The plant's true joint positions [rad].
    pub fn true_q(&self) -> JointArray<f64> {
        JointArray::from_slice(self.plant.position()).expect("4 joints")
    }

    /// The passive move from the measured posture to [`HOME`] in 3 s (minimum jerk), as a session's first trial
    /// does; sample it at `k * DT` for 3500 ticks.
    pub fn to_home(&self) -> MinimumJerk {
        MinimumJerk {
            start: self.state.position,
            target: JointArray::from_slice(&HOME).expect("4 joints"),
            duration: 3.0,
        }
    }
}

/// The benchmarked control tick's workload on plexo-arm4: controller (default configuration without soft start,
/// a 1.75 m / 75 kg patient, `mode`/`law`/`space` at 70 % arm support), an enabled supervisor with the URDF's
/// limits as range of motion, a moving state and a reference with velocity, acceleration and target offsets.
pub struct TickWorkload {
    /// The controller in the benchmarked mode.
    pub controller: Controller,
    /// The supervisor, enable requested.
    pub supervisor: SafetySupervisor,
    /// The measured state [rad], [rad/s].
    pub state: JointState,
    /// The task reference.
    pub reference: TaskReference,
}

impl TickWorkload {
    /// Builds the workload for one mode and law (see the type's documentation).
    pub fn new(mode: Mode, law: AanLaw, space: Space) -> Self {
        let model = arm4();
        let mut config = ControllerConfig::default_config().expect("default controller configuration");
        config.safety.soft_start_time = 0.0;
        let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).expect("body size");
        let mut controller = Controller::new(&model, &config, &arm, "default").expect("controller");
        controller
            .set_mode(ModeSettings { mode, law, space, arm_support: 0.7, error_gain: None })
            .expect("mode settings");
        let joints = JointInfo::from_model(&model);
        let rom: Vec<RomLimit> = joints.iter().map(|j| RomLimit { min: j.position_min, max: j.position_max }).collect();
        let mut supervisor = SafetySupervisor::new(&config.safety, &joints, Some(&rom)).expect("supervisor");
        supervisor.request_enable().expect("request enable");
        let mut state = JointState::zeros(4);
        state.position.copy_from_slice(&[0.3, 0.6, 0.05, 1.2]);
        state.velocity.copy_from_slice(&[0.1, -0.2, 0.05, 0.3]);
        let mut reference = TaskReference::hold(&state.position);
        reference.position[3] += 0.05;
        reference.velocity[1] = 0.2;
        reference.acceleration[1] = 0.5;
        reference.phase = 0.4;
        reference.target[3] += 0.5;
        Self { controller, supervisor, state, reference }
    }
}
