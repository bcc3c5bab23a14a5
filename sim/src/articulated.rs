//! [`ArticulatedPlant`]: the robot (and rigidly attached arm) integrated with plexo-kinematics' dynamics —
//! the fast plant for sweeps and the independent cross-check of [`crate::RapierPlant`].

use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Lifecycle, Robot};
use plexo_kinematics::{Data, Model};

use crate::core::{Models, PatientCoupling, PlantConfig, PlantCore, initial_position};
use crate::patient::Patient;
use crate::{SimError, SimulatedPlant};

/// Time integrator of the [`ArticulatedPlant`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Integrator {
    /// Semi-implicit (symplectic) Euler: `v ← v + dt·q̈(q, v)`, `q ← q + dt·v` — the scheme rapier uses; one
    /// dynamics evaluation per step.
    #[default]
    SemiImplicitEuler,
    /// Classical 4th-order Runge–Kutta with the torque held over the period (zero-order hold, as a drive);
    /// four dynamics evaluations per step.
    Rk4,
}

/// Forward dynamics `q̈ = (M(q) + diag(armature))⁻¹ (τ − C(q, q̇) q̇ − g(q))` by plexo-kinematics' articulated-body
/// algorithm ([`plexo_kinematics::aba`], O(n)) on the model with the reflected rotor inertias as joint armature
/// ([`Model::with_armature`]). Allocation-free.
#[derive(Clone, Debug)]
struct Dynamics {
    /// The integrated model with armature.
    model: Model,
    data: Data,
    armature: JointArray<f64>,
}

impl Dynamics {
    fn new(model: &Model, armature: JointArray<f64>) -> Result<Self, SimError> {
        let model = model.with_armature(&armature)?;
        Ok(Self { data: Data::new(&model), model, armature })
    }

    /// Joint accelerations [rad/s²] into `out`; false if the mass matrix is singular (the result is non-finite).
    fn accel(&mut self, q: &[f64], v: &[f64], tau: &[f64], out: &mut [f64]) -> bool {
        let ddq = plexo_kinematics::aba(&self.model, &mut self.data, q, v, tau);
        out.copy_from_slice(ddq.as_slice());
        out.iter().all(|a| a.is_finite())
    }
}

/// The plant integrated with plexo-kinematics (see [`Integrator`]); implements [`Robot`].
///
/// Joint limits are hard stops: a joint that passes its limit is put back on it and its outward velocity is set
/// to zero (perfectly inelastic, joint-local). Simulated time advances one period per `write`.
///
/// ```
/// use plexo_hal::{JointCommand, JointState, Robot};
/// use plexo_sim::{ArticulatedPlant, PatientProfile, PlantConfig};
///
/// let model = plexo_kinematics::Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap())?;
/// let config = PlantConfig::default().with_patient(PatientProfile::builtin("moderate")?);
/// let mut plant = ArticulatedPlant::new(&model, config)?;
/// plant.enable()?;
/// let mut state = JointState::zeros(plant.dof());
/// for _ in 0..100 {
///     plant.read(&mut state)?;
///     plant.write(&JointCommand::zeros(plant.dof()))?;
/// }
/// assert!((state.stamp.as_secs_f64() - 0.099).abs() < 1e-9);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ArticulatedPlant {
    model: Model,
    dynamics: Dynamics,
    energy_data: Data,
    core: PlantCore,
    integrator: Integrator,
    q: JointArray<f64>,
    v: JointArray<f64>,
    lower: JointArray<f64>,
    upper: JointArray<f64>,
}

impl ArticulatedPlant {
    /// Builds the plant from the robot model (the patient's arm is attached rigidly when `config.patient` is
    /// set). Not real-time safe.
    pub fn new(model: &Model, config: PlantConfig) -> Result<Self, SimError> {
        let models = Models::new(model, &config, true)?;
        let core = PlantCore::new(&models, &config)?;
        let n = model.nv();
        let q0 = initial_position(model, &config)?;
        let mut lower = JointArray::splat(n, 0.0);
        let mut upper = JointArray::splat(n, 0.0);
        for (i, j) in model.joints().iter().enumerate() {
            lower[i] = j.limits.lower;
            upper[i] = j.limits.upper;
        }
        let dynamics = Dynamics::new(&models.loaded, core.motors.armature())?;
        let mut plant = Self {
            energy_data: Data::new(&dynamics.model),
            model: models.loaded,
            dynamics,
            core,
            integrator: Integrator::default(),
            q: JointArray::splat(n, 0.0),
            v: JointArray::splat(n, 0.0),
            lower,
            upper,
        };
        plant.set_state(&q0, &vec![0.0; n])?;
        Ok(plant)
    }

    /// Selects the integrator (builder style).
    pub fn with_integrator(mut self, integrator: Integrator) -> Self {
        self.integrator = integrator;
        self
    }

    /// The integrator in use.
    pub fn integrator(&self) -> Integrator {
        self.integrator
    }

    fn integrate(&mut self, tau: &JointArray<f64>) -> bool {
        let n = self.q.len();
        let dt = self.core.dt;
        let mut a = JointArray::splat(n, 0.0);
        match self.integrator {
            Integrator::SemiImplicitEuler => {
                if !self.dynamics.accel(&self.q, &self.v, tau, &mut a) {
                    return false;
                }
                for i in 0..n {
                    self.v[i] += dt * a[i];
                    self.q[i] += dt * self.v[i];
                }
            }
            Integrator::Rk4 => {
                let (q0, v0) = (self.q, self.v);
                let mut kq = [JointArray::splat(n, 0.0); 4];
                let mut kv = [JointArray::splat(n, 0.0); 4];
                let mut q = q0;
                let mut v = v0;
                for stage in 0..4 {
                    if stage > 0 {
                        let h = if stage == 3 { dt } else { 0.5 * dt };
                        for i in 0..n {
                            q[i] = q0[i] + h * kq[stage - 1][i];
                            v[i] = v0[i] + h * kv[stage - 1][i];
                        }
                    }
                    if !self.dynamics.accel(&q, &v, tau, &mut kv[stage]) {
                        return false;
                    }
                    kq[stage] = v;
                }
                for i in 0..n {
                    self.q[i] = q0[i] + dt / 6.0 * (kq[0][i] + 2.0 * kq[1][i] + 2.0 * kq[2][i] + kq[3][i]);
                    self.v[i] = v0[i] + dt / 6.0 * (kv[0][i] + 2.0 * kv[1][i] + 2.0 * kv[2][i] + kv[3][i]);
                }
            }
        }
        for i in 0..n {
            if self.q[i] > self.upper[i] {
                self.q[i] = self.upper[i];
                self.v[i] = self.v[i].min(0.0);
            } else if self.q[i] < self.lower[i] {
                self.q[i] = self.lower[i];
                self.v[i] = self.v[i].max(0.0);
            }
        }
        self.q.all_finite() && self.v.all_finite()
    }
}

impl SimulatedPlant for ArticulatedPlant {
    fn model(&self) -> &Model {
        &self.model
    }
    fn time(&self) -> f64 {
        self.core.time()
    }
    fn position(&self) -> &[f64] {
        &self.q
    }
    fn velocity(&self) -> &[f64] {
        &self.v
    }
    fn set_state(&mut self, q: &[f64], v: &[f64]) -> Result<(), SimError> {
        check_state(self.core.dof, q, v)?;
        self.q.copy_from_slice(q);
        self.v.copy_from_slice(v);
        self.core.state_was_set(q, v);
        Ok(())
    }
    fn applied_torque(&self) -> &[f64] {
        &self.core.applied
    }
    fn motor_torque(&self) -> &[f64] {
        self.core.motors.output()
    }
    fn armature(&self) -> &[f64] {
        &self.dynamics.armature
    }
    fn energy(&mut self) -> f64 {
        // The dynamics model carries the armature: its kinetic energy includes the rotors'.
        let model = &self.dynamics.model;
        plexo_kinematics::kinetic_energy(model, &mut self.energy_data, &self.q, &self.v)
            + plexo_kinematics::potential_energy(model, &mut self.energy_data, &self.q)
    }
    fn patient(&self) -> Option<&Patient> {
        self.core.patient.as_ref()
    }
    fn patient_mut(&mut self) -> Option<&mut Patient> {
        self.core.patient.as_mut()
    }
}

pub(crate) fn check_state(dof: usize, q: &[f64], v: &[f64]) -> Result<(), SimError> {
    for (what, x) in [("state position", q), ("state velocity", v)] {
        if x.len() != dof {
            return Err(SimError::JointCountMismatch { what, expected: dof, got: x.len() });
        }
        if let Some(i) = x.iter().position(|x| !x.is_finite()) {
            return Err(SimError::InvalidParameter { key: format!("{what}[{i}]"), value: x[i], allowed: "finite" });
        }
    }
    Ok(())
}

impl Robot for ArticulatedPlant {
    type Error = SimError;

    fn dof(&self) -> usize {
        self.core.dof
    }
    fn joints(&self) -> &[JointInfo] {
        &self.core.joints
    }
    fn lifecycle(&self) -> Lifecycle {
        self.core.lifecycle
    }
    /// Copies the latest sensor sample. Real-time safe.
    fn read(&mut self, state: &mut JointState) -> Result<(), SimError> {
        self.core.read(state)
    }
    /// Applies `command` for one period and advances the simulation by one period. Real-time safe.
    fn write(&mut self, command: &JointCommand) -> Result<(), SimError> {
        if self.core.lifecycle == Lifecycle::Fault {
            return Err(SimError::Faulted);
        }
        let checked = self.core.commanded_torque(command);
        let (q, v) = (self.q, self.v);
        let tau = self.core.generalized_torque(checked.as_ref().ok(), &q, &v, PatientCoupling::Rigid);
        if !self.integrate(&tau) {
            let joint = self.q.iter().zip(self.v.iter()).position(|(q, v)| !q.is_finite() || !v.is_finite());
            let joint = joint.unwrap_or(0);
            let (quantity, value) = if self.q[joint].is_finite() {
                ("velocity [rad/s]", self.v[joint])
            } else {
                ("position [rad]", self.q[joint])
            };
            self.q = q;
            self.v = JointArray::splat(q.len(), 0.0);
            self.core.fault();
            return Err(SimError::Diverged { joint, quantity, value });
        }
        let (q, v) = (self.q, self.v);
        self.core.finish_step(&q, &v);
        checked.map(|_| ())
    }
    fn enable(&mut self) -> Result<(), SimError> {
        self.core.enable()
    }
    fn disable(&mut self) -> Result<(), SimError> {
        self.core.disable()
    }
    fn estop(&mut self) -> Result<(), SimError> {
        self.core.estop();
        Ok(())
    }
    fn reset(&mut self) -> Result<(), SimError> {
        self.core.reset()
    }
}
