//! The running pipeline: the analysis and writer threads, the control thread's sender, and the shutdown that
//! yields the report and the block table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError};

use super::analysis::Analysis;
use super::channel::{self, BoundedSender};
use super::config::{LiveReport, TelemetryConfig, TelemetryReport};
use super::live::LiveStatus;
use super::messages::{Message, TickSample};
use super::writer;
use crate::AppError;
use crate::summary::SessionSummary;

/// The control thread's end of the pipeline.
pub type TelemetrySender = BoundedSender<TickSample>;

/// Handle to the running pipeline.
pub struct Telemetry {
    sender: TelemetrySender,
    /// Set by [`Telemetry::finish`]: the analysis drains what is queued and ends, even while clones of the sender
    /// are still alive (waiting for every clone to drop would hang the shutdown).
    closing: Arc<AtomicBool>,
    analysis: JoinHandle<(SessionSummary, u64)>,
    writer: JoinHandle<Result<TelemetryReport, AppError>>,
    /// The live viewers' addresses and what their streams did.
    live: Vec<(String, Arc<LiveStatus>)>,
    /// Where the recording is being saved (`None`: not saved).
    save: Option<std::path::PathBuf>,
}

/// What [`Telemetry::finish_all`] yields: the report and the block table even when the writer failed.
pub struct Finished {
    /// What the pipeline did (without `saved_to` if the writer failed).
    pub report: TelemetryReport,
    /// The session's block table (from the analysis, which does not depend on the writer).
    pub summary: SessionSummary,
    /// The writer's error (the recording is then incomplete; summary and state can still be written).
    pub writer_error: Option<AppError>,
}

impl Telemetry {
    /// Starts the analysis and writer threads with the Rerun recording stream. Not real-time safe.
    pub fn start(mut config: TelemetryConfig) -> Result<Self, AppError> {
        let handle = config
            .model
            .frame_id(&config.handle_frame)
            .ok_or_else(|| AppError::Telemetry(format!("the robot has no handle frame `{}`", config.handle_frame)))?;
        let (rec, live) = writer::open_stream(&config)?;
        let save = config.sinks.save.clone();
        let mut analysis = Analysis::new(&config.model, handle, &config.blocks, config.period);
        // Only the analysis holds the store's sink: the recorder ends as soon as the analysis has.
        analysis.set_trial_sink(config.sinks.trials.take());
        let (sender, rx) = channel::channel::<TickSample>(config.capacity);
        let (to_writer, writer_rx) = channel::channel::<Message>(config.capacity);
        let to_writer = to_writer.with_mode(!config.paced);
        let closing = Arc::new(AtomicBool::new(false));
        let closing_analysis = closing.clone();
        let writer = std::thread::Builder::new()
            .name("plexo-telemetry".into())
            .spawn(move || writer::Writer::new(&config, rec)?.run(&writer_rx))
            .map_err(|e| AppError::Telemetry(format!("cannot start the telemetry thread: {e}")))?;
        let analysis = std::thread::Builder::new()
            .name("plexo-analysis".into())
            .spawn(move || {
                receive_until_closed(&rx, &closing_analysis, |s| analysis.on_tick(&s, |m| to_writer.send(m)));
                (analysis.finish(), to_writer.dropped())
            })
            .map_err(|e| AppError::Telemetry(format!("cannot start the analysis thread: {e}")))?;
        Ok(Self { sender, closing, analysis, writer, live, save })
    }

    /// A non-blocking sender for a paced control thread: a full channel drops (and counts) the sample.
    pub fn sender(&self) -> TelemetrySender {
        self.sender.clone()
    }

    /// A sender for an unpaced simulation: a full channel makes it wait for the analysis, so nothing is dropped
    /// (the simulated clock does not advance while it waits). Never for a paced loop.
    pub fn lossless_sender(&self) -> TelemetrySender {
        self.sender.with_mode(true)
    }

    /// A sender for a loop that is `paced` at wall clock ([`Self::sender`]) or not ([`Self::lossless_sender`]).
    pub fn sender_for(&self, paced: bool) -> TelemetrySender {
        if paced { self.sender() } else { self.lossless_sender() }
    }

    /// Where the recording is being saved: the `.rrd` path asked for, whether or not the writer gets there.
    pub fn save_path(&self) -> Option<&std::path::Path> {
        self.save.as_deref()
    }

    /// Stops the pipeline: the analysis handles everything sent so far, the writer writes it, flushes the sinks
    /// and ends; returns the report (drops and waits included; samples sent after this call are counted as
    /// dropped) and the session's block table. A writer error is an error here; see [`Self::finish_all`] to
    /// keep the block table regardless. Not real-time safe.
    pub fn finish(self) -> Result<(TelemetryReport, SessionSummary), AppError> {
        let finished = self.finish_all()?;
        match finished.writer_error {
            Some(e) => Err(e),
            None => Ok((finished.report, finished.summary)),
        }
    }

    /// Like [`Self::finish`], but the block table and the counts come back even when the writer failed (its
    /// error in [`Finished::writer_error`]), so that the summary and the session state can still be written.
    /// The live viewers never hold this up ([`super::live`]). Errors only if a pipeline thread panicked. Not
    /// real-time safe.
    pub fn finish_all(self) -> Result<Finished, AppError> {
        let control = self.sender.clone();
        self.closing.store(true, Ordering::Release);
        drop(self.sender);
        let (summary, writer_dropped) =
            self.analysis.join().map_err(|_| AppError::Telemetry("analysis thread panicked".into()))?;
        let written = self.writer.join().map_err(|_| AppError::Telemetry("telemetry thread panicked".into()))?;
        let (mut report, writer_error) = match written {
            Ok(report) => (report, None),
            Err(e) => (TelemetryReport::default(), Some(e)),
        };
        report.waits = control.waits();
        report.dropped = control.dropped() + writer_dropped;
        report.live = self
            .live
            .iter()
            .map(|(url, status)| LiveReport {
                url: url.clone(),
                forwarded: status.forwarded.load(Ordering::Relaxed),
                dropped: status.dropped(),
                failed: status.failed(),
            })
            .collect();
        Ok(Finished { report, summary, writer_error })
    }
}

/// Calls `handle` with every message of `rx` until it is disconnected, or `closing` is set and it is empty.
fn receive_until_closed<T>(rx: &Receiver<T>, closing: &AtomicBool, mut handle: impl FnMut(T)) {
    loop {
        let message = match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) if closing.load(Ordering::Acquire) => match rx.try_recv() {
                Ok(m) => m,
                Err(_) => break,
            },
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        handle(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::config::Sinks;

    fn start(capacity: usize, paced: bool) -> Telemetry {
        let (model, urdf) = crate::setup::load_robot("plexo-arm4").unwrap().value;
        Telemetry::start(TelemetryConfig {
            session_name: "test".into(),
            model,
            urdf,
            urdf_dir: None,
            patient_arm: None,
            handle_frame: "handle".into(),
            blocks: vec![],
            period: 0.001,
            pose_every: 10,
            telemetry_rate: crate::telemetry::DEFAULT_TELEMETRY_RATE,
            info: Default::default(),
            capacity,
            paced,
            sinks: Sinks::default(),
        })
        .unwrap()
    }

    fn sample(tick: u64) -> TickSample {
        TickSample::zeros(4, tick, tick as f64 * 0.001)
    }

    #[test]
    fn finish_returns_while_a_sender_clone_is_still_alive() {
        // Regression: `finish` waited for every sender clone to drop, and a caller holding one hung forever.
        let telemetry = start(16, true);
        let sender = telemetry.sender();
        for tick in 0..5 {
            sender.send(sample(tick));
        }
        let (report, _) = telemetry.finish().unwrap();
        assert_eq!(report.samples, 5);
        assert_eq!(report.dropped, 0);
        // The pipeline has gone: later sends are counted, never block.
        sender.send(sample(5));
        assert_eq!(sender.dropped(), 1);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let telemetry = start(1, true);
        let sender = telemetry.sender();
        for tick in 0..10_000 {
            sender.send(sample(tick));
        }
        let (report, _) = telemetry.finish().unwrap();
        assert_eq!(report.samples + report.dropped, 10_000, "every message is either written or counted");
    }

    #[test]
    fn the_lossless_sender_of_an_unpaced_run_waits_for_the_writer_and_drops_nothing() {
        // Regression: the default `plexo sim` (unpaced, 555k ticks) dropped 2319 samples of its recording.
        let telemetry = start(1, false);
        let sender = telemetry.sender_for(false);
        for tick in 0..10_000 {
            sender.send(sample(tick));
        }
        assert!(sender.waits() > 0, "a one-slot channel must have been full at some send");
        let (report, _) = telemetry.finish().unwrap();
        assert_eq!((report.samples, report.dropped), (10_000, 0), "every message is written");
        assert_eq!(report.waits, sender.waits());
        // The pipeline has gone: the lossless sender does not wait forever, it counts.
        sender.send(sample(10_000));
        assert_eq!(sender.dropped(), 1);
    }
}
