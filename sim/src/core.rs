//! What both plants share: configuration, lifecycle, command validation, the motor, sensor and patient models.
//! A plant only integrates the rigid-body dynamics under the generalized torque this core computes.

use core::time::Duration;

use plexo_hal::{JointArray, JointCommand, JointFlags, JointInfo, JointState, Lifecycle, MAX_JOINTS};
use plexo_kinematics::Model;

use crate::motor::{MotorBank, MotorParams};
use crate::patient::{Patient, PatientProfile};
use crate::sensor::{SensorBank, SensorParams};
use crate::{SimError, arm};

/// Configuration shared by [`crate::ArticulatedPlant`] and [`crate::RapierPlant`].
#[derive(Clone, Debug)]
pub struct PlantConfig {
    /// Control period: simulated time advances by exactly this much per `write` (default 1 ms).
    pub period: Duration,
    /// Actuator per joint; `None` = [`MotorParams::default`] with `torque_limit` from the URDF effort limit.
    pub motors: Option<Vec<MotorParams>>,
    /// Joint sensors.
    pub sensors: SensorParams,
    /// The virtual patient strapped in (arm segments attached rigidly), or `None` for the bare robot.
    pub patient: Option<PatientProfile>,
    /// Initial joint positions [rad]; `None` = zero clamped into the joint limits.
    pub initial_position: Option<Vec<f64>>,
}

impl Default for PlantConfig {
    fn default() -> Self {
        Self {
            period: Duration::from_millis(1),
            motors: None,
            sensors: SensorParams::default(),
            patient: None,
            initial_position: None,
        }
    }
}

impl PlantConfig {
    /// Bare robot with ideal actuators (`torque_limit` from the URDF, no friction, no lag, no rotor inertia) and
    /// ideal sensors: the configuration of the cross-check and energy tests.
    pub fn ideal(model: &Model) -> Self {
        Self {
            motors: Some(model.joints().iter().map(|j| MotorParams::ideal(j.limits.effort)).collect()),
            sensors: SensorParams::ideal(),
            ..Self::default()
        }
    }

    /// This configuration with `profile` as the patient.
    pub fn with_patient(mut self, profile: PatientProfile) -> Self {
        self.patient = Some(profile);
        self
    }
}

/// The robot model as the plant integrates it (with the patient's arm when rigidly attached) and the bare robot.
pub(crate) struct Models {
    pub(crate) robot: Model,
    pub(crate) loaded: Model,
}

impl Models {
    /// `attach`: whether the arm segments are attached rigidly to `loaded`.
    pub(crate) fn new(model: &Model, config: &PlantConfig, attach: bool) -> Result<Self, SimError> {
        if model.nv() == 0 || model.nv() > MAX_JOINTS {
            return Err(SimError::Model {
                model: model.name().to_owned(),
                reason: format!("{} joints; plants support 1..={MAX_JOINTS}", model.nv()),
            });
        }
        let loaded = match (&config.patient, attach) {
            (Some(p), true) => arm::attach_arm(model, p.spec())?,
            _ => model.clone(),
        };
        Ok(Self { robot: model.clone(), loaded })
    }
}

/// Where the patient's joint torques go this period.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PatientCoupling<'a> {
    /// Arm attached rigidly: the patient is stepped on the robot's state and its torque is added to the joints.
    Rigid,
    /// Arm on compliant cuffs ([`crate::CuffParams`]): the patient is stepped on the human arm's own joint state
    /// `q` [rad], `v` [rad/s]; its torque acts on the human segments (applied by the plant), not on the joints.
    Cuffed {
        /// Human joint positions in the robot's joint coordinates [rad].
        q: &'a [f64],
        /// Human joint velocities [rad/s].
        v: &'a [f64],
    },
}

/// Lifecycle, actuators, sensors and patient of one plant.
#[derive(Debug)]
pub(crate) struct PlantCore {
    pub(crate) dof: usize,
    pub(crate) dt: f64,
    period: Duration,
    steps: u64,
    pub(crate) joints: Vec<JointInfo>,
    pub(crate) lifecycle: Lifecycle,
    pub(crate) motors: MotorBank,
    pub(crate) sensors: SensorBank,
    pub(crate) patient: Option<Patient>,
    /// Cuff interaction torque [Nm] if the plant has cuff sensors.
    pub(crate) interaction: Option<JointArray<f64>>,
    /// Friction torque of the last step [Nm].
    pub(crate) friction: JointArray<f64>,
    /// Generalized torque applied to the joints in the last step (motor + friction + rigid patient) [Nm]; with
    /// cuffs the patient acts through the cuff forces instead (reported in `interaction`).
    pub(crate) applied: JointArray<f64>,
}

impl PlantCore {
    pub(crate) fn new(models: &Models, config: &PlantConfig) -> Result<Self, SimError> {
        let robot = &models.robot;
        let dof = robot.nv();
        let dt = config.period.as_secs_f64();
        if !(dt > 0.0 && dt <= 0.1) {
            return Err(SimError::InvalidParameter { key: "period".into(), value: dt, allowed: "(0, 0.1] s" });
        }
        let motor_params: Vec<MotorParams> = match &config.motors {
            Some(m) if m.len() != dof => {
                return Err(SimError::JointCountMismatch { what: "motors", expected: dof, got: m.len() });
            }
            Some(m) => m.clone(),
            None => robot
                .joints()
                .iter()
                .map(|j| MotorParams { torque_limit: j.limits.effort, ..MotorParams::default() })
                .collect(),
        };
        let motors = MotorBank::new(&motor_params, dt)?;
        let gear: Vec<f64> = motor_params.iter().map(|m| m.gear_ratio).collect();
        let sensors = SensorBank::new(config.sensors, &gear, dt)?;
        let joints = robot
            .joints()
            .iter()
            .zip(&motor_params)
            .map(|(j, m)| JointInfo {
                name: j.name.clone(),
                position_min: j.limits.lower,
                position_max: j.limits.upper,
                velocity_max: j.limits.velocity,
                torque_max: m.torque_limit,
            })
            .collect();
        let patient = match &config.patient {
            Some(profile) => Some(Patient::new(profile, robot, &models.loaded, &motors.armature(), dt)?),
            None => None,
        };
        let z = JointArray::splat(dof, 0.0);
        Ok(Self {
            dof,
            dt,
            period: config.period,
            steps: 0,
            joints,
            lifecycle: Lifecycle::Disabled,
            motors,
            sensors,
            patient,
            interaction: None,
            friction: z,
            applied: z,
        })
    }

    /// Simulated time [s].
    pub(crate) fn time(&self) -> f64 {
        self.steps as f64 * self.dt
    }

    /// Simulated time as a stamp (exact multiple of the period).
    pub(crate) fn stamp(&self) -> Duration {
        let nanos = u64::try_from(self.period.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(nanos.saturating_mul(self.steps))
    }

    /// Checks `command` and returns the commanded link torque [Nm] (feed-forward plus the drive-side impedance
    /// loop on the measured state). Real-time safe.
    pub(crate) fn commanded_torque(&self, command: &JointCommand) -> Result<JointArray<f64>, SimError> {
        if self.lifecycle == Lifecycle::Fault {
            return Err(SimError::Faulted);
        }
        if command.dof() != self.dof {
            return Err(SimError::JointCountMismatch { what: "command", expected: self.dof, got: command.dof() });
        }
        if let Some(joint) = command.torque.iter().position(|t| !t.is_finite()) {
            return Err(SimError::NonFiniteCommand { joint, field: "torque" });
        }
        let mut tau = command.torque;
        if let Some(imp) = &command.drive_impedance {
            let fields: [(&JointArray<f64>, &'static str); 4] = [
                (&imp.position, "drive_impedance.position"),
                (&imp.velocity, "drive_impedance.velocity"),
                (&imp.stiffness, "drive_impedance.stiffness"),
                (&imp.damping, "drive_impedance.damping"),
            ];
            for (values, field) in fields {
                if values.len() != self.dof {
                    return Err(SimError::JointCountMismatch { what: field, expected: self.dof, got: values.len() });
                }
                if let Some(joint) = values.iter().position(|x| !x.is_finite()) {
                    return Err(SimError::NonFiniteCommand { joint, field });
                }
            }
            for (field, values) in
                [("drive_impedance.stiffness", &imp.stiffness), ("drive_impedance.damping", &imp.damping)]
            {
                if let Some(joint) = values.iter().position(|x| *x < 0.0) {
                    return Err(SimError::NegativeGain { joint, field });
                }
            }
            let q = self.sensors.position();
            let v = self.sensors.velocity();
            for i in 0..self.dof {
                tau[i] += imp.stiffness[i] * (imp.position[i] - q[i]) + imp.damping[i] * (imp.velocity[i] - v[i]);
            }
        }
        if !self.lifecycle.allows_torque() && !command.is_zero() {
            return Err(SimError::NotActive { state: self.lifecycle });
        }
        Ok(tau)
    }

    /// The generalized torque for this period [Nm]: motor (lagged, saturated) + friction + the rigidly attached
    /// patient ([`PatientCoupling::Rigid`]). `command = None` (rejected or inactive) cuts the motors. Also steps
    /// the patient: on the robot's true state `q`, `v` when rigid, on the human arm's state when cuffed.
    /// Real-time safe.
    pub(crate) fn generalized_torque(
        &mut self,
        command: Option<&JointArray<f64>>,
        q: &[f64],
        v: &[f64],
        coupling: PatientCoupling<'_>,
    ) -> JointArray<f64> {
        let motor = match command {
            Some(tau) if self.lifecycle.allows_torque() => self.motors.step(tau),
            _ => {
                self.motors.cut();
                *self.motors.output()
            }
        };
        let mut tau = motor;
        for i in 0..self.dof {
            self.friction[i] = self.motors.friction(i, v[i]);
            tau[i] += self.friction[i];
        }
        if let Some(patient) = self.patient.as_mut() {
            match coupling {
                PatientCoupling::Rigid => {
                    let p = patient.step(q, v);
                    for (t, pt) in tau.iter_mut().zip(p.total.iter()) {
                        *t += *pt;
                    }
                }
                PatientCoupling::Cuffed { q: q_human, v: v_human } => {
                    patient.step(q_human, v_human);
                }
            }
        }
        self.applied = tau;
        tau
    }

    /// Ends the period: advances time and samples the sensors at the new true state. Real-time safe.
    pub(crate) fn finish_step(&mut self, q: &[f64], v: &[f64]) {
        self.steps += 1;
        let motor = *self.motors.output();
        self.sensors.sample(q, v, &motor);
    }

    /// Primes sensors and patient history after the true state was set directly.
    pub(crate) fn state_was_set(&mut self, q: &[f64], v: &[f64]) {
        self.sensors.prime();
        let motor = *self.motors.output();
        self.sensors.sample(q, v, &motor);
        if let Some(p) = self.patient.as_mut() {
            p.reset_history(q, v);
        }
    }

    /// Latches a fault (non-finite state): torque off.
    pub(crate) fn fault(&mut self) {
        self.lifecycle = Lifecycle::Fault;
        self.motors.cut();
    }

    pub(crate) fn read(&self, state: &mut JointState) -> Result<(), SimError> {
        if state.dof() != self.dof {
            return Err(SimError::JointCountMismatch { what: "state", expected: self.dof, got: state.dof() });
        }
        state.stamp = self.stamp();
        state.position = *self.sensors.position();
        state.velocity = *self.sensors.velocity();
        state.torque = *self.sensors.torque();
        state.interaction_torque = self.interaction;
        state.temperature = None;
        let flag = match self.lifecycle {
            Lifecycle::Active => JointFlags::NONE,
            Lifecycle::Fault => JointFlags::DRIVE_FAULT | JointFlags::NOT_ENABLED,
            Lifecycle::Disabled | Lifecycle::EStopped => JointFlags::NOT_ENABLED,
        };
        state.flags = JointArray::splat(self.dof, flag);
        Ok(())
    }

    pub(crate) fn enable(&mut self) -> Result<(), SimError> {
        match self.lifecycle {
            Lifecycle::Disabled => {
                self.motors.cut();
                self.lifecycle = Lifecycle::Active;
                Ok(())
            }
            Lifecycle::Active => Ok(()),
            state => Err(SimError::InvalidTransition { action: "enable", state }),
        }
    }

    pub(crate) fn disable(&mut self) -> Result<(), SimError> {
        match self.lifecycle {
            Lifecycle::Active | Lifecycle::Disabled => {
                self.motors.cut();
                self.lifecycle = Lifecycle::Disabled;
                Ok(())
            }
            state => Err(SimError::InvalidTransition { action: "disable", state }),
        }
    }

    pub(crate) fn estop(&mut self) {
        self.motors.cut();
        if self.lifecycle != Lifecycle::Fault {
            self.lifecycle = Lifecycle::EStopped;
        }
    }

    pub(crate) fn reset(&mut self) -> Result<(), SimError> {
        match self.lifecycle {
            Lifecycle::EStopped | Lifecycle::Fault => {
                self.motors.cut();
                self.lifecycle = Lifecycle::Disabled;
                Ok(())
            }
            state => Err(SimError::InvalidTransition { action: "reset", state }),
        }
    }
}

/// Initial joint positions [rad] from the configuration, checked for length and finiteness; default zero
/// clamped into the limits.
pub(crate) fn initial_position(model: &Model, config: &PlantConfig) -> Result<Vec<f64>, SimError> {
    match &config.initial_position {
        Some(q) if q.len() != model.nv() => {
            Err(SimError::JointCountMismatch { what: "initial_position", expected: model.nv(), got: q.len() })
        }
        Some(q) => {
            if let Some(i) = q.iter().position(|x| !x.is_finite()) {
                return Err(SimError::InvalidParameter {
                    key: format!("initial_position[{i}]"),
                    value: q[i],
                    allowed: "finite [rad]",
                });
            }
            Ok(q.clone())
        }
        None => Ok(model.joints().iter().map(|j| 0.0_f64.clamp(j.limits.lower, j.limits.upper)).collect()),
    }
}
