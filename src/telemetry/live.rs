//! The live sink: a viewer (`--spawn`, `--connect`) behind a queue of its own, so that it can never hold up the
//! recording file, the summary or the session state (issue 14 §3).
//!
//! Rerun's `MultiSink` hands every message to each of its sinks in turn, and its gRPC sink blocks while the
//! connection's queue is full — with a viewer that died, never started or cannot be reached, the file sink behind
//! it waited too, and `flush_blocking` at the end of the session never returned (measured: `plexo sim --connect
//! rerun+http://127.0.0.1:1/proxy` hung with no output and ignored SIGTERM). [`LiveSink`] takes the gRPC sink off
//! the recording's path: messages go into a bounded queue served by a thread of its own; a full queue or a lost
//! connection drops the live stream's messages (counted, one WARN), never waits; the final flush waits at most
//! [`LIVE_FLUSH_TIMEOUT`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender, TrySendError};
use rerun::external::re_log_types::BlueprintActivationCommand;
use rerun::log::{ChunkBatcherConfig, LogMsg};
use rerun::sink::{GrpcSink, GrpcSinkConnectionState, LogSink, SinkFlushError};

/// Messages queued for the viewer before the live stream starts dropping them. The batcher of a live stream
/// sends a few hundred small chunks per second: this is several seconds of a viewer that does not read.
pub const LIVE_QUEUE_MESSAGES: usize = 2048;

/// Longest wait for the viewer at the end of a session [s]: after it the live stream's rest is given up.
pub const LIVE_FLUSH_TIMEOUT: Duration = Duration::from_secs(3);

/// What the live stream did, shared between the sink (owned by the recording stream) and the pipeline's report.
#[derive(Debug, Default)]
pub struct LiveStatus {
    /// Messages handed to the viewer's connection.
    pub forwarded: AtomicU64,
    /// Messages the live stream dropped (queue full, connection lost, flush given up).
    pub dropped: AtomicU64,
    /// The live stream was given up: the viewer is gone, unreachable or does not read.
    pub failed: AtomicBool,
}

impl LiveStatus {
    /// Messages dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Whether the live stream has been given up.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

enum Live {
    Message(LogMsg),
    Blueprint(Vec<LogMsg>, BlueprintActivationCommand),
    Flush(Duration, Sender<Result<(), SinkFlushError>>),
}

/// A viewer connection that never blocks the recording stream. Not real-time safe (runs on Rerun's threads).
pub struct LiveSink {
    queue: Sender<Live>,
    status: Arc<LiveStatus>,
    /// Where the viewer is (for the warning).
    url: String,
}

impl LiveSink {
    /// Puts `sink`, a gRPC connection to the viewer at `url`, behind a queue of `capacity` messages served by a
    /// thread of its own. `status` receives what happened to the stream.
    pub fn new(sink: GrpcSink, url: String, capacity: usize, status: Arc<LiveStatus>) -> std::io::Result<Self> {
        let (queue, rx) = crossbeam::channel::bounded(capacity.max(1));
        let forward_status = status.clone();
        let forward_url = url.clone();
        // Detached on purpose: a thread stuck in the gRPC sink (a viewer that stopped reading) must not be joined.
        std::thread::Builder::new()
            .name("plexo-live".into())
            .spawn(move || forward(&sink, &rx, &forward_status, &forward_url))?;
        Ok(Self { queue, status, url })
    }

    fn enqueue(&self, item: Live) {
        if self.status.failed() {
            self.status.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match self.queue.try_send(item) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                give_up(&self.status, &self.url, "does not take the stream (its queue is full)");
                self.status.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {
                give_up(&self.status, &self.url, "connection thread ended");
                self.status.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Marks the live stream failed and warns, once per stream.
fn give_up(status: &LiveStatus, url: &str, why: &str) {
    if !status.failed.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            viewer = url,
            "live viewer {why}: the live stream stops here; the recording file, the summary and the session \
             state are not affected"
        );
    }
}

/// The connection thread: hands the queue to the gRPC sink until the queue closes, dropping what it holds once
/// the connection is lost.
fn forward(sink: &GrpcSink, rx: &Receiver<Live>, status: &LiveStatus, url: &str) {
    while let Ok(item) = rx.recv() {
        if let GrpcSinkConnectionState::Disconnected(result) = sink.status() {
            let why = match result {
                Ok(()) => "disconnected".to_owned(),
                Err(e) => format!("connection lost ({e})"),
            };
            give_up(status, url, &why);
        }
        if status.failed() {
            match item {
                Live::Flush(_, done) => drop(done.send(Err(SinkFlushError::failed("live stream given up")))),
                _ => drop(status.dropped.fetch_add(1, Ordering::Relaxed)),
            }
            continue;
        }
        match item {
            Live::Message(msg) => {
                sink.send(msg);
                status.forwarded.fetch_add(1, Ordering::Relaxed);
            }
            Live::Blueprint(msgs, activation) => {
                let n = msgs.len() as u64;
                sink.send_blueprint(msgs, activation);
                status.forwarded.fetch_add(n, Ordering::Relaxed);
            }
            Live::Flush(timeout, done) => drop(done.send(sink.flush_blocking(timeout))),
        }
    }
}

impl LogSink for LiveSink {
    fn send(&self, msg: LogMsg) {
        self.enqueue(Live::Message(msg));
    }

    fn send_blueprint(&self, blueprint: Vec<LogMsg>, activation_cmd: BlueprintActivationCommand) {
        self.enqueue(Live::Blueprint(blueprint, activation_cmd));
    }

    /// Waits for the viewer at most `timeout` and [`LIVE_FLUSH_TIMEOUT`]; a viewer that does not answer in time
    /// is given up (one WARN) and the flush succeeds: the live stream never fails the recording.
    fn flush_blocking(&self, timeout: Duration) -> Result<(), SinkFlushError> {
        if self.status.failed() {
            return Ok(());
        }
        let limit = timeout.min(LIVE_FLUSH_TIMEOUT);
        let start = Instant::now();
        let (done, wait) = crossbeam::channel::bounded(1);
        match self.queue.send_timeout(Live::Flush(limit, done), limit) {
            Ok(()) => match wait.recv_timeout(limit.saturating_sub(start.elapsed()).max(Duration::from_millis(1))) {
                Ok(Ok(())) => {}
                Ok(Err(e)) => give_up(&self.status, &self.url, &format!("did not take the end of the stream ({e})")),
                Err(_) => give_up(&self.status, &self.url, &format!("did not answer within {limit:?}")),
            },
            Err(_) => give_up(&self.status, &self.url, &format!("did not take the stream within {limit:?}")),
        }
        Ok(())
    }

    fn default_batcher_config(&self) -> ChunkBatcherConfig {
        // Live viewing: small chunks often, as Rerun's own gRPC sink asks for.
        ChunkBatcherConfig::LOW_LATENCY
    }
}

/// Longest wait for a spawned viewer to listen.
pub const SPAWN_BIND_TIMEOUT: Duration = Duration::from_secs(10);

/// Spawns a Rerun viewer of our own on a port no other process holds, bound to loopback, opening `file` if
/// given, and waits until it listens; returns its address (`rerun+http://127.0.0.1:<port>/proxy`). A plainly
/// started Rerun 0.36 viewer listens on 0.0.0.0:9876, exposing patient data to the clinic network, and
/// `rerun::spawn` reuses whatever process already listens on its port, Rerun or not: `new` makes it start a
/// viewer on a free port instead. The error says why in a sentence. Not real-time safe.
pub fn spawn_viewer(file: Option<&std::path::Path>) -> Result<String, String> {
    let mut opts =
        rerun::SpawnOptions { new: true, extra_args: vec!["--bind".into(), "127.0.0.1".into()], ..Default::default() };
    opts.extra_args.extend(file.map(|f| f.display().to_string()));
    let info = rerun::spawn(&opts).map_err(|e| format!("cannot spawn the Rerun viewer ({e})"))?;
    if info.child_pid.is_none() {
        return Err(format!("port {} is held by another process: no patient data is streamed into it", info.port));
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], info.port));
    let start = Instant::now();
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
        if start.elapsed() > SPAWN_BIND_TIMEOUT {
            return Err(format!("the spawned viewer did not listen on {addr} within {SPAWN_BIND_TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(format!("rerun+http://127.0.0.1:{}/proxy", info.port))
}
