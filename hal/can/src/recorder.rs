//! Bounded, allocation-free CAN recording to a candump file: buses push `Copy` [`BusRecord`]s into a bounded
//! crossbeam channel ([`RecordSink::record`], `try_send`: never blocks, never allocates, a full channel drops
//! the record and counts it), and a [`CandumpWriter`] thread formats them as can-utils candump lines
//! (`(seconds.micros) ifname ID#DATA`, see [`super::candump`]) into a buffered file.
//!
//! Memory is bounded by the channel capacity (set at [`CandumpWriter::create`]) plus the writer's one-second
//! reordering window, however long the session: a 10-minute 4-joint MIT session at 1 kHz writes ≈ 5 M lines
//! (≈ 200 MB of text) to disk while the process holds a few MB.
//!
//! Several buses share one writer (one file, like `candump -L any`): each bus's records are monotonic in time,
//! and the writer merges them by timestamp within a window of [`REORDER_WINDOW`] of bus time, so the file is
//! time-ordered. A record older than what was already written (a bus lagging by more than the window) is written
//! with the last written timestamp, so the file stays monotonic, and counted in [`CandumpSummary::late`].
//!
//! ```
//! use core::time::Duration;
//! use plexo_can::recorder::CandumpWriter;
//! use plexo_can::{CanBus, CanFrame, VirtualBus, VirtualBusConfig};
//!
//! let path = std::env::temp_dir().join(format!("plexo-doc-{}.log", std::process::id()));
//! let writer = CandumpWriter::create(&path, &["can0"], 1024)?;
//! let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
//! bus.record_to(writer.sink(0).unwrap());
//! let mut node = bus.node("host");
//! let _peer = bus.node("drive");
//! node.transmit(&CanFrame::standard(0x080, &[]).unwrap())?;
//! bus.stop_recording(); // releases the sink
//! let summary = writer.finish()?;
//! assert_eq!((summary.written, summary.dropped), (1, 0));
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "(0000000000.000055) can0 080#\n");
//! # std::fs::remove_file(&path).unwrap();
//! # Ok::<(), plexo_hal::HalError>(())
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use core::time::Duration;

use crossbeam::channel::{Receiver, Sender, TrySendError, bounded, select};

use super::bus::{BusState, CanBus};
use super::frame::CanFrame;
use plexo_hal::HalError;

/// How far (in bus time) the writer holds records back to merge several buses in time order [s].
pub const REORDER_WINDOW: Duration = Duration::from_secs(1);

/// One recorded frame. `Copy`: it crosses the channel without allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BusRecord {
    /// Index of the bus in the writer's interface list.
    pub bus: u16,
    /// End of transmission (or error report) [s of bus time].
    pub time: Duration,
    /// The frame.
    pub frame: CanFrame,
}

/// The sending end of a [`CandumpWriter`] for one bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct RecordSink {
    tx: Sender<BusRecord>,
    bus: u16,
    dropped: Arc<AtomicU64>,
}

impl RecordSink {
    /// Queues one record; `false` (and counted as dropped) if the channel is full or the writer has stopped.
    /// Real-time safe: never blocks, never allocates.
    pub fn record(&self, time: Duration, frame: &CanFrame) -> bool {
        match self.tx.try_send(BusRecord { bus: self.bus, time, frame: *frame }) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }
}

/// What a finished recording wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CandumpSummary {
    /// Lines written to the file.
    pub written: u64,
    /// Records lost because the channel was full (the writer could not keep up) or closed.
    pub dropped: u64,
    /// Records that arrived after newer ones were already written (more than [`REORDER_WINDOW`] late); written
    /// with the last written timestamp.
    pub late: u64,
}

/// A thread writing candump lines for one or more buses into one file. Not real-time safe (creation and
/// [`CandumpWriter::finish`]); only [`RecordSink::record`] runs on the real-time path.
pub struct CandumpWriter {
    path: PathBuf,
    tx: Sender<BusRecord>,
    done: Option<Sender<()>>,
    dropped: Arc<AtomicU64>,
    buses: usize,
    thread: Option<JoinHandle<Result<(u64, u64), std::io::Error>>>,
}

/// Heap entry ordered by (time, arrival) only.
struct Pending {
    time: Duration,
    seq: u64,
    record: BusRecord,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        (self.time, self.seq).cmp(&(other.time, other.seq))
    }
}

struct Output {
    file: std::io::BufWriter<std::fs::File>,
    names: Vec<String>,
    last: Duration,
    written: u64,
    late: u64,
}

impl Output {
    fn write(&mut self, r: &BusRecord) -> std::io::Result<()> {
        let time = if r.time < self.last {
            self.late += 1;
            self.last
        } else {
            r.time
        };
        self.last = time;
        let name = self.names.get(usize::from(r.bus)).map_or("can?", String::as_str);
        writeln!(self.file, "({:010}.{:06}) {} {}", time.as_secs(), time.subsec_micros(), name, r.frame)?;
        self.written += 1;
        Ok(())
    }
}

/// Merges records by time within [`REORDER_WINDOW`] and writes those that can no longer be overtaken.
struct Merger {
    heap: BinaryHeap<Reverse<Pending>>,
    newest: Duration,
    seq: u64,
}

impl Merger {
    /// Takes one record (in channel order) and writes every held record older than the window.
    fn accept(&mut self, record: BusRecord, out: &mut Output) -> std::io::Result<()> {
        self.seq += 1;
        self.newest = self.newest.max(record.time);
        self.heap.push(Reverse(Pending { time: record.time, seq: self.seq, record }));
        while self.heap.peek().is_some_and(|p| p.0.time + REORDER_WINDOW <= self.newest) {
            if let Some(Reverse(p)) = self.heap.pop() {
                out.write(&p.record)?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Output) -> std::io::Result<()> {
        while let Some(Reverse(p)) = self.heap.pop() {
            out.write(&p.record)?;
        }
        Ok(())
    }
}

fn writer_loop(rx: &Receiver<BusRecord>, done: &Receiver<()>, mut out: Output) -> std::io::Result<(u64, u64)> {
    let mut merger = Merger { heap: BinaryHeap::new(), newest: Duration::ZERO, seq: 0 };
    loop {
        select! {
            recv(rx) -> msg => match msg {
                Ok(record) => merger.accept(record, &mut out)?,
                Err(_) => break,
            },
            recv(done) -> _ => break,
        }
    }
    // Whatever the buses queued before the stop, in the same order and with the same merging.
    while let Ok(record) = rx.try_recv() {
        merger.accept(record, &mut out)?;
    }
    merger.finish(&mut out)?;
    out.file.flush()?;
    Ok((out.written, out.late))
}

impl CandumpWriter {
    /// Creates (truncates) `path` owner-only (0600 whatever the umask: CAN traffic is patient data) and starts
    /// the writer thread. `interfaces` are the names written for bus
    /// index 0, 1, …; `capacity` is the channel's size in records (memory ≈ 100 bytes per record, allocated
    /// now). Not real-time safe.
    pub fn create(path: &Path, interfaces: &[&str], capacity: usize) -> Result<Self, HalError> {
        if interfaces.is_empty() || interfaces.len() > usize::from(u16::MAX) {
            return Err(HalError::Config {
                key: "candump interfaces".into(),
                reason: format!("{} interfaces, allowed 1..=65535", interfaces.len()),
            });
        }
        let file = {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .and_then(|f| f.set_permissions(std::fs::Permissions::from_mode(0o600)).map(|()| f))
        }
        .map_err(|source| HalError::Io { context: format!("creating candump log {}", path.display()), source })?;
        let (tx, rx) = bounded(capacity.max(1));
        let (done_tx, done_rx) = bounded(1);
        let out = Output {
            file: std::io::BufWriter::with_capacity(1 << 16, file),
            names: interfaces.iter().map(|s| (*s).to_owned()).collect(),
            last: Duration::ZERO,
            written: 0,
            late: 0,
        };
        let thread = std::thread::Builder::new()
            .name("plexo-candump".into())
            .spawn(move || writer_loop(&rx, &done_rx, out))
            .map_err(|source| HalError::Io { context: "starting the candump writer thread".into(), source })?;
        Ok(Self {
            path: path.to_owned(),
            tx,
            done: Some(done_tx),
            dropped: Arc::new(AtomicU64::new(0)),
            buses: interfaces.len(),
            thread: Some(thread),
        })
    }

    /// The sink for bus `bus` (index into the interface list), `None` if out of range.
    pub fn sink(&self, bus: usize) -> Option<RecordSink> {
        (bus < self.buses).then(|| RecordSink {
            tx: self.tx.clone(),
            bus: bus as u16,
            dropped: Arc::clone(&self.dropped),
        })
    }

    /// Records dropped so far (channel full or closed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after it has written everything already queued, flushes the file and reports what was
    /// written and dropped. Stop the buses' recording first ([`super::VirtualBus::stop_recording`]): records
    /// sent after this are counted as dropped. Not real-time safe.
    pub fn finish(mut self) -> Result<CandumpSummary, HalError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<CandumpSummary, HalError> {
        if let Some(done) = self.done.take() {
            // A failed send means the writer already ended on an I/O error, which the join below reports.
            let _ = done.send(());
        }
        let Some(thread) = self.thread.take() else { return Ok(CandumpSummary::default()) };
        let context = || format!("writing candump log {}", self.path.display());
        let (written, late) = thread
            .join()
            .map_err(|_| HalError::Io { context: context(), source: std::io::Error::other("writer thread panicked") })?
            .map_err(|source| HalError::Io { context: context(), source })?;
        Ok(CandumpSummary { written, dropped: self.dropped(), late })
    }
}

impl Drop for CandumpWriter {
    /// Flushes what was recorded if [`CandumpWriter::finish`] was not called; an I/O error cannot be reported
    /// here (call `finish` to get it).
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Nothing to report to in a destructor; `finish` is the documented way to see the error.
            let _ = self.stop();
        }
    }
}

/// A [`CanBus`] that records every frame it transmits and every frame it receives (error frames included)
/// into a [`RecordSink`], timestamped on the wall clock as UNIX time (seconds since 1970-01-01 UTC), as
/// can-utils `candump -l` writes its logs — for real interfaces, whose own [`CanBus::now`] only counts from
/// when they were opened. Wrap each bus before handing it to [`crate::CanRobot::new`] and the log starts with
/// the first frame of the start-up (MIT polls, CiA 402 NMT and SDO configuration).
///
/// Timestamps: the wall clock is read once, at construction, and mapped onto the bus's monotonic clock
/// (`epoch = SystemTime::now() − bus.now()`); every record is `epoch + bus.now()` at the moment the frame was
/// handed to the bus (transmit) or taken from it (receive). So the log is monotonic whatever the system clock
/// does later (an NTP step), and stays within the bus clock's drift of UNIX time over a session. They are
/// host times, not the controller's: a received frame is stamped when `receive` returned it, not with the
/// kernel's receive timestamp that `candump` uses (at most the time the host took to come back to the socket
/// later: one control period in the cyclic loop); a transmitted frame when it was queued, before it won
/// arbitration. A frame queued and then discarded by [`CanBus::discard_pending_tx`] (e-stop) is in the log
/// although it never reached the wire (on SocketCAN nothing is discarded in user space, see
/// `crate::socketcan`).
///
/// Real-time safe as the inner bus is: [`RecordSink::record`] never blocks or allocates (a full channel drops
/// the record and counts it in [`CandumpWriter::dropped`]). With no sink it only forwards.
pub struct RecordingBus<B> {
    inner: B,
    sink: Option<RecordSink>,
    /// UNIX time at which the inner bus's clock read zero.
    epoch: Duration,
}

impl<B: CanBus> RecordingBus<B> {
    /// Wraps `inner`, recording into `sink` (`None`: forwards only). Reads the wall clock once. Not real-time
    /// safe.
    pub fn new(inner: B, sink: Option<RecordSink>) -> Self {
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let epoch = wall.saturating_sub(inner.now());
        Self { inner, sink, epoch }
    }

    /// The wrapped bus.
    pub fn inner(&self) -> &B {
        &self.inner
    }

    /// Stops recording (drops the sink, so the writer can finish); the bus goes on forwarding.
    pub fn stop_recording(&mut self) {
        self.sink = None;
    }

    /// The UNIX time [since 1970-01-01 UTC] the next record would carry. Real-time safe.
    pub fn wall_time(&self) -> Duration {
        self.epoch + self.inner.now()
    }

    fn record(&self, frame: &CanFrame) {
        if let Some(sink) = &self.sink {
            // A drop is counted by the sink; the bus never waits for the recording.
            sink.record(self.wall_time(), frame);
        }
    }
}

impl<B: CanBus> CanBus for RecordingBus<B> {
    type Error = B::Error;

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn transmit(&mut self, frame: &CanFrame) -> Result<(), Self::Error> {
        self.inner.transmit(frame)?;
        self.record(frame);
        Ok(())
    }

    fn receive(&mut self, timeout: Duration) -> Result<Option<CanFrame>, Self::Error> {
        let frame = self.inner.receive(timeout)?;
        if let Some(f) = &frame {
            self.record(f);
        }
        Ok(frame)
    }

    fn state(&self) -> BusState {
        self.inner.state()
    }

    fn discard_pending_tx(&mut self) -> Result<usize, Self::Error> {
        self.inner.discard_pending_tx()
    }

    fn recover(&mut self) -> Result<(), Self::Error> {
        self.inner.recover()
    }

    fn now(&self) -> Duration {
        self.inner.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::CanBus;
    use crate::candump;
    use crate::virtual_bus::{VirtualBus, VirtualBusConfig};

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("plexo-can-{}-{name}.log", std::process::id()))
    }

    #[test]
    fn two_buses_merge_in_time_order_and_parse_back() {
        let path = temp("merge");
        let writer = CandumpWriter::create(&path, &["can0", "can1"], 256).unwrap();
        let buses: Vec<VirtualBus> =
            ["can0", "can1"].iter().map(|n| VirtualBus::new(VirtualBusConfig::stepped(n, 1_000_000))).collect();
        let mut hosts = Vec::new();
        for (i, bus) in buses.iter().enumerate() {
            bus.record_to(writer.sink(i).unwrap());
            hosts.push((bus.node("host"), bus.node("peer")));
        }
        for k in 0..50u8 {
            // Bus 0 sends two frames per cycle, bus 1 one: bus 1's frames are timestamped earlier than bus 0's
            // second frame of the same cycle although they are recorded later.
            hosts[0].0.transmit(&CanFrame::standard(0x10, &[k; 8]).unwrap()).unwrap();
            hosts[0].0.transmit(&CanFrame::standard(0x11, &[k; 8]).unwrap()).unwrap();
            hosts[1].0.transmit(&CanFrame::standard(0x20, &[k; 8]).unwrap()).unwrap();
            for bus in &buses {
                bus.advance(Duration::from_millis(1));
            }
        }
        for bus in &buses {
            bus.stop_recording();
        }
        let summary = writer.finish().unwrap();
        assert_eq!(summary, CandumpSummary { written: 150, dropped: 0, late: 0 });
        let records = candump::parse_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(records.len(), 150);
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "time-ordered across buses");
        // Cycle 0: can0 0x10 ends at 135 µs, can1 0x20 at 135 µs, can0 0x11 at 270 µs.
        assert_eq!((records[0].ifname.as_str(), records[0].time), ("can0", Duration::from_micros(135)));
        assert_eq!((records[1].ifname.as_str(), records[1].frame.id().raw()), ("can1", 0x20));
        assert_eq!((records[2].ifname.as_str(), records[2].time), ("can0", Duration::from_micros(270)));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn full_channel_drops_and_counts_without_blocking() {
        let path = temp("full");
        let writer = CandumpWriter::create(&path, &["can0"], 4).unwrap();
        let sink = writer.sink(0).unwrap();
        let frame = CanFrame::standard(0x1, &[]).unwrap();
        // The writer thread may or may not drain in between; every record is either queued or counted.
        let mut queued = 0u64;
        for i in 0..10_000u64 {
            if sink.record(Duration::from_micros(i), &frame) {
                queued += 1;
            }
        }
        drop(sink);
        let summary = writer.finish().unwrap();
        assert_eq!(summary.written, queued, "every queued record is written");
        assert_eq!(summary.dropped, 10_000 - queued, "every other one is counted");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count() as u64, queued);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn records_after_finish_are_dropped_and_the_error_of_a_bad_path_names_it() {
        let path = temp("after");
        let writer = CandumpWriter::create(&path, &["can0"], 8).unwrap();
        let sink = writer.sink(0).unwrap();
        assert!(writer.sink(1).is_none());
        assert_eq!(writer.finish().unwrap().written, 0);
        assert!(!sink.record(Duration::ZERO, &CanFrame::default()), "writer gone: dropped, not blocked");
        std::fs::remove_file(&path).unwrap();
        let bad = Path::new("/nonexistent-dir/plexo.log");
        let e = CandumpWriter::create(bad, &["can0"], 8).err().unwrap();
        assert!(e.to_string().contains("/nonexistent-dir/plexo.log"), "{e}");
    }

    #[test]
    fn a_recording_bus_logs_what_it_sends_and_receives_with_monotonic_unix_timestamps() {
        let path = temp("wall");
        let writer = CandumpWriter::create(&path, &["can0"], 256).unwrap();
        let bus = VirtualBus::new(VirtualBusConfig::stepped("can0", 1_000_000));
        let mut host = RecordingBus::new(bus.node("host"), writer.sink(0));
        let mut drive = bus.node("drive");
        let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        for k in 0..20u8 {
            host.transmit(&CanFrame::standard(0x001, &[k; 8]).unwrap()).unwrap();
            assert_eq!(drive.receive(Duration::ZERO).unwrap().unwrap().data(), &[k; 8]);
            drive.transmit(&CanFrame::standard(0x000, &[1, k, 0, 0, 0, 0, 30, 0]).unwrap()).unwrap();
            assert_eq!(host.receive(Duration::ZERO).unwrap().unwrap().data()[1], k);
            bus.advance(Duration::from_millis(1));
        }
        // Something the host never takes from the bus is not in its log.
        drive.transmit(&CanFrame::standard(0x000, &[9; 8]).unwrap()).unwrap();
        host.stop_recording();
        let after = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        let summary = writer.finish().unwrap();
        assert_eq!((summary.written, summary.dropped), (40, 0));
        let records = candump::parse_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(records.len(), 40);
        for (k, pair) in records.chunks(2).enumerate() {
            assert_eq!((pair[0].frame.id().raw(), pair[0].frame.data()[0]), (0x001, k as u8), "sent");
            assert_eq!((pair[1].frame.id().raw(), pair[1].frame.data()[1]), (0x000, k as u8), "received");
            assert!(pair.iter().all(|r| r.ifname == "can0"));
        }
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "monotonic");
        // UNIX time: within the test's wall-clock span, plus the 20 ms of bus time the test stepped.
        let first = records[0].time;
        let last = records[39].time;
        assert!(first + Duration::from_millis(1) >= before && first <= after, "{first:?} not in {before:?}..{after:?}");
        assert!(last <= after + Duration::from_millis(25), "{last:?} after {after:?}");
        // The bus clock's intervals are kept: 19 steps of 1 ms between the first and the last exchange.
        let span = records[38].time - records[0].time;
        assert!(span >= Duration::from_millis(19) && span < Duration::from_millis(20), "{span:?}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_record_later_than_the_window_keeps_the_file_monotonic() {
        let path = temp("late");
        let writer = CandumpWriter::create(&path, &["can0", "can1"], 64).unwrap();
        let (a, b) = (writer.sink(0).unwrap(), writer.sink(1).unwrap());
        let f = CanFrame::standard(0x1, &[]).unwrap();
        // Channel order 5 s, 7 s, 1 s: the 7 s record releases the 5 s one, then the 1 s one (6 s behind) can
        // only be written after it.
        assert!(a.record(Duration::from_secs(5), &f));
        assert!(a.record(Duration::from_secs(7), &f));
        assert!(b.record(Duration::from_secs(1), &f), "bus 1 lags by 6 s");
        drop((a, b));
        let summary = writer.finish().unwrap();
        assert_eq!(summary.written, 3);
        assert_eq!(summary.late, 1);
        let records = candump::parse_log(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert!(records.windows(2).all(|w| w[0].time <= w[1].time));
        std::fs::remove_file(&path).unwrap();
    }
}
