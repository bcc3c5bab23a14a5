//! Operator signals: Ctrl-C (SIGINT) requests a controlled stop of the running session.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::runtime::LoopSignals;

static CTRL_C: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    CTRL_C.store(true, Ordering::Relaxed);
}

/// Ctrl-C (SIGINT) requests an operator stop: the loop makes a controlled stop and switches torque off.
/// A watcher thread forwards the signal flag to `signals.stop`.
pub fn install_ctrl_c(signals: &LoopSignals) {
    // SAFETY: `on_sigint` only stores to an atomic (async-signal-safe); the handler has the C ABI `signal`
    // expects.
    let previous = unsafe { libc::signal(libc::SIGINT, on_sigint as *const () as libc::sighandler_t) };
    if previous == libc::SIG_ERR {
        tracing::warn!("cannot install the Ctrl-C handler: Ctrl-C will kill the process without a controlled stop");
        return;
    }
    let stop = signals.stop.clone();
    let _ = std::thread::Builder::new().name("plexo-ctrl-c".into()).spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if CTRL_C.load(Ordering::Relaxed) {
                eprintln!("\nCtrl-C: controlled stop, then torque off");
                stop.store(true, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
}
