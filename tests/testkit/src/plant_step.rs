//! The workload of one benchmarked plant step, shared by plexo-sim's `benches/plant_step.rs` (criterion) and
//! `examples/step_min.rs` (best-case timing, callgrind): plexo-arm4 held by a compliant drive-side impedance
//! (MIT mode, 30 Nm/rad about mid-range) while the virtual patient reaches for alternating targets, a new one every
//! 2 s, so it keeps reaching instead of settling.

use plexo_hal::{JointCommand, JointState};
use plexo_sim::{PlantConfig, SimulatedPlant};

use crate::patients::profile;
use crate::robots::drive_impedance;

/// Targets the patient reaches for, alternating every [`RETARGET_STEPS`] steps [rad].
const TARGETS: [[f64; 4]; 2] = [[0.3, 0.5, 0.0, 1.2], [0.15, 0.8, 0.2, 0.9]];
/// Steps between new targets (2 s at 1 kHz).
const RETARGET_STEPS: u64 = 2000;

/// One plant with the command and state buffers of the loop that drives it.
pub struct Rig<P> {
    plant: P,
    state: JointState,
    command: JointCommand,
    steps: u64,
}

impl<P: SimulatedPlant> Rig<P> {
    /// Enables the plant. Panics on error: a benchmark of a plant that did not start measures nothing.
    pub fn new(mut plant: P) -> Self {
        plant.enable().expect("plant enable");
        let n = plant.dof();
        let mut command = JointCommand::zeros(n);
        command.drive_impedance = Some(drive_impedance(&[0.2, 0.6, 0.1, 1.0], &[0.0; 4], 30.0, 2.0));
        Self { plant, state: JointState::zeros(n), command, steps: 0 }
    }

    /// One control period: `read` + `write` (and a new target every 2 s). Panics on any plant error: a faulted
    /// plant returns early from `write` and must not be timed as if it had stepped.
    #[inline(never)]
    pub fn step(&mut self) {
        if self.steps.is_multiple_of(RETARGET_STEPS)
            && let Some(patient) = self.plant.patient_mut()
        {
            let goal = TARGETS[(self.steps / RETARGET_STEPS) as usize % TARGETS.len()];
            patient.set_target(&goal, 1.5).expect("valid target");
        }
        self.plant.read(&mut self.state).expect("plant read");
        self.plant.write(std::hint::black_box(&self.command)).expect("plant write");
        self.steps += 1;
    }
}

/// Default motors and sensors with the moderate patient.
pub fn moderate() -> PlantConfig {
    PlantConfig::default().with_patient(profile("moderate"))
}
