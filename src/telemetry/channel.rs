//! The bounded hand-over between the pipeline's threads.
//!
//! A paced control thread (hardware, `--realtime`) never blocks on I/O: it hands `Copy` messages to a bounded
//! crossbeam channel with `try_send`; a full channel drops the message and counts it
//! ([`BoundedSender::dropped`]). An unpaced simulation has no deadline to keep — its clock is the simulated
//! time — so it uses a lossless sender: a full channel makes the sender wait for the receiver (counted,
//! [`BoundedSender::waits`]) and nothing is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crossbeam::channel::{Receiver, Sender, TrySendError, bounded};

/// The sending end: allocation-free sends, non-blocking or waiting for room.
pub struct BoundedSender<T> {
    tx: Sender<T>,
    dropped: Arc<AtomicU64>,
    waits: Arc<AtomicU64>,
    wait_when_full: bool,
}

impl<T> Clone for BoundedSender<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            dropped: self.dropped.clone(),
            waits: self.waits.clone(),
            wait_when_full: self.wait_when_full,
        }
    }
}

/// A channel of `capacity` slots (at least 1, allocated now) and its non-blocking sender. Not real-time safe.
pub fn channel<T>(capacity: usize) -> (BoundedSender<T>, Receiver<T>) {
    let (tx, rx) = bounded(capacity.max(1));
    let sender = BoundedSender {
        tx,
        dropped: Arc::new(AtomicU64::new(0)),
        waits: Arc::new(AtomicU64::new(0)),
        wait_when_full: false,
    };
    (sender, rx)
}

impl<T> BoundedSender<T> {
    /// A sender on the same channel and counters that waits for room when `lossless`, else drops.
    pub fn with_mode(&self, lossless: bool) -> Self {
        Self { wait_when_full: lossless, ..self.clone() }
    }

    /// Sends one message. Non-blocking sender: a full channel drops it and counts it — real-time safe, bounded
    /// time. Lossless sender: a full channel makes the caller wait (yielding, then sleeping 50 µs at a time) until
    /// the receiver has made room — allocation-free but not bounded in time, so only for unpaced loops. A stopped
    /// receiver drops and counts in both.
    pub fn send(&self, message: T) {
        let mut message = message;
        let mut attempts = 0u32;
        loop {
            match self.tx.try_send(message) {
                Ok(()) => return,
                Err(TrySendError::Full(m)) if self.wait_when_full => {
                    if attempts == 0 {
                        self.waits.fetch_add(1, Ordering::Relaxed);
                    }
                    attempts += 1;
                    if attempts < 16 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    message = m;
                }
                Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }

    /// Messages dropped so far because the channel was full (non-blocking sender) or the receiver had stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends that found the channel full and waited for the receiver (lossless sender only).
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}
