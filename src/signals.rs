//! Operator and system signals: SIGINT (Ctrl-C), SIGTERM (a service manager stopping `plexo run`) and SIGHUP (a
//! closed terminal) all request the same controlled stop of the running session — category-2 stop, then torque
//! off, summary and state written, exit status 128 + the signal's number. A second signal escalates to a
//! category-0 stop: torque off at once.
//!
//! The handlers only touch atomics (async-signal-safe); a watcher thread turns them into [`LoopSignals`] flags
//! that the control loop reads every tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Shared flags between the control thread and the outside (progress bar, signal handlers). Lock-free.
#[derive(Clone, Debug, Default)]
pub struct LoopSignals {
    /// Set by the operator to stop the session (category-2 stop, then torque off).
    pub stop: Arc<AtomicBool>,
    /// The signal that set `stop` (its number), 0 for a stop without one.
    pub stop_signal: Arc<AtomicI32>,
    /// Set by a second signal: switch torque off now (category-0 stop), whatever the phase.
    pub torque_off_now: Arc<AtomicBool>,
    /// Session time so far [ms], for a progress display.
    pub session_ms: Arc<AtomicU64>,
}

/// The signals that stop a session.
pub const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Signals received since the handlers were installed.
static RECEIVED: AtomicU32 = AtomicU32::new(0);
/// The number of the latest signal received.
static LATEST: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(signal: libc::c_int) {
    // Only atomic operations: async-signal-safe.
    LATEST.store(signal, Ordering::Relaxed);
    RECEIVED.fetch_add(1, Ordering::Relaxed);
}

/// The name of a signal number, for messages (`SIGTERM`).
pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT (Ctrl-C)",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// What the `received`-th signal (1 = the first) asks of the loop, setting its flags; returns the message for
/// the operator. The first requests the controlled stop (remembering `signal`), any further one torque off now.
fn react(received: u32, signal: i32, flags: &LoopSignals) -> String {
    if received <= 1 {
        flags.stop_signal.store(signal, Ordering::Relaxed);
        flags.stop.store(true, Ordering::Relaxed);
        format!("{}: controlled stop, then torque off (send it again to switch torque off at once)", name(signal))
    } else {
        if flags.stop_signal.load(Ordering::Relaxed) == 0 {
            flags.stop_signal.store(signal, Ordering::Relaxed);
        }
        flags.stop.store(true, Ordering::Relaxed);
        flags.torque_off_now.store(true, Ordering::Relaxed);
        format!("{} again: torque off now (category-0 stop)", name(signal))
    }
}

/// The running watcher; [`SignalWatcher::finish`] ends it once the loop has ended.
pub struct SignalWatcher {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SignalWatcher {
    /// Stops watching (signals that arrive later, while the outputs are written, are counted and ignored: the
    /// robot is already torque-free).
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // The watcher only sleeps and stores atomics: it cannot have panicked in a way worth reporting.
            let _ = t.join();
        }
    }
}

/// Installs the handlers of [`STOP_SIGNALS`] and a watcher thread that forwards them to `flags`. A signal whose
/// handler cannot be installed keeps its default action (it would end the process without a controlled stop):
/// warned about. Not real-time safe.
pub fn install(flags: &LoopSignals) -> SignalWatcher {
    for signal in STOP_SIGNALS {
        // SAFETY: `on_signal` only performs atomic operations (async-signal-safe) and has the C ABI `signal`
        // expects.
        let previous = unsafe { libc::signal(signal, on_signal as *const () as libc::sighandler_t) };
        if previous == libc::SIG_ERR {
            let text = format!("cannot handle {}: it would end the process without a controlled stop", name(signal));
            tracing::warn!("{text}");
            eprintln!("warning: {text}");
        }
    }
    let done = Arc::new(AtomicBool::new(false));
    let (flags, done_watcher) = (flags.clone(), done.clone());
    let mut seen = RECEIVED.load(Ordering::Relaxed);
    let thread = std::thread::Builder::new()
        .name("plexo-signals".into())
        .spawn(move || {
            while !done_watcher.load(Ordering::Relaxed) {
                let received = RECEIVED.load(Ordering::Relaxed);
                while seen < received {
                    seen += 1;
                    eprintln!("\n{}", react(seen, LATEST.load(Ordering::Relaxed), &flags));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .map_err(|e| {
            tracing::warn!("cannot start the signal watcher ({e}): signals will not stop the session");
            eprintln!("warning: cannot start the signal watcher ({e}): signals will not stop the session");
        })
        .ok();
    SignalWatcher { done, thread }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_first_signal_requests_the_controlled_stop_and_a_second_one_torque_off_now() {
        let flags = LoopSignals::default();
        let text = react(1, libc::SIGTERM, &flags);
        assert!(flags.stop.load(Ordering::Relaxed) && !flags.torque_off_now.load(Ordering::Relaxed));
        assert_eq!(flags.stop_signal.load(Ordering::Relaxed), libc::SIGTERM);
        assert!(text.contains("SIGTERM") && text.contains("controlled stop"), "{text}");
        let text = react(2, libc::SIGHUP, &flags);
        assert!(flags.torque_off_now.load(Ordering::Relaxed), "the second signal escalates");
        assert_eq!(flags.stop_signal.load(Ordering::Relaxed), libc::SIGTERM, "the first signal names the stop");
        assert!(text.contains("SIGHUP") && text.contains("category-0"), "{text}");
    }
}
