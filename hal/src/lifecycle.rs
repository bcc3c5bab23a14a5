//! [`Lifecycle`]: the states of a backend and which of them allow torque.

/// Lifecycle of a backend (after ros2_control's managed nodes, simplified to what a therapy robot needs).
///
/// ```text
///            enable()               disable()
/// Disabled ─────────► Active ──────────────────► Disabled
///    ▲                  │ estop() / drive fault
///    │   reset()        ▼
///    └──────────── EStopped / Fault (latched, torque off)
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lifecycle {
    /// Connected, sensors readable, torque off. `write` accepts only zero commands.
    Disabled,
    /// Torque enabled: `write` commands act on the joints.
    Active,
    /// Emergency stop latched: torque off, all queued commands discarded. Leaves only through `reset()`.
    EStopped,
    /// A drive or link fault latched: torque off. Leaves only through `reset()`.
    Fault,
}

impl Lifecycle {
    /// True if torque can be produced in this state.
    pub const fn allows_torque(self) -> bool {
        matches!(self, Lifecycle::Active)
    }
}
