//! The controller's torque request needs no smoothing by the supervisor: in a closed-loop session on plexo-sim's
//! articulated plant with its default sensors (encoder quantisation and noise, filtered differentiation), the
//! supervisor's torque-rate limit changes the command on < 1 % of the ticks after the soft start
//! (`SafetyStats::limited_by.rate`), while the protections (walls, saturation) stay available.
//!
//! `cargo test -p plexo-controller --test torque_smoothness -- --nocapture` prints the measured shares and where
//! the rate-limited ticks come from (mode, moving or resting).

use std::collections::BTreeMap;

use plexo_controller::{ControllerConfig, Mode, ModeSettings, Protocol, SafetyOutcome, SafetySupervisor, TherapyEvent};
use plexo_testkit::rig::{ClosedLoop, sim_actuator_config};
use plexo_testkit::robots::DT;

/// What a session measured.
#[derive(Debug, Default)]
struct Smoothness {
    /// Ticks after the soft start.
    ticks: u64,
    /// Of them, ticks the rate limit changed the command.
    rate_limited: u64,
    /// Rate-limited ticks by (mode, moving) of the tick.
    by_phase: BTreeMap<String, (u64, u64)>,
    /// Rate-limited ticks in the first 50 ms after a mode switch.
    after_switch: u64,
    /// Targets reached / trials in active-assisted blocks.
    assisted: (u32, u32),
    /// RMS joint tracking error over the active-assisted trials [rad].
    assisted_rms_error: f64,
    /// RMS assistance torque over the active-assisted trials [Nm].
    assisted_rms_assistance: f64,
    /// RMS joint tracking error over the passive trials [rad].
    passive_rms_error: f64,
}

/// Runs the default center-out protocol on `patient` with `cfg`; the patient is asked for each trial's plan.
fn session(patient: &str, cfg: &ControllerConfig) -> Smoothness {
    let mut rig = ClosedLoop::resting(patient, cfg, None);
    rig.enable();
    // Soft start over: everything from here on counts.
    let mut out = Smoothness::default();
    let count = |supervisor: &SafetySupervisor, before: u64, key: String, since_switch: f64, out: &mut Smoothness| {
        let limited = u64::from(supervisor.stats().limited_by.rate > before);
        out.ticks += 1;
        out.rate_limited += limited;
        let e = out.by_phase.entry(key).or_default();
        e.0 += 1;
        e.1 += limited;
        if since_switch < 0.05 {
            out.after_switch += limited;
        }
    };
    rig.controller.set_mode(ModeSettings::passive()).unwrap();
    let to_home = rig.to_home();
    for k in 0..3500 {
        let before = rig.supervisor.stats().limited_by.rate;
        let outcome = rig.step(&to_home.sample(k as f64 * DT));
        assert!(matches!(outcome, SafetyOutcome::Active { .. }), "{outcome:?}");
        count(&rig.supervisor, before, "to home (passive)".into(), 1.0, &mut out);
    }

    let protocol = Protocol::default_protocol("center-out").unwrap();
    let mut session = rig.into_therapy(&protocol, None);
    let mut last_mode = session.therapy.controller().mode();
    let mut since_switch = 1.0;
    let (mut err2, mut assist2, mut n) = (0.0, 0.0, 0.0);
    let (mut passive_err2, mut passive_n) = (0.0, 0.0);
    // The rate limit's count before each tick's supervisor (only the supervisor changes it).
    let mut before = session.supervisor.stats().limited_by.rate;
    session.run_session(|session, event| {
        let therapy = &session.therapy;
        let mode = therapy.controller().mode();
        if mode != last_mode {
            since_switch = 0.0;
            last_mode = mode;
        }
        let moving = therapy.session().is_moving();
        let key = format!("{:?} {}", mode.mode, if moving { "moving" } else { "rest" });
        count(&session.supervisor, before, key, since_switch, &mut out);
        before = session.supervisor.stats().limited_by.rate;
        since_switch += DT;
        if let TherapyEvent::TrialEnded(record) = event {
            let error = record.metrics.rms_error.iter().map(|e| e * e).sum::<f64>().sqrt();
            if therapy.session().blocks()[record.block].spec.mode == Mode::Passive {
                passive_err2 += error * error * record.metrics.ticks as f64;
                passive_n += record.metrics.ticks as f64;
            }
            if therapy.session().blocks()[record.block].spec.mode == Mode::ActiveAssisted {
                out.assisted.0 += u32::from(record.reached);
                out.assisted.1 += 1;
                let ticks = record.metrics.ticks as f64;
                err2 += error * error * ticks;
                assist2 += record.metrics.assistance_rms.powi(2) * ticks;
                n += ticks;
            }
        }
    });
    out.assisted_rms_error = (err2 / n).sqrt();
    out.assisted_rms_assistance = (assist2 / n).sqrt();
    out.passive_rms_error = (passive_err2 / passive_n).sqrt();
    out
}

fn report(name: &str, s: &Smoothness) -> f64 {
    let share = s.rate_limited as f64 / s.ticks as f64;
    println!(
        "{name}: rate limit acted on {} of {} ticks after the soft start ({:.2} %), {} of them within 50 ms of a mode \
         switch; assisted trials {}/{} reached, RMS error {:.4} rad, RMS assistance {:.3} Nm; passive RMS error \
         {:.4} rad",
        s.rate_limited,
        s.ticks,
        100.0 * share,
        s.after_switch,
        s.assisted.0,
        s.assisted.1,
        s.assisted_rms_error,
        s.assisted_rms_assistance,
        s.passive_rms_error
    );
    for (k, (ticks, limited)) in &s.by_phase {
        println!("{name}:   {k:28} {limited:7} of {ticks:7} ticks ({:.2} %)", 100.0 * *limited as f64 / *ticks as f64);
    }
    share
}

/// With the shipped shaping the rate limit acts on < 1 % of the ticks after the soft start; with the shaping
/// off (no velocity filter, no bumpless transfer) it acts on > 10 % — the measurement
/// tells the two apart — and the shaping keeps the task: targets reached within 2 trials, RMS tracking errors no
/// more than 10 % larger and RMS assistance within 10 %.
#[test]
fn rate_limit_acts_on_under_one_percent_of_ticks_after_the_soft_start() {
    // The shaping on and off, on the same controller otherwise. The arm-weight support's adaptation is off in this
    // comparison: it adapts to each run's patient, so that the two patients' later blocks diverge (measured with it
    // on: the moderate patient's passive RMS error 0.0151 rad shaped vs 0.0127 unshaped, with it off 0.0130 vs
    // 0.0162); the shipped configuration's share is checked below.
    let shipped = sim_actuator_config();
    let mut cfg = shipped.clone();
    cfg.aan.support.adaptive = false;
    let mut unshaped = cfg.clone();
    unshaped.shaping.velocity_cutoff = 0.0;
    unshaped.shaping.mode_switch_ramp = 0.0;
    for patient in ["moderate", "severe"] {
        let s = session(patient, &cfg);
        let share = report(patient, &s);
        let u = session(patient, &unshaped);
        let unshaped_share = report(&format!("{patient} (unshaped)"), &u);
        assert!(share < 0.01, "{patient}: rate limit on {:.2} % of the ticks", 100.0 * share);
        assert!(unshaped_share > 0.1, "{patient}: unshaped, the rate limit acts on {:.2} %", 100.0 * unshaped_share);
        assert!(s.assisted.0 + 2 >= u.assisted.0, "{patient}: {:?} vs {:?} reached", s.assisted, u.assisted);
        let close = |a: f64, b: f64| (a - b).abs() <= 0.1 * b;
        // Tracking no more than 10 % worse with the shaping (better is allowed: the unshaped command is rougher).
        let not_worse = |a: f64, b: f64| a <= 1.1 * b;
        assert!(not_worse(s.assisted_rms_error, u.assisted_rms_error), "{patient}: assisted RMS error {s:?} vs {u:?}");
        assert!(close(s.assisted_rms_assistance, u.assisted_rms_assistance), "{patient}: assistance {s:?} vs {u:?}");
        assert!(not_worse(s.passive_rms_error, u.passive_rms_error), "{patient}: passive RMS error {s:?} vs {u:?}");
    }
    let s = session("moderate", &shipped);
    let share = report("moderate (shipped, support adapting)", &s);
    assert!(share < 0.01, "shipped: rate limit on {:.2} % of the ticks", 100.0 * share);
}
