//! Telemetry to Rerun on its own thread.
//!
//! A paced control thread (hardware, `--realtime`) never blocks on I/O: it hands `Copy` messages to a bounded
//! crossbeam channel with `try_send`; a full channel drops the message and counts it
//! ([`TelemetrySender::dropped`]). An unpaced simulation has no deadline to keep — its clock is the simulated
//! time — so it uses [`Telemetry::lossless_sender`]: a full channel makes the loop wait for the writer (counted,
//! [`TelemetrySender::waits`]) and the recording is complete. The telemetry
//! thread computes link poses by forward kinematics on its own `Model`/`Data`, batches the per-joint time series
//! and sends them to Rerun in columns (one chunk per batch, not one call per sample).
//!
//! Entity paths (stable; the end-to-end test reads them back):
//! - `world/robot/<link>`: link pose (`Transform3D`, world_T_link) and, below it, `visual_<k>` geometry from the URDF
//! - `world/hand`: current handle position; `world/hand_path`: the hand path of each trial (line strips)
//! - `world/target`: the current target; `world/targets`: the targets of the block
//! - `joints/<joint>/{q, q_ref, tau_cmd, tau_patient_est, tau_patient_true, stiffness}`: time series
//! - `session/assistance`, `session/patient_effort_share`: time series
//! - `events`: trial and block events (text log)
//!
//! Timelines: `tick` (control-loop sequence) and `sim_time` (simulated or wall time since start [s]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};
use plexo_controller::{SafetyOutcome, StopReason};
use plexo_hal::JointArray;
use plexo_kinematics::{Data, FrameId, Model};

use crate::AppError;

/// One control tick as the telemetry sees it. `Copy`, no heap: built on the control thread every tick.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Control tick number.
    pub tick: u64,
    /// Time since the session started [s].
    pub time: f64,
    /// Measured joint positions [rad].
    pub q: JointArray<f64>,
    /// Reference joint positions [rad].
    pub q_ref: JointArray<f64>,
    /// Commanded joint torques after the safety supervisor [Nm].
    pub tau_cmd: JointArray<f64>,
    /// Estimated patient joint torques [Nm].
    pub tau_patient_est: JointArray<f64>,
    /// True patient joint torques [Nm] (simulation only).
    pub tau_patient_true: Option<JointArray<f64>>,
    /// Assistance stiffness per joint [Nm/rad].
    pub stiffness: JointArray<f64>,
    /// Assistance: norm of the therapy-mode torque (gravity and weight support excluded) [Nm].
    pub assistance: f64,
    /// Patient share of the task-directed effort [0–1].
    pub patient_effort_share: f64,
    /// Current target of the handle in the world [m], if a trial is running.
    pub target: Option<[f64; 3]>,
}

/// Discrete events: trial and block boundaries, safety outcomes. `Copy`, no heap.
#[derive(Clone, Copy, Debug)]
pub enum Event {
    /// A block starts.
    BlockStart {
        /// Block index in the protocol.
        block: usize,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A trial starts towards `target`.
    TrialStart {
        /// Block index.
        block: usize,
        /// Trial index within the block.
        trial: usize,
        /// Target of the handle [m].
        target: [f64; 3],
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A trial ends.
    TrialEnd {
        /// Block index.
        block: usize,
        /// Trial index.
        trial: usize,
        /// Target reached (with dwell) before the timeout.
        success: bool,
        /// Final distance of the handle to the target [m].
        final_error_m: f64,
        /// Trial duration [s].
        duration: f64,
        /// Hand-speed peaks of the reach (smoothness; 1 = one smooth movement).
        peaks: u32,
        /// SPARC of the hand speed (≈ −1.6 for a minimum-jerk reach; NaN without movement).
        sparc: f64,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// A block ends.
    BlockEnd {
        /// Block index.
        block: usize,
        /// Trials in the block.
        trials: u32,
        /// Trials that reached the target.
        successes: u32,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
    /// The safety supervisor changed state; `outcome` is its first outcome in the new state.
    Safety {
        /// The supervisor's outcome (state and reason).
        outcome: SafetyOutcome,
        /// Time [s].
        time: f64,
        /// Tick.
        tick: u64,
    },
}

/// What the control thread sends.
// A `Sample` is large (≈ 500 bytes) but boxing it would allocate in the tick; the channel's slots are sized
// once, before the loop.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum Message {
    /// One tick.
    Sample(Sample),
    /// An event.
    Event(Event),
}

/// Where the recording goes.
#[derive(Clone, Debug, Default)]
pub struct Sinks {
    /// Save to this `.rrd` file.
    pub save: Option<PathBuf>,
    /// Spawn a viewer bound to loopback.
    pub spawn: bool,
    /// Connect to a running viewer at this gRPC URL (`rerun+http://127.0.0.1:9876/proxy`).
    pub connect: Option<String>,
}

/// Static context the telemetry thread needs.
pub struct TelemetryConfig {
    /// Recording name (application id) and session id.
    pub session_name: String,
    /// Model for link poses (with the patient's payloads or without: only kinematics are used).
    pub model: Model,
    /// The URDF text, for link geometry.
    pub urdf: String,
    /// Name of the handle frame.
    pub handle_frame: String,
    /// Block names, indexed by block number.
    pub block_names: Vec<String>,
    /// Handle positions of each block's trial targets in the world [m], indexed by block and trial.
    pub block_targets: Vec<Vec<[f64; 3]>>,
    /// Every how many ticks the 3D arm pose is logged (time series are logged every tick).
    pub pose_every: u64,
    /// Channel capacity [messages].
    pub capacity: usize,
    /// Sinks.
    pub sinks: Sinks,
}

/// The control thread's end: allocation-free sends, non-blocking ([`Telemetry::sender`]) or waiting for room
/// ([`Telemetry::lossless_sender`], for unpaced simulation).
#[derive(Clone)]
pub struct TelemetrySender {
    tx: Sender<Message>,
    dropped: Arc<AtomicU64>,
    waits: Arc<AtomicU64>,
    wait_when_full: bool,
}

impl TelemetrySender {
    /// Sends one message. Non-blocking sender: a full channel drops it and counts it — real-time safe, bounded
    /// time. Lossless sender: a full channel makes the caller wait (yielding, then sleeping 50 µs at a time) until
    /// the writer has made room — allocation-free but not bounded in time, so only for unpaced loops. A stopped
    /// telemetry thread drops and counts in both.
    pub fn send(&self, message: Message) {
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

    /// Messages dropped so far because the channel was full (non-blocking sender) or the telemetry thread had
    /// stopped.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Sends that found the channel full and waited for the writer (lossless sender only).
    pub fn waits(&self) -> u64 {
        self.waits.load(Ordering::Relaxed)
    }
}

/// Handle to the running telemetry thread.
pub struct Telemetry {
    sender: TelemetrySender,
    /// Set by [`Telemetry::finish`]: the writer drains what is queued and ends, even while clones of the sender
    /// are still alive (waiting for every clone to drop would hang the shutdown).
    closing: Arc<AtomicBool>,
    thread: JoinHandle<Result<TelemetryReport, AppError>>,
}

/// What the telemetry thread did.
#[derive(Clone, Debug, Default)]
pub struct TelemetryReport {
    /// Samples received.
    pub samples: u64,
    /// Events received.
    pub events: u64,
    /// Where the recording was saved, if it was.
    pub saved_to: Option<PathBuf>,
    /// Sends that waited for room in the channel (lossless sender of an unpaced run).
    pub waits: u64,
}

impl Telemetry {
    /// Starts the telemetry thread with its Rerun recording stream. Not real-time safe.
    pub fn start(config: TelemetryConfig) -> Result<Self, AppError> {
        let rec = open_stream(&config)?;
        let (tx, rx) = bounded(config.capacity.max(1));
        let dropped = Arc::new(AtomicU64::new(0));
        let closing = Arc::new(AtomicBool::new(false));
        let closing_writer = closing.clone();
        let thread = std::thread::Builder::new()
            .name("plexo-telemetry".into())
            .spawn(move || Writer::new(config, rec)?.run(rx, &closing_writer))
            .map_err(|e| AppError::Telemetry(format!("cannot start the telemetry thread: {e}")))?;
        let waits = Arc::new(AtomicU64::new(0));
        Ok(Self { sender: TelemetrySender { tx, dropped, waits, wait_when_full: false }, closing, thread })
    }

    /// A non-blocking sender for a paced control thread: a full channel drops (and counts) the message.
    pub fn sender(&self) -> TelemetrySender {
        self.sender.clone()
    }

    /// A sender for an unpaced simulation: a full channel makes it wait for the writer, so nothing is dropped
    /// (the simulated clock does not advance while it waits). Never for a paced loop.
    pub fn lossless_sender(&self) -> TelemetrySender {
        TelemetrySender { wait_when_full: true, ..self.sender.clone() }
    }

    /// A sender for a loop that is `paced` at wall clock ([`Self::sender`]) or not ([`Self::lossless_sender`]).
    pub fn sender_for(&self, paced: bool) -> TelemetrySender {
        if paced { self.sender() } else { self.lossless_sender() }
    }

    /// Stops the telemetry: the thread writes everything sent so far, flushes the sinks and ends; returns its
    /// report with the drop and wait counts (messages sent after this call are counted as dropped). Not
    /// real-time safe.
    pub fn finish(self) -> Result<(TelemetryReport, u64), AppError> {
        let (dropped, waits) = (self.sender.dropped.clone(), self.sender.waits.clone());
        self.closing.store(true, Ordering::Release);
        drop(self.sender);
        let mut report = self.thread.join().map_err(|_| AppError::Telemetry("telemetry thread panicked".into()))??;
        report.waits = waits.load(Ordering::Relaxed);
        Ok((report, dropped.load(Ordering::Relaxed)))
    }
}

fn open_stream(config: &TelemetryConfig) -> Result<rerun::RecordingStream, AppError> {
    let err = |what: &str, e: &dyn std::fmt::Display| AppError::Telemetry(format!("{what}: {e}"));
    let builder = rerun::RecordingStreamBuilder::new("plexo").recording_id(config.session_name.clone());
    let rec = match (&config.sinks.save, config.sinks.spawn, &config.sinks.connect) {
        (None, false, None) => {
            // No sink: record nothing, but keep the same code path.
            return Ok(rerun::RecordingStream::disabled());
        }
        (save, spawn, connect) => {
            let rec = builder.buffered().map_err(|e| err("cannot create the recording", &e))?;
            let mut sinks: Vec<Box<dyn rerun::sink::LogSink>> = Vec::new();
            if let Some(path) = save {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| AppError::Io { path: dir.display().to_string(), source: e })?;
                }
                let sink = rerun::sink::FileSink::new(path)
                    .map_err(|e| err(&format!("cannot write {}", path.display()), &e))?;
                sinks.push(Box::new(sink));
            }
            if spawn {
                // A plainly started Rerun 0.36 viewer listens on 0.0.0.0:9876, exposing patient data to the clinic
                // network: bind the viewer we spawn to loopback only.
                let opts =
                    rerun::SpawnOptions { extra_args: vec!["--bind".into(), "127.0.0.1".into()], ..Default::default() };
                rerun::spawn(&opts).map_err(|e| err("cannot spawn the Rerun viewer", &e))?;
                let url = format!("rerun+http://127.0.0.1:{}/proxy", opts.port);
                let sink = rerun::sink::GrpcSink::new(
                    url.parse::<rerun::external::re_uri::ProxyUri>().map_err(|e| err("viewer url", &e))?,
                );
                sinks.push(Box::new(sink));
            }
            if let Some(url) = connect {
                let uri = url
                    .parse::<rerun::external::re_uri::ProxyUri>()
                    .map_err(|e| err(&format!("--connect {url}"), &e))?;
                sinks.push(Box::new(rerun::sink::GrpcSink::new(uri)));
            }
            rec.set_sinks(sinks);
            rec
        }
    };
    Ok(rec)
}

/// Per-joint columns batched before sending.
struct Batch {
    ticks: Vec<i64>,
    times: Vec<f64>,
    series: Vec<[Vec<f64>; SERIES]>, // per joint
    true_torque: Vec<Vec<f64>>,      // per joint (only when present)
    assistance: Vec<f64>,
    effort_share: Vec<f64>,
    true_ticks: Vec<i64>,
    true_times: Vec<f64>,
}

const SERIES: usize = 5;
const SERIES_NAMES: [&str; SERIES] = ["q", "q_ref", "tau_cmd", "tau_patient_est", "stiffness"];
/// Samples per batch sent to Rerun (≈ 0.25 s at 1 kHz).
const BATCH: usize = 250;

impl Batch {
    fn new(dof: usize) -> Self {
        Self {
            ticks: Vec::with_capacity(BATCH),
            times: Vec::with_capacity(BATCH),
            series: (0..dof).map(|_| std::array::from_fn(|_| Vec::with_capacity(BATCH))).collect(),
            true_torque: (0..dof).map(|_| Vec::with_capacity(BATCH)).collect(),
            assistance: Vec::with_capacity(BATCH),
            effort_share: Vec::with_capacity(BATCH),
            true_ticks: Vec::with_capacity(BATCH),
            true_times: Vec::with_capacity(BATCH),
        }
    }

    fn push(&mut self, s: &Sample) {
        self.ticks.push(s.tick as i64);
        self.times.push(s.time);
        for (j, series) in self.series.iter_mut().enumerate() {
            let values = [s.q[j], s.q_ref[j], s.tau_cmd[j], s.tau_patient_est[j], s.stiffness[j]];
            for (k, v) in values.into_iter().enumerate() {
                series[k].push(v);
            }
        }
        if let Some(t) = &s.tau_patient_true {
            self.true_ticks.push(s.tick as i64);
            self.true_times.push(s.time);
            for (j, col) in self.true_torque.iter_mut().enumerate() {
                col.push(t[j]);
            }
        }
        self.assistance.push(s.assistance);
        self.effort_share.push(s.patient_effort_share);
    }

    fn len(&self) -> usize {
        self.ticks.len()
    }

    fn clear(&mut self) {
        self.ticks.clear();
        self.times.clear();
        self.series.iter_mut().flatten().for_each(Vec::clear);
        self.true_torque.iter_mut().for_each(Vec::clear);
        self.assistance.clear();
        self.effort_share.clear();
        self.true_ticks.clear();
        self.true_times.clear();
    }
}

struct Writer {
    rec: rerun::RecordingStream,
    model: Model,
    data: Data,
    joint_names: Vec<String>,
    links: Vec<(String, FrameId)>,
    handle: Option<FrameId>,
    block_names: Vec<String>,
    block_targets: Vec<Vec<[f64; 3]>>,
    pose_every: u64,
    batch: Batch,
    hand_path: Vec<[f32; 3]>,
    report: TelemetryReport,
    save: Option<PathBuf>,
}

fn rr_err(e: impl std::fmt::Display) -> AppError {
    AppError::Telemetry(e.to_string())
}

impl Writer {
    fn new(config: TelemetryConfig, rec: rerun::RecordingStream) -> Result<Self, AppError> {
        let data = Data::new(&config.model);
        let urdf = urdf_rs::read_from_string(&config.urdf).map_err(|e| AppError::Telemetry(format!("urdf: {e}")))?;
        let mut links = Vec::new();
        if rec.is_enabled() {
            rec.log_static("world", &rerun::ViewCoordinates::RIGHT_HAND_Z_UP()).map_err(rr_err)?;
        }
        for link in &urdf.links {
            let Some(frame) = config.model.frame_id(&link.name) else { continue };
            if rec.is_enabled() {
                log_link_geometry(&rec, &link.name, &link.visual)?;
            }
            links.push((link.name.clone(), frame));
        }
        let joint_names = config.model.joints().iter().map(|j| j.name.clone()).collect::<Vec<_>>();
        let handle = config.model.frame_id(&config.handle_frame);
        let dof = config.model.nv();
        Ok(Self {
            rec,
            data,
            joint_names,
            links,
            handle,
            block_names: config.block_names,
            block_targets: config.block_targets,
            pose_every: config.pose_every.max(1),
            batch: Batch::new(dof),
            hand_path: Vec::new(),
            report: TelemetryReport::default(),
            save: config.sinks.save,
            model: config.model,
        })
    }

    fn run(mut self, rx: Receiver<Message>, closing: &AtomicBool) -> Result<TelemetryReport, AppError> {
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
            match message {
                Message::Sample(s) => self.on_sample(&s)?,
                Message::Event(e) => self.on_event(&e)?,
            }
        }
        if self.rec.is_enabled() {
            self.flush_batch()?;
            self.rec.flush_blocking().map_err(rr_err)?;
        }
        self.report.saved_to = self.save.clone();
        Ok(self.report)
    }

    fn set_time(&self, tick: u64, time: f64) {
        self.rec.set_time_sequence("tick", tick as i64);
        self.rec.set_duration_secs("sim_time", time);
    }

    fn on_sample(&mut self, s: &Sample) -> Result<(), AppError> {
        self.report.samples += 1;
        if !self.rec.is_enabled() {
            return Ok(()); // no sink: count only (a disabled stream warns on every kind of call)
        }
        self.batch.push(s);
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        if s.tick.is_multiple_of(self.pose_every) && s.q.len() == self.model.nv() {
            self.set_time(s.tick, s.time);
            plexo_kinematics::forward_kinematics(&self.model, &mut self.data, &s.q);
            for (name, frame) in &self.links {
                let world_T_link = &self.data.world_T_frame[frame.0];
                self.rec.log(format!("world/robot/{name}"), &to_rr_transform(world_T_link)).map_err(rr_err)?;
            }
            if let Some(handle) = self.handle {
                let p = self.data.world_T_frame[handle.0].translation.vector;
                let p = [p.x as f32, p.y as f32, p.z as f32];
                self.hand_path.push(p);
                self.rec
                    .log("world/hand", &rerun::Points3D::new([p]).with_radii([0.012]).with_colors([[40, 120, 255]]))
                    .map_err(rr_err)?;
            }
            if let Some(t) = s.target {
                self.rec
                    .log(
                        "world/target",
                        &rerun::Points3D::new([[t[0] as f32, t[1] as f32, t[2] as f32]])
                            .with_radii([0.02])
                            .with_colors([[255, 160, 0]]),
                    )
                    .map_err(rr_err)?;
            }
        }
        Ok(())
    }

    fn flush_batch(&mut self) -> Result<(), AppError> {
        if self.batch.len() == 0 {
            return Ok(());
        }
        let b = &self.batch;
        let indexes = || {
            [
                rerun::TimeColumn::new_sequence("tick", b.ticks.iter().copied()),
                rerun::TimeColumn::new_duration_secs("sim_time", b.times.iter().copied()),
            ]
        };
        for (j, name) in self.joint_names.iter().enumerate() {
            for (k, series) in SERIES_NAMES.iter().enumerate() {
                let column =
                    rerun::Scalars::new(b.series[j][k].iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
                self.rec.send_columns(format!("joints/{name}/{series}"), indexes(), column).map_err(rr_err)?;
            }
            if !b.true_ticks.is_empty() {
                let idx = [
                    rerun::TimeColumn::new_sequence("tick", b.true_ticks.iter().copied()),
                    rerun::TimeColumn::new_duration_secs("sim_time", b.true_times.iter().copied()),
                ];
                let column =
                    rerun::Scalars::new(b.true_torque[j].iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
                self.rec.send_columns(format!("joints/{name}/tau_patient_true"), idx, column).map_err(rr_err)?;
            }
        }
        let column = rerun::Scalars::new(b.assistance.iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
        self.rec.send_columns("session/assistance", indexes(), column).map_err(rr_err)?;
        let column = rerun::Scalars::new(b.effort_share.iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
        self.rec.send_columns("session/patient_effort_share", indexes(), column).map_err(rr_err)?;
        self.batch.clear();
        Ok(())
    }

    fn block_name(&self, block: usize) -> &str {
        self.block_names.get(block).map(String::as_str).unwrap_or("?")
    }

    fn on_event(&mut self, e: &Event) -> Result<(), AppError> {
        self.report.events += 1;
        if !self.rec.is_enabled() {
            return Ok(());
        }
        let (text, level, tick, time) = match *e {
            Event::BlockStart { block, time, tick } => {
                self.set_time(tick, time);
                let name = self.block_name(block).to_owned();
                tracing::info!(block, name, "block starts");
                self.rec
                    .log("annotations", &rerun::TextLog::new(format!("block {block} '{name}' starts")))
                    .map_err(rr_err)?;
                self.log_targets(block, 0)?;
                (format!("block {block} '{name}' starts"), rerun::TextLogLevel::INFO, tick, time)
            }
            Event::TrialStart { block, trial, target, time, tick } => {
                self.hand_path.clear();
                self.set_time(tick, time);
                self.log_targets(block, trial + 1)?;
                (
                    format!(
                        "block {block} '{}' trial {trial} starts: target ({:.3}, {:.3}, {:.3}) m",
                        self.block_name(block),
                        target[0],
                        target[1],
                        target[2]
                    ),
                    rerun::TextLogLevel::DEBUG,
                    tick,
                    time,
                )
            }
            Event::TrialEnd { block, trial, success, final_error_m, duration, peaks, sparc, time, tick } => {
                self.set_time(tick, time);
                if self.hand_path.len() >= 2 {
                    let color = if success { [60, 200, 90] } else { [220, 60, 60] };
                    self.rec
                        .log(
                            "world/hand_path",
                            &rerun::LineStrips3D::new([self.hand_path.clone()])
                                .with_colors([color])
                                .with_radii([0.003]),
                        )
                        .map_err(rr_err)?;
                }
                self.rec.log("world/target", &rerun::Clear::flat()).map_err(rr_err)?;
                tracing::debug!(
                    block,
                    trial,
                    success,
                    final_error_mm = final_error_m * 1000.0,
                    duration,
                    peaks,
                    sparc,
                    "trial ends"
                );
                (
                    format!(
                        "block {block} trial {trial} {}: final error {:.1} mm after {duration:.2} s, {peaks} speed peak(s), SPARC {sparc:.2}",
                        if success { "reached" } else { "timed out" },
                        final_error_m * 1000.0
                    ),
                    if success { rerun::TextLogLevel::INFO } else { rerun::TextLogLevel::WARN },
                    tick,
                    time,
                )
            }
            Event::BlockEnd { block, trials, successes, time, tick } => {
                self.set_time(tick, time);
                let name = self.block_name(block).to_owned();
                let text = format!("block {block} '{name}' ends: {successes}/{trials} reached");
                tracing::info!(block, name, trials, successes, "block ends");
                self.rec.log("annotations", &rerun::TextLog::new(text.clone())).map_err(rr_err)?;
                self.rec.log("world/targets", &rerun::Clear::flat()).map_err(rr_err)?;
                (text, rerun::TextLogLevel::INFO, tick, time)
            }
            Event::Safety { outcome, time, tick } => {
                let level = match outcome {
                    SafetyOutcome::Disabled | SafetyOutcome::Enabling { .. } | SafetyOutcome::Active { .. } => {
                        tracing::info!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::INFO
                    }
                    SafetyOutcome::CompliantRelease { .. } => {
                        tracing::warn!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::WARN
                    }
                    SafetyOutcome::SafeStop { reason: StopReason::OperatorStop, .. } => {
                        tracing::info!(?outcome, "safety supervisor: controlled stop");
                        rerun::TextLogLevel::INFO
                    }
                    SafetyOutcome::SafeStop { .. } | SafetyOutcome::Fault { .. } => {
                        tracing::error!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::ERROR
                    }
                };
                (format!("safety: {outcome:?}"), level, tick, time)
            }
        };
        self.set_time(tick, time);
        self.rec.log("events", &rerun::TextLog::new(text).with_level(level)).map_err(rr_err)?;
        Ok(())
    }

    /// Logs the targets of `block` from trial `from` on as `world/targets` (the upcoming ones).
    fn log_targets(&self, block: usize, from: usize) -> Result<(), AppError> {
        let Some(targets) = self.block_targets.get(block) else { return Ok(()) };
        let upcoming: Vec<[f32; 3]> =
            targets.iter().skip(from).take(8).map(|t| [t[0] as f32, t[1] as f32, t[2] as f32]).collect();
        self.rec
            .log("world/targets", &rerun::Points3D::new(upcoming).with_radii([0.012]).with_colors([[120, 120, 140]]))
            .map_err(rr_err)
    }
}

fn to_rr_transform(iso: &nalgebra::Isometry3<f64>) -> rerun::Transform3D {
    let t = iso.translation.vector;
    let q = iso.rotation.coords; // (i, j, k, w)
    rerun::Transform3D::from_translation_rotation(
        [t.x as f32, t.y as f32, t.z as f32],
        rerun::Quaternion::from_xyzw([q.x as f32, q.y as f32, q.z as f32, q.w as f32]),
    )
}

fn urdf_pose_to_transform(pose: &urdf_rs::Pose) -> rerun::Transform3D {
    let [x, y, z] = pose.xyz.0;
    let [r, p, yw] = pose.rpy.0;
    let iso = nalgebra::Isometry3::from_parts(
        nalgebra::Translation3::new(x, y, z),
        nalgebra::UnitQuaternion::from_euler_angles(r, p, yw),
    );
    to_rr_transform(&iso)
}

/// Logs each visual of a link once (static) under `world/robot/<link>/visual_<k>`, in the link frame.
fn log_link_geometry(rec: &rerun::RecordingStream, link: &str, visuals: &[urdf_rs::Visual]) -> Result<(), AppError> {
    const COLOR: [u8; 3] = [170, 180, 195];
    for (k, visual) in visuals.iter().enumerate() {
        let path = format!("world/robot/{link}/visual_{k}");
        rec.log_static(path.as_str(), &urdf_pose_to_transform(&visual.origin)).map_err(rr_err)?;
        match &visual.geometry {
            urdf_rs::Geometry::Box { size } => {
                let [x, y, z] = size.0;
                rec.log_static(
                    path.as_str(),
                    &rerun::Boxes3D::from_sizes([[x as f32, y as f32, z as f32]]).with_colors([COLOR]),
                )
            }
            urdf_rs::Geometry::Cylinder { radius, length } => rec.log_static(
                path.as_str(),
                &rerun::Cylinders3D::from_lengths_and_radii([*length as f32], [*radius as f32]).with_colors([COLOR]),
            ),
            urdf_rs::Geometry::Capsule { radius, length } => rec.log_static(
                path.as_str(),
                // URDF capsules are centred on the origin along z; Rerun's start at the origin.
                &rerun::Capsules3D::from_lengths_and_radii([*length as f32], [*radius as f32])
                    .with_translations([[0.0, 0.0, -(*length as f32) / 2.0]])
                    .with_colors([COLOR]),
            ),
            urdf_rs::Geometry::Sphere { radius } => {
                rec.log_static(path.as_str(), &rerun::Ellipsoids3D::from_radii([*radius as f32]).with_colors([COLOR]))
            }
            urdf_rs::Geometry::Mesh { filename, .. } => {
                tracing::warn!(link, filename, "mesh visuals are not drawn; use primitives in the URDF");
                Ok(())
            }
        }
        .map_err(rr_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(capacity: usize) -> Telemetry {
        let (model, urdf) = crate::setup::load_robot("plexo-arm4").unwrap().value;
        Telemetry::start(TelemetryConfig {
            session_name: "test".into(),
            model,
            urdf,
            handle_frame: "handle".into(),
            block_names: vec![],
            block_targets: vec![],
            pose_every: 10,
            capacity,
            sinks: Sinks::default(),
        })
        .unwrap()
    }

    fn sample(tick: u64) -> Message {
        let zeros = JointArray::splat(4, 0.0);
        Message::Sample(Sample {
            tick,
            q: zeros,
            q_ref: zeros,
            tau_cmd: zeros,
            tau_patient_est: zeros,
            stiffness: zeros,
            ..Sample::default()
        })
    }

    #[test]
    fn finish_returns_while_a_sender_clone_is_still_alive() {
        // Regression: `finish` waited for every sender clone to drop, and a caller holding one hung forever.
        let telemetry = start(16);
        let sender = telemetry.sender();
        for tick in 0..5 {
            sender.send(sample(tick));
        }
        let (report, dropped) = telemetry.finish().unwrap();
        assert_eq!(report.samples, 5);
        assert_eq!(dropped, 0);
        // The writer has gone: later sends are counted, never block.
        sender.send(sample(5));
        assert_eq!(sender.dropped(), 1);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_blocking() {
        let telemetry = start(1);
        let sender = telemetry.sender();
        for tick in 0..10_000 {
            sender.send(sample(tick));
        }
        let (report, dropped) = telemetry.finish().unwrap();
        assert_eq!(report.samples + dropped, 10_000, "every message is either written or counted");
    }

    #[test]
    fn the_lossless_sender_of_an_unpaced_run_waits_for_the_writer_and_drops_nothing() {
        // Regression: the default `plexo sim` (unpaced, 555k ticks) dropped 2319 samples of its recording.
        let telemetry = start(1);
        let sender = telemetry.sender_for(false);
        for tick in 0..10_000 {
            sender.send(sample(tick));
        }
        assert!(sender.waits() > 0, "a one-slot channel must have been full at some send");
        let (report, dropped) = telemetry.finish().unwrap();
        assert_eq!((report.samples, dropped), (10_000, 0), "every message is written");
        assert_eq!(report.waits, sender.waits());
        // The writer has gone: the lossless sender does not wait forever, it counts.
        sender.send(sample(10_000));
        assert_eq!(sender.dropped(), 1);
    }
}
