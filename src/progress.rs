//! The progress bar over session time, on its own thread: the loop only stores an atomic.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::signals::LoopSignals;

/// A progress bar over session time on its own thread (the loop only stores an atomic). `None` when quiet or
/// when stderr is not a terminal.
pub fn progress_bar(signals: &LoopSignals, nominal_s: f64, quiet: bool) -> Option<ProgressHandle> {
    use std::io::IsTerminal;
    if quiet || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new((nominal_s.max(1.0) * 1000.0) as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {msg} sim {pos}/{len} ms")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let done = std::sync::Arc::new(AtomicBool::new(false));
    let (ms, stop, done2, bar2) = (signals.session_ms.clone(), signals.stop.clone(), done.clone(), bar.clone());
    let thread = std::thread::spawn(move || {
        while !done2.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
            let pos = ms.load(Ordering::Relaxed);
            if pos > bar2.length().unwrap_or(0) {
                bar2.set_length(pos);
            }
            bar2.set_position(pos);
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Some(ProgressHandle { bar, done, thread: Some(thread) })
}

/// The running progress bar.
pub struct ProgressHandle {
    bar: indicatif::ProgressBar,
    done: std::sync::Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressHandle {
    /// Stops and clears the bar.
    pub fn finish(mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.bar.finish_and_clear();
    }
}
