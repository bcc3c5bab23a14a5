//! Allocation-freedom of the tick: session step + controller update (model update, observer, every mode and AAN
//! law, Cartesian impedance) + safety supervisor, proven with a counting global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::Duration;

use plexo_controller::{
    AanLaw, Controller, ControllerConfig, Mode, ModeSettings, Protocol, RomLimit, SafetySupervisor, Session, Space,
    Therapy,
};
use plexo_hal::{JointInfo, JointState};
use plexo_kinematics::Model;
use plexo_kinematics::anthropometrics::ArmAnthropometrics;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator unchanged; only counts calls on the current thread.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

fn joint_infos(model: &Model) -> Vec<JointInfo> {
    model
        .joints()
        .iter()
        .map(|j| JointInfo {
            name: j.name.clone(),
            position_min: j.limits.lower,
            position_max: j.limits.upper,
            velocity_max: j.limits.velocity,
            torque_max: j.limits.effort,
        })
        .collect()
}

#[test]
fn full_tick_allocates_nothing_in_any_mode() {
    let model = Model::from_urdf_str(plexo_kinematics::default_robot_urdf("plexo-arm4").unwrap()).unwrap();
    let mut config = ControllerConfig::default_config().unwrap();
    config.safety.soft_start_time = 0.01;
    let arm = ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
    let controller = Controller::new(&model, &config, &arm, "default").unwrap();
    let rom: Vec<RomLimit> =
        model.joints().iter().map(|j| RomLimit { min: j.limits.lower, max: j.limits.upper }).collect();
    let protocol = Protocol::default_protocol("center-out").unwrap();
    let session = Session::new(&protocol, &model, &rom).unwrap();
    let mut therapy = Therapy::new(session, controller);
    let mut supervisor = SafetySupervisor::new(&config.safety, &joint_infos(&model), Some(&rom)).unwrap();

    let mut state = JointState::zeros(4);
    state.position.copy_from_slice(&[0.25, 0.6, 0.0, 1.3]);
    let modes = [
        (Mode::Passive, AanLaw::Fixed, Space::Joint),
        (Mode::Passive, AanLaw::Fixed, Space::Cartesian),
        (Mode::ActiveAssisted, AanLaw::Fixed, Space::Joint),
        (Mode::ActiveAssisted, AanLaw::Emken, Space::Joint),
        (Mode::ActiveAssisted, AanLaw::Rbf, Space::Joint),
        (Mode::ActiveAssisted, AanLaw::Tunnel, Space::Joint),
        (Mode::Transparent, AanLaw::Fixed, Space::Joint),
        (Mode::Resistive, AanLaw::Fixed, Space::Joint),
        (Mode::ErrorAugmentation, AanLaw::Fixed, Space::Joint),
    ];
    // Warm-up outside the counted region (lazy statics of the test harness, first-call paths).
    therapy.start(&state);
    supervisor.request_enable().unwrap();
    let mut t = 0.0;
    let mut now = Duration::from_secs(1);
    let mut tick = |therapy: &mut Therapy, state: &mut JointState, t: &mut f64, now: &mut Duration| {
        *t += 0.001;
        *now += Duration::from_millis(1);
        state.stamp = *now;
        // A little motion so that every law adapts and the sensor never looks frozen.
        state.velocity[0] = 0.1 * (*t * 3.0).sin();
        state.position[0] = 0.25 + 0.03 * (*t * 3.0).cos();
        let (mut cmd, _event) = therapy.update(state, *t);
        let outcome = supervisor.apply(state, therapy.controller().report(), &mut cmd, *now);
        assert!(cmd.is_finite(), "{outcome:?}");
    };
    for _ in 0..100 {
        tick(&mut therapy, &mut state, &mut t, &mut now);
    }
    let mut counted_ticks = 0;
    for (mode, law, space) in modes {
        therapy
            .controller_mut()
            .set_mode(ModeSettings { mode, law, space, arm_support: 0.7, error_gain: None })
            .unwrap();
        let before = allocations();
        // 7 s per mode: covers trial starts, timeouts, trial ends (per-trial adaptation) and block changes.
        for _ in 0..7000 {
            tick(&mut therapy, &mut state, &mut t, &mut now);
            counted_ticks += 1;
        }
        let after = allocations();
        assert_eq!(after - before, 0, "{mode:?}/{law:?}/{space:?}: {} allocations", after - before);
    }
    assert!(counted_ticks >= 60_000);
}
