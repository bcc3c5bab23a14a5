//! [`ArticulatedPlant`]: the robot (and rigidly attached arm) integrated with plexo-kinematics' dynamics —
//! the fast plant for sweeps and the independent cross-check of [`crate::RapierPlant`].

use plexo_hal::{JointArray, JointCommand, JointInfo, JointState, Lifecycle, MAX_JOINTS, Robot};
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

/// Forward dynamics `q̈ = (M(q) + diag(armature))⁻¹ (τ − C(q, q̇) q̇ − g(q))`.
///
/// With no armature this is plexo-kinematics' [`plexo_kinematics::aba`] (O(n)). plexo-kinematics' ABA has no
/// armature term, so with reflected rotor inertia the plant uses [`plexo_kinematics::crba`] +
/// [`plexo_kinematics::nonlinear_effects`] and an in-place Cholesky solve of `M + diag(armature)` on a fixed
/// 8×8 array (exact, O(n³), trivial for n ≤ 8). Both are allocation-free.
#[derive(Clone, Debug)]
struct Dynamics {
    data: Data,
    armature: JointArray<f64>,
    use_aba: bool,
}

impl Dynamics {
    fn new(model: &Model, armature: JointArray<f64>) -> Self {
        Self { data: Data::new(model), use_aba: armature.iter().all(|a| *a == 0.0), armature }
    }

    /// Joint accelerations [rad/s²] into `out`; false if the mass matrix is not positive definite.
    fn accel(&mut self, model: &Model, q: &[f64], v: &[f64], tau: &[f64], out: &mut [f64]) -> bool {
        if self.use_aba {
            let ddq = plexo_kinematics::aba(model, &mut self.data, q, v, tau);
            out.copy_from_slice(ddq.as_slice());
            return true;
        }
        let n = out.len();
        let h = plexo_kinematics::nonlinear_effects(model, &mut self.data, q, v);
        for i in 0..n {
            out[i] = tau[i] - h[i];
        }
        let m = plexo_kinematics::crba(model, &mut self.data, q);
        // Cholesky M + A = L Lᵀ in place (lower triangle), then forward and back substitution into `out`.
        let mut l = [[0.0_f64; MAX_JOINTS]; MAX_JOINTS];
        for i in 0..n {
            for j in 0..=i {
                let mut sum = m[(i, j)] + if i == j { self.armature[i] } else { 0.0 };
                for k in 0..j {
                    sum -= l[i][k] * l[j][k];
                }
                if i == j {
                    if sum <= 0.0 || !sum.is_finite() {
                        return false;
                    }
                    l[i][i] = sum.sqrt();
                } else {
                    l[i][j] = sum / l[j][j];
                }
            }
        }
        for i in 0..n {
            let mut sum = out[i];
            for k in 0..i {
                sum -= l[i][k] * out[k];
            }
            out[i] = sum / l[i][i];
        }
        for i in (0..n).rev() {
            let mut sum = out[i];
            for k in i + 1..n {
                sum -= l[k][i] * out[k];
            }
            out[i] = sum / l[i][i];
        }
        true
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
        let dynamics = Dynamics::new(&models.loaded, core.motors.armature());
        let mut plant = Self {
            energy_data: Data::new(&models.loaded),
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

    /// True if forward dynamics runs through ABA (no armature), false for CRBA + Cholesky.
    pub fn uses_aba(&self) -> bool {
        self.dynamics.use_aba
    }

    fn integrate(&mut self, tau: &JointArray<f64>) -> bool {
        let n = self.q.len();
        let dt = self.core.dt;
        let mut a = JointArray::splat(n, 0.0);
        match self.integrator {
            Integrator::SemiImplicitEuler => {
                if !self.dynamics.accel(&self.model, &self.q, &self.v, tau, &mut a) {
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
                    if !self.dynamics.accel(&self.model, &q, &v, tau, &mut kv[stage]) {
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
        let armature = self.dynamics.armature;
        let rotor: f64 = (0..self.q.len()).map(|i| 0.5 * armature[i] * self.v[i] * self.v[i]).sum();
        plexo_kinematics::kinetic_energy(&self.model, &mut self.energy_data, &self.q, &self.v)
            + plexo_kinematics::potential_energy(&self.model, &mut self.energy_data, &self.q)
            + rotor
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
