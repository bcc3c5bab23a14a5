//! The wire: the bus and its nodes, [`VirtualBus`] (time, occupancy, delivery, faults applied, recording) and
//! [`VirtualNode`], a participant implementing [`CanBus`]. See the module docs of `virtual_bus` for the model.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use core::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError, Sender, TrySendError, bounded};

use plexo_hal::HalError;

use crate::bus::{BusState, CanBus};
use crate::candump;
use crate::frame::{CanFrame, CanId, controller, error_class};
use crate::recorder::RecordSink;
use crate::timing::{Bitrates, FrameFormat, frame_duration};

use super::faults::{Fault, FaultRule, NodeId};

/// Which clock the bus runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// Virtual time, advanced explicitly; deterministic, `receive` never waits.
    Stepped,
    /// Wall time; `receive` waits up to its timeout.
    Wall,
}

/// Configuration of a [`VirtualBus`].
#[derive(Clone, Debug, PartialEq)]
pub struct VirtualBusConfig {
    /// Interface name written in the candump log (`vcan0`, `sim0`).
    pub name: String,
    /// Nominal and data bitrates [bit/s].
    pub bitrates: Bitrates,
    /// Receive queue capacity per node [frames] (excess frames are counted as overruns).
    pub rx_capacity: usize,
    /// Transmit queue capacity per node [frames] (frames wait there while the node is bus-off).
    pub tx_capacity: usize,
    /// Clock.
    pub clock: ClockMode,
}

impl VirtualBusConfig {
    /// A stepped classic bus at `bitrate` bit/s with queues of 256 frames.
    pub fn stepped(name: &str, bitrate: u32) -> Self {
        Self {
            name: name.to_owned(),
            bitrates: Bitrates::classic(bitrate),
            rx_capacity: 256,
            tx_capacity: 16,
            clock: ClockMode::Stepped,
        }
    }
}

/// Traffic statistics.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct BusStats {
    /// Frames put on the wire.
    pub frames: u64,
    /// Time the bus was occupied [s].
    pub busy: Duration,
    /// Frames lost by injected drops.
    pub dropped: u64,
    /// Frames a node could not take because its receive queue was full.
    pub overruns: u64,
    /// Frames (and error frames) the recording could not keep: the in-memory log was full or the candump
    /// writer's channel was full or closed.
    pub record_dropped: u64,
    /// Frames removed by [`CanBus::discard_pending_tx`] (bus-off queue and frames held by `Delay`/`Reorder`).
    pub discarded: u64,
}

struct NodeSlot {
    label: String,
    tx: Sender<CanFrame>,
    state: BusState,
    tx_queue: VecDeque<CanFrame>,
    /// A frame held back by a `Reorder` fault until this node's next frame.
    held: Option<CanFrame>,
}

/// A frame held back by a `Delay` fault, in the transmit path of its sender.
#[derive(Clone, Copy)]
struct Delayed {
    due: Duration,
    sender: usize,
    seq: u64,
    frame: CanFrame,
}

/// Where recorded frames go.
enum Recording {
    Off,
    /// In memory, at most `capacity` frames (reserved when recording starts); `active` false once stopped.
    Memory {
        log: Vec<(Duration, CanFrame)>,
        capacity: usize,
        active: bool,
    },
    /// Streamed to a candump writer thread.
    Sink(RecordSink),
}

/// Delayed frames reserved up front, so that fault-injection runs stay allocation-free too.
const DELAYED_RESERVE: usize = 64;

struct Core {
    config: VirtualBusConfig,
    nodes: Vec<NodeSlot>,
    now: Duration,
    wall_start: Instant,
    busy_until: Duration,
    rules: Vec<FaultRule>,
    delayed: Vec<Delayed>,
    delayed_seq: u64,
    recording: Recording,
    /// Newest timestamp given to a record (keeps the log monotonic).
    last_record: Duration,
    stats: BusStats,
}

/// Arbitration priority of a frame: lower wins (ISO 11898-1 bitwise arbitration, dominant 0). The key is the
/// arbitration field in transmission order: base id (11), RTR or SRR, IDE, extension (18), RTR of extended.
fn arbitration_key(frame: &CanFrame) -> u64 {
    let rtr = u64::from(frame.is_remote());
    match frame.id() {
        CanId::Standard(id) => (u64::from(id) << 21) | (rtr << 20),
        CanId::Extended(id) => {
            let id = u64::from(id);
            ((id >> 18) << 21) | (1 << 20) | (1 << 19) | ((id & 0x3_FFFF) << 1) | rtr
        }
    }
}

impl Core {
    fn now(&self) -> Duration {
        match self.config.clock {
            ClockMode::Stepped => self.now,
            ClockMode::Wall => self.wall_start.elapsed(),
        }
    }

    /// Takes the first matching rule's fault (decrementing its count).
    fn take_fault(&mut self, frame: &CanFrame, sender: usize, node_level: bool) -> Option<Fault> {
        let pos = self.rules.iter().position(|r| {
            matches!(r.fault, Fault::BusOff | Fault::TxBufferFull) == node_level && r.matches.matches(frame, sender)
        })?;
        let fault = self.rules[pos].fault;
        self.rules[pos].count -= 1;
        if self.rules[pos].count == 0 {
            self.rules.remove(pos);
        }
        Some(fault)
    }

    /// Puts delayed frames that are due on the wire, in arbitration order among those ready when the bus frees.
    fn flush_due(&mut self) {
        if self.delayed.is_empty() {
            return;
        }
        let now = self.now();
        while let Some(earliest) = self.delayed.iter().filter(|d| d.due <= now).map(|d| d.due).min() {
            let free = self.busy_until.max(earliest);
            // Every due frame ready by the time the bus is free contends; the highest priority wins, then the
            // one ready first, then the one held first.
            let Some(i) = self
                .delayed
                .iter()
                .enumerate()
                .filter(|(_, d)| d.due <= now && d.due <= free)
                .min_by_key(|(_, d)| (arbitration_key(&d.frame), d.due, d.seq))
                .map(|(i, _)| i)
            else {
                break;
            };
            let d = self.delayed.swap_remove(i);
            self.release(d.frame, d.sender, d.due);
        }
    }

    /// A frame held in `sender`'s transmit path leaves it: on the wire, or into its bus-off queue.
    fn release(&mut self, frame: CanFrame, sender: usize, not_before: Duration) {
        if self.nodes[sender].state == BusState::BusOff {
            if self.nodes[sender].tx_queue.len() < self.config.tx_capacity {
                self.nodes[sender].tx_queue.push_back(frame);
            } else {
                self.stats.dropped += 1;
            }
            return;
        }
        self.deliver(&frame, sender, not_before);
    }

    /// Records a frame at `time`, clamped so the log never goes backwards. Real-time safe (never allocates).
    fn record(&mut self, time: Duration, frame: &CanFrame) {
        let time = time.max(self.last_record);
        match &mut self.recording {
            Recording::Off | Recording::Memory { active: false, .. } => return,
            Recording::Memory { log, capacity, .. } => {
                if log.len() < *capacity {
                    log.push((time, *frame));
                } else {
                    self.stats.record_dropped += 1;
                }
            }
            Recording::Sink(sink) => {
                if !sink.record(time, frame) {
                    self.stats.record_dropped += 1;
                }
            }
        }
        self.last_record = time;
    }

    /// Puts a frame on the wire: timing, recording, delivery to every node but the sender.
    fn deliver(&mut self, frame: &CanFrame, sender: usize, not_before: Duration) {
        let duration = frame_duration(FrameFormat::of(frame), self.config.bitrates, true);
        let start = self.busy_until.max(not_before);
        let end = start + duration;
        self.busy_until = end;
        self.stats.frames += 1;
        self.stats.busy += duration;
        self.record(end, frame);
        for (i, node) in self.nodes.iter().enumerate() {
            if i == sender || node.state == BusState::BusOff {
                continue;
            }
            match node.tx.try_send(*frame) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => self.stats.overruns += 1,
            }
        }
    }

    fn wire(&mut self, mut frame: CanFrame, sender: usize) {
        let now = self.now();
        match self.take_fault(&frame, sender, false) {
            None => self.deliver(&frame, sender, now),
            Some(Fault::Drop) => self.stats.dropped += 1,
            Some(Fault::Delay(d)) => {
                self.delayed_seq += 1;
                self.delayed.push(Delayed { due: now + d, sender, seq: self.delayed_seq, frame });
            }
            Some(Fault::Duplicate) => {
                self.deliver(&frame, sender, now);
                self.deliver(&frame, sender, now);
            }
            Some(Fault::Reorder) => {
                if let Some(previous) = self.nodes[sender].held.replace(frame) {
                    self.release(previous, sender, now);
                }
                return;
            }
            Some(Fault::Corrupt { byte, xor }) => {
                if let Some(b) = frame.data_mut().get_mut(byte) {
                    *b ^= xor;
                }
                self.deliver(&frame, sender, now);
            }
            Some(Fault::BusOff | Fault::TxBufferFull) => unreachable!("node-level faults are taken separately"),
        }
        if let Some(held) = self.nodes[sender].held.take() {
            self.release(held, sender, now);
        }
    }

    /// An error frame reported by `node`'s own controller: to that node only, and into the log.
    fn error_to(&mut self, node: usize, frame: CanFrame) {
        if self.nodes[node].tx.try_send(frame).is_err() {
            self.stats.overruns += 1;
        }
        let now = self.now();
        self.record(now, &frame);
    }
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    // A poisoned lock means a test thread panicked while holding it; the bus data stays consistent (every
    // mutation is completed before any call that could panic), so keep going and let that panic be reported.
    core.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// An in-memory CAN bus. Cheap to clone (a handle); every clone refers to the same bus.
#[derive(Clone)]
pub struct VirtualBus {
    core: Arc<Mutex<Core>>,
}

impl VirtualBus {
    /// A new bus without nodes. Not real-time safe.
    pub fn new(config: VirtualBusConfig) -> Self {
        let core = Core {
            config,
            nodes: Vec::new(),
            now: Duration::ZERO,
            wall_start: Instant::now(),
            busy_until: Duration::ZERO,
            rules: Vec::new(),
            delayed: Vec::with_capacity(DELAYED_RESERVE),
            delayed_seq: 0,
            recording: Recording::Off,
            last_record: Duration::ZERO,
            stats: BusStats::default(),
        };
        Self { core: Arc::new(Mutex::new(core)) }
    }

    /// Attaches a new node (a controller with its own receive queue). Not real-time safe.
    pub fn node(&self, label: &str) -> VirtualNode {
        let mut core = lock(&self.core);
        let (tx, rx) = bounded(core.config.rx_capacity.max(1));
        let tx_capacity = core.config.tx_capacity;
        core.nodes.push(NodeSlot {
            label: label.to_owned(),
            tx,
            state: BusState::ErrorActive,
            tx_queue: VecDeque::with_capacity(tx_capacity),
            held: None,
        });
        VirtualNode { index: core.nodes.len() - 1, name: core.config.name.clone(), core: Arc::clone(&self.core), rx }
    }

    /// Interface name.
    pub fn name(&self) -> String {
        lock(&self.core).config.name.clone()
    }

    /// Label given to node `id` when it was attached.
    pub fn node_label(&self, id: NodeId) -> Option<String> {
        lock(&self.core).nodes.get(id.0).map(|n| n.label.clone())
    }

    /// Adds a fault rule. Rules are matched in insertion order.
    pub fn inject(&self, rule: FaultRule) {
        if rule.count > 0 {
            lock(&self.core).rules.push(rule);
        }
    }

    /// Fault rules not yet used up.
    pub fn pending_faults(&self) -> usize {
        lock(&self.core).rules.len()
    }

    /// Advances virtual time by `dt` (stepped clock; no effect on the wall clock) and delivers delayed frames
    /// that became due. Real-time safe.
    pub fn advance(&self, dt: Duration) {
        let mut core = lock(&self.core);
        core.now += dt;
        core.flush_due();
    }

    /// Current bus time [s].
    pub fn now(&self) -> Duration {
        lock(&self.core).now()
    }

    /// How far the bus is booked beyond now [s]: > 0 means frames are still being transmitted (a backlog that
    /// grows every cycle means the bus is overloaded).
    pub fn backlog(&self) -> Duration {
        let core = lock(&self.core);
        core.busy_until.saturating_sub(core.now())
    }

    /// Traffic statistics since creation.
    pub fn stats(&self) -> BusStats {
        lock(&self.core).stats
    }

    /// Starts recording every frame put on the wire (and error frames) in memory, at most `capacity` frames
    /// (reserved now, so recording never allocates on the bus path; further frames are dropped and counted in
    /// [`BusStats::record_dropped`]). Replaces a previous recording. For tests and short runs; long sessions
    /// stream to a file with [`VirtualBus::record_to`]. Not real-time safe.
    pub fn start_recording(&self, capacity: usize) {
        lock(&self.core).recording = Recording::Memory { log: Vec::with_capacity(capacity), capacity, active: true };
    }

    /// Streams every frame put on the wire (and error frames) into `sink` (a [`crate::recorder::CandumpWriter`]
    /// channel): `try_send` of a `Copy` record, never blocking, never allocating; a full channel drops the
    /// record and counts it. Replaces a previous recording (an in-memory log is discarded). Not real-time safe.
    pub fn record_to(&self, sink: RecordSink) {
        lock(&self.core).recording = Recording::Sink(sink);
    }

    /// Stops recording. An in-memory log is kept ([`VirtualBus::recorded`]); a sink is released (its writer can
    /// then finish).
    pub fn stop_recording(&self) {
        let mut core = lock(&self.core);
        match &mut core.recording {
            Recording::Sink(_) => core.recording = Recording::Off,
            Recording::Memory { active, .. } => *active = false,
            Recording::Off => {}
        }
    }

    /// The frames recorded in memory with their end-of-transmission times (empty when streaming to a sink).
    /// Not real-time safe.
    pub fn recorded(&self) -> Vec<(Duration, CanFrame)> {
        match &lock(&self.core).recording {
            Recording::Memory { log, .. } => log.clone(),
            Recording::Off | Recording::Sink(_) => Vec::new(),
        }
    }

    /// The in-memory recording as a candump log (`(seconds.micros) ifname ID#DATA` lines). Not real-time safe.
    pub fn candump_log(&self) -> String {
        let core = lock(&self.core);
        match &core.recording {
            Recording::Memory { log, .. } => candump::format_log(&core.config.name, log.iter().map(|(t, f)| (*t, f))),
            Recording::Off | Recording::Sink(_) => String::new(),
        }
    }

    /// Writes the in-memory recording as a candump log file. Not real-time safe.
    pub fn save_candump(&self, path: &std::path::Path) -> Result<(), HalError> {
        std::fs::write(path, self.candump_log())
            .map_err(|source| HalError::Io { context: format!("writing candump log {}", path.display()), source })
    }

    /// Delivers an error frame to node `node` as its own controller would report it (`class`: [`error_class`]
    /// bits, `data`: the 8 detail bytes, e.g. data\[1\] = [`controller::TX_PASSIVE`]). The node's
    /// [`CanBus::state`] follows what the frame implies (warning, passive, bus-off, restarted). Real-time safe.
    pub fn raise_error(&self, node: NodeId, class: u32, data: [u8; 8]) {
        let frame = CanFrame::error(class, data);
        let mut core = lock(&self.core);
        let Some(slot) = core.nodes.get_mut(node.0) else { return };
        if let Some(state) = crate::bus::ErrorFrameInfo::decode(&frame).and_then(|i| i.state()) {
            slot.state = state;
        }
        core.error_to(node.0, frame);
    }
}

/// One controller on a [`VirtualBus`]; implements [`CanBus`].
pub struct VirtualNode {
    index: usize,
    name: String,
    core: Arc<Mutex<Core>>,
    rx: Receiver<CanFrame>,
}

impl VirtualNode {
    /// This node's id on the bus (for [`super::FrameMatch::FromNode`]).
    pub fn id(&self) -> NodeId {
        NodeId(self.index)
    }

    /// Frames this node still holds for transmission: its bus-off queue and its frames held by `Delay` or
    /// `Reorder` faults.
    pub fn pending_tx(&self) -> usize {
        let core = lock(&self.core);
        let me = self.index;
        core.nodes[me].tx_queue.len()
            + core.delayed.iter().filter(|d| d.sender == me).count()
            + usize::from(core.nodes[me].held.is_some())
    }

    /// Receives without waiting. Real-time safe.
    pub fn try_receive(&mut self) -> Option<CanFrame> {
        lock(&self.core).flush_due();
        self.rx.try_recv().ok()
    }
}

impl CanBus for VirtualNode {
    type Error = HalError;

    fn name(&self) -> &str {
        &self.name
    }

    fn transmit(&mut self, frame: &CanFrame) -> Result<(), HalError> {
        if frame.is_error() {
            return Err(HalError::InvalidFrame { reason: "error frames are generated by controllers, not sent" });
        }
        let mut core = lock(&self.core);
        core.flush_due();
        let me = self.index;
        match core.take_fault(frame, me, true) {
            Some(Fault::TxBufferFull) => return Err(HalError::TxBufferFull { bus: self.name.clone() }),
            Some(Fault::BusOff) => {
                core.nodes[me].state = BusState::BusOff;
                core.nodes[me].tx_queue.push_back(*frame);
                core.error_to(me, CanFrame::error(error_class::BUS_OFF, [0; 8]));
                return Ok(());
            }
            _ => {}
        }
        if core.nodes[me].state == BusState::BusOff {
            // Like the Linux driver: the frame waits in the queue until the controller restarts.
            if core.nodes[me].tx_queue.len() >= core.config.tx_capacity {
                return Err(HalError::TxBufferFull { bus: self.name.clone() });
            }
            core.nodes[me].tx_queue.push_back(*frame);
            return Ok(());
        }
        core.wire(*frame, me);
        Ok(())
    }

    fn receive(&mut self, timeout: Duration) -> Result<Option<CanFrame>, HalError> {
        let clock = {
            let mut core = lock(&self.core);
            core.flush_due();
            core.config.clock
        };
        match clock {
            ClockMode::Stepped => Ok(self.rx.try_recv().ok()),
            ClockMode::Wall => match self.rx.recv_timeout(timeout) {
                Ok(frame) => Ok(Some(frame)),
                Err(RecvTimeoutError::Timeout) => Ok(None),
                Err(RecvTimeoutError::Disconnected) => {
                    Err(HalError::BusOff { bus: format!("{} (virtual bus dropped)", self.name) })
                }
            },
        }
    }

    fn state(&self) -> BusState {
        lock(&self.core).nodes[self.index].state
    }

    /// Drops the bus-off queue and every frame of this node held by `Delay` or `Reorder`. Real-time safe.
    fn discard_pending_tx(&mut self) -> Result<usize, HalError> {
        let mut core = lock(&self.core);
        let me = self.index;
        let mut n = core.nodes[me].tx_queue.len();
        core.nodes[me].tx_queue.clear();
        let before = core.delayed.len();
        core.delayed.retain(|d| d.sender != me);
        n += before - core.delayed.len();
        if core.nodes[me].held.take().is_some() {
            n += 1;
        }
        core.stats.discarded += n as u64;
        Ok(n)
    }

    fn recover(&mut self) -> Result<(), HalError> {
        let mut core = lock(&self.core);
        let me = self.index;
        if core.nodes[me].state != BusState::BusOff {
            return Ok(());
        }
        core.nodes[me].state = BusState::ErrorActive;
        core.error_to(
            me,
            CanFrame::error(error_class::RESTARTED | error_class::CONTROLLER, {
                let mut d = [0u8; 8];
                d[1] = controller::ACTIVE;
                d
            }),
        );
        // A restarted controller sends what is still queued: exactly the hazard callers avoid by discarding.
        while let Some(frame) = core.nodes[me].tx_queue.pop_front() {
            core.wire(frame, me);
        }
        Ok(())
    }

    fn now(&self) -> Duration {
        lock(&self.core).now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtual_bus::FrameMatch;

    fn bus() -> (VirtualBus, VirtualNode, VirtualNode) {
        let bus = VirtualBus::new(VirtualBusConfig::stepped("vcan0", 1_000_000));
        let a = bus.node("host");
        let b = bus.node("drive");
        (bus, a, b)
    }

    fn f(id: u16, byte: u8) -> CanFrame {
        CanFrame::standard(id, &[byte; 8]).unwrap()
    }

    #[test]
    fn delivers_to_others_not_to_sender_with_bit_timing() {
        let (bus, mut a, mut b) = bus();
        bus.start_recording(16);
        a.transmit(&f(0x10, 1)).unwrap();
        a.transmit(&f(0x11, 2)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 1)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x11, 2)));
        assert_eq!(a.receive(Duration::ZERO).unwrap(), None, "no echo to the sender");
        // Two worst-case 8-byte frames at 1 Mbit/s: 135 µs each, back to back.
        let rec = bus.recorded();
        assert_eq!(rec[0].0, Duration::from_micros(135));
        assert_eq!(rec[1].0, Duration::from_micros(270));
        assert_eq!(bus.backlog(), Duration::from_micros(270));
        bus.advance(Duration::from_millis(1));
        assert_eq!(bus.backlog(), Duration::ZERO);
        assert_eq!(bus.stats().busy, Duration::from_micros(270));
    }

    #[test]
    fn candump_log_text_is_exact() {
        let (bus, mut a, _b) = bus();
        bus.start_recording(4);
        bus.advance(Duration::from_micros(1_000));
        a.transmit(&CanFrame::standard(0x080, &[]).unwrap()).unwrap();
        a.transmit(&CanFrame::standard(0x601, &[0x2B, 0x40, 0x60, 0x00, 0x0F, 0x00, 0x00, 0x00]).unwrap()).unwrap();
        // SYNC: 55 bits → 1.055 ms; then 135 bits → 1.190 ms.
        assert_eq!(
            bus.candump_log(),
            "(0000000000.001055) vcan0 080#\n(0000000000.001190) vcan0 601#2B4060000F000000\n"
        );
        let parsed = candump::parse_log(&bus.candump_log()).unwrap();
        assert_eq!(parsed[1].frame.data()[4], 0x0F);
    }

    #[test]
    fn fault_drop_loses_exactly_count_frames() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::Drop, matches: FrameMatch::Id(CanId::Standard(0x10)), count: 2 });
        for i in 0..3 {
            a.transmit(&f(0x10, i)).unwrap();
        }
        a.transmit(&f(0x20, 9)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 2)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x20, 9)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(bus.stats().dropped, 2);
        assert_eq!(bus.pending_faults(), 0);
    }

    #[test]
    fn fault_delay_holds_frame_until_virtual_time_passes() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::Delay(Duration::from_millis(2)), matches: FrameMatch::Any, count: 1 });
        a.transmit(&f(0x10, 1)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        bus.advance(Duration::from_millis(1));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None, "1 ms < 2 ms delay");
        bus.advance(Duration::from_millis(1));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 1)));
    }

    #[test]
    fn fault_duplicate_reorder_corrupt() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::Duplicate, matches: FrameMatch::Any, count: 1 });
        a.transmit(&f(0x10, 1)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 1)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 1)));

        bus.inject(FaultRule { fault: Fault::Reorder, matches: FrameMatch::Id(CanId::Standard(0x11)), count: 1 });
        a.transmit(&f(0x11, 1)).unwrap();
        a.transmit(&f(0x12, 2)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x12, 2)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x11, 1)));

        bus.inject(FaultRule { fault: Fault::Corrupt { byte: 0, xor: 0xFF }, matches: FrameMatch::Any, count: 1 });
        a.transmit(&f(0x13, 0x0F)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap().unwrap().data()[0], 0xF0);
    }

    #[test]
    fn fault_tx_buffer_full_is_an_error_not_silence() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::TxBufferFull, matches: FrameMatch::FromNode(a.id()), count: 1 });
        let e = a.transmit(&f(0x10, 1)).unwrap_err();
        assert_eq!(plexo_hal::RobotError::kind(&e), plexo_hal::ErrorKind::BufferFull);
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        a.transmit(&f(0x10, 2)).unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 2)));
    }

    #[test]
    fn fault_bus_off_queues_until_recover_and_discard_prevents_stale_frames() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(a.id()), count: 1 });
        a.transmit(&f(0x10, 1)).unwrap();
        assert_eq!(a.state(), BusState::BusOff);
        let err = a.receive(Duration::ZERO).unwrap().unwrap();
        assert!(err.is_error() && err.error_class() & error_class::BUS_OFF != 0);
        a.transmit(&f(0x10, 2)).unwrap();
        assert_eq!(a.pending_tx(), 2);
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None, "nothing leaves a bus-off node");
        // Without discarding, recovery sends the stale frames:
        a.recover().unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 1)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x10, 2)));
        // With discarding, nothing stale goes out.
        bus.inject(FaultRule { fault: Fault::BusOff, matches: FrameMatch::FromNode(a.id()), count: 1 });
        a.transmit(&f(0x10, 3)).unwrap();
        assert_eq!(a.discard_pending_tx().unwrap(), 1);
        a.recover().unwrap();
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(a.state(), BusState::ErrorActive);
    }

    #[test]
    fn delayed_and_reordered_frames_never_echo_to_their_sender() {
        // Regression: delayed/reordered frames were delivered with sender = usize::MAX and came back to the node
        // that sent them (SocketCAN never loops a frame back without recv_own_msgs).
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::Delay(Duration::from_millis(1)), matches: FrameMatch::Any, count: 1 });
        a.transmit(&f(0x10, 1)).unwrap();
        bus.inject(FaultRule { fault: Fault::Reorder, matches: FrameMatch::Any, count: 1 });
        a.transmit(&f(0x11, 2)).unwrap();
        a.transmit(&f(0x12, 3)).unwrap();
        bus.advance(Duration::from_millis(1));
        let mut got_b = Vec::new();
        while let Some(frame) = b.receive(Duration::ZERO).unwrap() {
            got_b.push(frame);
        }
        assert_eq!(got_b, vec![f(0x12, 3), f(0x11, 2), f(0x10, 1)]);
        assert_eq!(a.receive(Duration::ZERO).unwrap(), None, "nothing came back to the sender");
    }

    #[test]
    fn candump_log_stays_monotonic_with_error_frames_and_a_busy_bus() {
        // Regression: error frames were logged at `now` while data frames are logged at their end of
        // transmission (in the future on a busy bus), so the log went backwards.
        let (bus, mut a, _b) = bus();
        bus.start_recording(16);
        for i in 0..3 {
            a.transmit(&f(0x10, i)).unwrap(); // ends at 135, 270, 405 µs
        }
        bus.raise_error(a.id(), error_class::CONTROLLER, [0, controller::TX_WARNING, 0, 0, 0, 0, 0, 0]);
        let rec = bus.recorded();
        assert_eq!(rec.len(), 4);
        assert!(rec.windows(2).all(|w| w[0].0 <= w[1].0), "{rec:?}");
        assert_eq!(rec[3].0, Duration::from_micros(405), "the error frame is not logged before earlier frames");
        let parsed = candump::parse_log(&bus.candump_log()).unwrap();
        assert!(parsed[3].frame.is_error());
    }

    #[test]
    fn delayed_frames_due_together_are_sent_in_arbitration_order() {
        let bus = VirtualBus::new(VirtualBusConfig::stepped("vcan0", 1_000_000));
        let mut a = bus.node("a");
        let mut c = bus.node("c");
        let mut rx = bus.node("rx");
        bus.inject(FaultRule { fault: Fault::Delay(Duration::from_millis(1)), matches: FrameMatch::Any, count: 4 });
        a.transmit(&f(0x300, 1)).unwrap();
        c.transmit(&CanFrame::new(CanId::Extended(0x0800_0000), &[2; 8]).unwrap()).unwrap(); // base id 0x200
        a.transmit(&CanFrame::remote(CanId::Standard(0x200), 8).unwrap()).unwrap();
        c.transmit(&f(0x200, 4)).unwrap();
        bus.start_recording(8);
        bus.advance(Duration::from_millis(1));
        let mut order = Vec::new();
        while let Some(frame) = rx.receive(Duration::ZERO).unwrap() {
            order.push((frame.id(), frame.is_remote()));
        }
        // Base id 0x200 beats 0x300; at base 0x200: standard data, then standard remote, then extended.
        assert_eq!(
            order,
            vec![
                (CanId::Standard(0x200), false),
                (CanId::Standard(0x200), true),
                (CanId::Extended(0x0800_0000), false),
                (CanId::Standard(0x300), false),
            ]
        );
        let rec = bus.recorded();
        assert!(rec.windows(2).all(|w| w[0].0 < w[1].0), "back to back on the wire: {rec:?}");
    }

    #[test]
    fn discard_drops_frames_held_by_delay_and_reorder_of_that_node_only() {
        let (bus, mut a, mut b) = bus();
        bus.inject(FaultRule { fault: Fault::Delay(Duration::from_millis(2)), matches: FrameMatch::Any, count: 2 });
        a.transmit(&f(0x10, 1)).unwrap();
        b.transmit(&f(0x20, 1)).unwrap();
        bus.inject(FaultRule { fault: Fault::Reorder, matches: FrameMatch::FromNode(a.id()), count: 1 });
        a.transmit(&f(0x11, 2)).unwrap();
        assert_eq!(a.pending_tx(), 2);
        assert_eq!(a.discard_pending_tx().unwrap(), 2);
        assert_eq!(a.pending_tx(), 0);
        assert_eq!(bus.stats().discarded, 2);
        // The next frame of `a` no longer releases the held one, and the delay expires with nothing of `a`.
        a.transmit(&f(0x12, 3)).unwrap();
        bus.advance(Duration::from_millis(2));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), Some(f(0x12, 3)));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(a.receive(Duration::ZERO).unwrap(), Some(f(0x20, 1)), "the other node's delayed frame survives");
    }

    #[test]
    fn memory_recording_is_bounded_and_counts_what_it_drops() {
        let (bus, mut a, _b) = bus();
        bus.start_recording(3);
        for i in 0..5 {
            a.transmit(&f(0x10, i)).unwrap();
        }
        assert_eq!(bus.recorded().len(), 3);
        assert_eq!(bus.stats().record_dropped, 2);
        bus.stop_recording();
        a.transmit(&f(0x10, 9)).unwrap();
        assert_eq!((bus.recorded().len(), bus.stats().record_dropped), (3, 2), "stopped: kept, nothing counted");
    }

    #[test]
    fn raised_error_frames_reach_only_that_node_and_set_its_state() {
        let (bus, mut a, mut b) = bus();
        bus.raise_error(a.id(), error_class::CONTROLLER, [0, controller::TX_PASSIVE, 0, 0, 0, 0, 0, 0]);
        assert_eq!(a.state(), BusState::ErrorPassive);
        let e = a.receive(Duration::ZERO).unwrap().unwrap();
        assert_eq!(crate::bus::ErrorFrameInfo::decode(&e).unwrap().state(), Some(BusState::ErrorPassive));
        assert_eq!(b.receive(Duration::ZERO).unwrap(), None);
        assert_eq!(b.state(), BusState::ErrorActive);
        bus.raise_error(a.id(), error_class::CONTROLLER, [0, controller::ACTIVE, 0, 0, 0, 0, 0, 0]);
        assert_eq!(a.state(), BusState::ErrorActive, "back to error active");
    }

    #[test]
    fn rx_overrun_is_counted() {
        let mut cfg = VirtualBusConfig::stepped("vcan0", 1_000_000);
        cfg.rx_capacity = 2;
        let bus = VirtualBus::new(cfg);
        let mut a = bus.node("a");
        let _b = bus.node("b");
        for i in 0..3 {
            a.transmit(&f(0x10, i)).unwrap();
        }
        assert_eq!(bus.stats().overruns, 1);
    }

    #[test]
    fn wall_clock_mode_crosses_threads() {
        let mut cfg = VirtualBusConfig::stepped("vcan0", 1_000_000);
        cfg.clock = ClockMode::Wall;
        let bus = VirtualBus::new(cfg);
        let mut a = bus.node("a");
        let mut b = bus.node("b");
        let echo = std::thread::spawn(move || {
            let frame = b.receive(Duration::from_secs(5)).unwrap().unwrap();
            b.transmit(&CanFrame::standard(frame.id().raw() as u16 + 1, frame.data()).unwrap()).unwrap();
        });
        a.transmit(&f(0x10, 7)).unwrap();
        let reply = a.receive(Duration::from_secs(5)).unwrap().unwrap();
        echo.join().unwrap();
        assert_eq!(reply, f(0x11, 7));
    }
}
