//! [`TestPlant`]: independent joints with inertia and viscous damping, `J q̈ = τ − b q̇`, a minimal [`Robot`] to
//! exercise the CAN stack without the full physics (the real plants of this crate work the same way).

use core::time::Duration;

use plexo_hal::{HalError, JointArray, JointCommand, JointInfo, JointState, Lifecycle, Robot};

/// Independent inertia + damping joints, semi-implicit Euler at a fixed period.
#[derive(Clone, Debug)]
pub struct TestPlant {
    info: Vec<JointInfo>,
    inertia: f64,
    damping: f64,
    dt: f64,
    time: Duration,
    q: JointArray<f64>,
    qd: JointArray<f64>,
    tau: JointArray<f64>,
    lifecycle: Lifecycle,
}

impl TestPlant {
    /// `dof` joints (named `joint0`, …, limits ±2 rad, ±10 rad/s, ±15 Nm) with inertia [kg·m²], damping
    /// [Nm·s/rad] and period [s].
    pub fn new(dof: usize, inertia: f64, damping: f64, period: f64) -> Self {
        Self {
            info: (0..dof)
                .map(|i| JointInfo {
                    name: format!("joint{i}"),
                    position_min: -2.0,
                    position_max: 2.0,
                    velocity_max: 10.0,
                    torque_max: 15.0,
                })
                .collect(),
            inertia,
            damping,
            dt: period,
            time: Duration::ZERO,
            q: JointArray::splat(dof, 0.0),
            qd: JointArray::splat(dof, 0.0),
            tau: JointArray::splat(dof, 0.0),
            lifecycle: Lifecycle::Disabled,
        }
    }

    /// Sets the state (test set-up).
    pub fn set_state(&mut self, q: &[f64], qd: &[f64]) {
        self.q[..q.len()].copy_from_slice(q);
        self.qd[..qd.len()].copy_from_slice(qd);
    }

    /// Torque applied in the last period [Nm].
    pub fn applied(&self) -> &[f64] {
        &self.tau
    }
}

impl Robot for TestPlant {
    type Error = HalError;

    fn dof(&self) -> usize {
        self.info.len()
    }
    fn joints(&self) -> &[JointInfo] {
        &self.info
    }
    fn lifecycle(&self) -> Lifecycle {
        self.lifecycle
    }
    fn read(&mut self, state: &mut JointState) -> Result<(), HalError> {
        if state.dof() != self.dof() {
            return Err(HalError::JointCountMismatch { expected: self.dof(), got: state.dof() });
        }
        state.stamp = self.time;
        state.position = self.q;
        state.velocity = self.qd;
        state.torque = self.tau;
        Ok(())
    }
    fn write(&mut self, command: &JointCommand) -> Result<(), HalError> {
        let mut result = Ok(());
        self.tau = JointArray::splat(self.dof(), 0.0);
        if command.dof() != self.dof() {
            result = Err(HalError::JointCountMismatch { expected: self.dof(), got: command.dof() });
        } else if !command.is_finite() {
            result = Err(HalError::NonFiniteCommand { joint: 0, field: "torque" });
        } else if !self.lifecycle.allows_torque() && !command.is_zero() {
            result = Err(HalError::NotActive { state: self.lifecycle });
        } else if self.lifecycle.allows_torque() {
            self.tau = command.torque;
        }
        for i in 0..self.dof() {
            let qdd = (self.tau[i] - self.damping * self.qd[i]) / self.inertia;
            self.qd[i] += qdd * self.dt;
            self.q[i] += self.qd[i] * self.dt;
        }
        self.time += Duration::from_secs_f64(self.dt);
        result
    }
    fn enable(&mut self) -> Result<(), HalError> {
        match self.lifecycle {
            Lifecycle::Disabled | Lifecycle::Active => {
                self.lifecycle = Lifecycle::Active;
                Ok(())
            }
            state => Err(HalError::InvalidTransition { action: "enable", state }),
        }
    }
    fn disable(&mut self) -> Result<(), HalError> {
        self.lifecycle = Lifecycle::Disabled;
        Ok(())
    }
    fn estop(&mut self) -> Result<(), HalError> {
        self.lifecycle = Lifecycle::EStopped;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), HalError> {
        self.lifecycle = Lifecycle::Disabled;
        Ok(())
    }
}
