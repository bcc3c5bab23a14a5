//! An emulated CANopen CiA 402 servo drive in cyclic synchronous torque mode, frame by frame.
//!
//! Modelled (CiA 301 v4.2 / CiA 402-2 v4.1, see `crate::canopen`):
//! - NMT: boot-up message, pre-operational / operational / stopped; PDOs only when operational; reset node
//!   restores the factory object dictionary (as after a drive reboot or reflash);
//! - SDO server (expedited) over a typed object dictionary, with CiA 301 abort codes for unknown objects and
//!   sub-indices, read-only objects, wrong lengths and invalid values;
//! - PDO mapping by SDO with the CiA 301 procedure (mapping only while the PDO is invalid, mappable objects,
//!   64-bit limit), PDOs encoded from the mapping actually configured;
//! - SYNC: the latest RPDO is applied on SYNC, TPDOs are sent after it (transmission type 1);
//! - controlword/statusword state machine, quick stop (option 0x605A), fault reaction (0x605E), fault reset
//!   on a rising edge of bit 7;
//! - target torque in ‰ of the rated torque (0x6076), limited by max torque (0x6072);
//! - heartbeat producer (0x1017) and consumer (0x1016) with the abort connection option (0x6007) on loss: the
//!   consumer starts with the first heartbeat received (CiA 301 §7.2.8.3.2.2) and watches in every NMT state
//!   but stopped; a loss sends EMCY 0x8130 and re-arms on the next heartbeat; loss of SYNC for 3 communication
//!   cycles (0x1006) in operation enabled also triggers the abort connection option (EMCY 0x8100);
//! - RPDOs shorter than their mapping are not processed (EMCY 0x8210, CiA 301 table 21); a mapped object that
//!   cannot be written or read for a PDO raises EMCY 0x8200 (protocol error) — both counted in
//!   [`EmulatedCia402Drive::pdo_errors`], never dropped silently;
//! - EMCY on faults; test hooks for an SDO that aborts ([`EmulatedCia402Drive::refuse_object`]) and a drive whose
//!   rated torque was reset ([`EmulatedCia402Drive::set_rated_torque`]).

use core::time::Duration;

use crate::canopen::{
    self, COB_RPDO1, COB_SYNC, COB_TPDO1, COB_TPDO2, Cia402State, Emcy, NmtCommand, NmtState, SdoRequest, SdoResponse,
    abort, controlword as cw, od,
};
use crate::config::JointMapping;
use crate::frame::{CanFrame, CanId};

/// The object dictionary of the emulated drive (the writable part; read-only values come from the drive).
#[derive(Clone, Debug, PartialEq)]
struct Dictionary {
    cycle_period_us: u32,
    consumer_heartbeat: u32,
    producer_heartbeat_ms: u16,
    abort_connection: i16,
    quick_stop_option: i16,
    fault_reaction_option: i16,
    mode: i8,
    target_torque: i16,
    max_torque: u16,
    controlword: u16,
    pdo_cob: [u32; 3],
    pdo_type: [u8; 3],
    pdo_map: [[u32; 8]; 3],
    pdo_count: [u8; 3],
}

impl Dictionary {
    /// Factory values: heartbeat off, no consumer, mode 0, PDOs invalid, max torque 3000 ‰.
    fn factory(node: u8) -> Self {
        let n = u32::from(node);
        Self {
            cycle_period_us: 0,
            consumer_heartbeat: 0,
            producer_heartbeat_ms: 0,
            abort_connection: 1,
            quick_stop_option: 2,
            fault_reaction_option: 2,
            mode: 0,
            target_torque: 0,
            max_torque: 3000,
            controlword: 0,
            pdo_cob: [
                (1 << 31) | (u32::from(COB_RPDO1) + n),
                (1 << 31) | (u32::from(COB_TPDO1) + n),
                (1 << 31) | (u32::from(COB_TPDO2) + n),
            ],
            pdo_type: [255; 3],
            pdo_map: [[0; 8]; 3],
            pdo_count: [0; 3],
        }
    }
}

/// One emulated CiA 402 drive.
#[derive(Clone, Debug)]
pub struct EmulatedCia402Drive {
    node: u8,
    fd: bool,
    map: JointMapping,
    counts_per_rad: f64,
    rated_torque_mnm: u32,
    od: Dictionary,
    nmt: NmtState,
    state: Cia402State,
    /// The latest RPDO payload and its length, applied on SYNC.
    rpdo_latch: Option<([u8; 8], usize)>,
    /// Objects whose SDO access aborts with a code (test hook).
    refusals: Vec<(u16, u32)>,
    pdo_errors: u64,
    tpdo_pending: bool,
    last_sync: Option<Duration>,
    last_master_heartbeat: Option<Duration>,
    last_heartbeat_sent: Duration,
    position: f64,
    velocity: f64,
    delivered: f64,
    measured_torque: Option<f64>,
    outbox: Vec<CanFrame>,
    emcy_sent: Vec<Emcy>,
    booted: bool,
}

fn size_of(index: u16, sub: u8) -> Option<u8> {
    Some(match (index, sub) {
        (od::ERROR_REGISTER, 0) => 1,
        (od::COMMUNICATION_CYCLE_PERIOD, 0) => 4,
        (od::CONSUMER_HEARTBEAT, 0) => 1,
        (od::CONSUMER_HEARTBEAT, 1) => 4,
        (od::PRODUCER_HEARTBEAT, 0) => 2,
        (od::RPDO1_COMM | od::TPDO1_COMM | od::TPDO2_COMM, 1) => 4,
        (od::RPDO1_COMM | od::TPDO1_COMM | od::TPDO2_COMM, 2) => 1,
        (od::RPDO1_MAP | od::TPDO1_MAP | od::TPDO2_MAP, 0) => 1,
        (od::RPDO1_MAP | od::TPDO1_MAP | od::TPDO2_MAP, 1..=8) => 4,
        (od::ABORT_CONNECTION_OPTION, 0) => 2,
        (od::CONTROLWORD | od::STATUSWORD, 0) => 2,
        (od::QUICK_STOP_OPTION | od::FAULT_REACTION_OPTION, 0) => 2,
        (od::MODES_OF_OPERATION | od::MODES_OF_OPERATION_DISPLAY, 0) => 1,
        (od::POSITION_ACTUAL | od::VELOCITY_ACTUAL, 0) => 4,
        (od::TARGET_TORQUE | od::MAX_TORQUE | od::TORQUE_ACTUAL, 0) => 2,
        (od::MOTOR_RATED_TORQUE, 0) => 4,
        _ => return None,
    })
}

fn object_exists(index: u16) -> bool {
    (0..=8).any(|sub| size_of(index, sub).is_some())
}

fn pdo_slot(index: u16) -> Option<(usize, bool)> {
    match index {
        od::RPDO1_COMM => Some((0, false)),
        od::TPDO1_COMM => Some((1, false)),
        od::TPDO2_COMM => Some((2, false)),
        od::RPDO1_MAP => Some((0, true)),
        od::TPDO1_MAP => Some((1, true)),
        od::TPDO2_MAP => Some((2, true)),
        _ => None,
    }
}

impl EmulatedCia402Drive {
    /// A drive with node id `node`, mounted with `map`, encoder `counts_per_rev`, rated torque [mNm]. `fd`: the
    /// bus is CAN FD (PDOs sent as FD frames). Sends its boot-up message on the first `tick`.
    pub fn new(node: u8, map: JointMapping, counts_per_rev: u32, rated_torque_mnm: u32, fd: bool) -> Self {
        Self {
            node,
            fd,
            map,
            counts_per_rad: f64::from(counts_per_rev) / core::f64::consts::TAU,
            rated_torque_mnm,
            od: Dictionary::factory(node),
            nmt: NmtState::PreOperational,
            state: Cia402State::SwitchOnDisabled,
            rpdo_latch: None,
            refusals: Vec::new(),
            pdo_errors: 0,
            tpdo_pending: false,
            last_sync: None,
            last_master_heartbeat: None,
            last_heartbeat_sent: Duration::ZERO,
            position: 0.0,
            velocity: 0.0,
            delivered: 0.0,
            measured_torque: None,
            outbox: Vec::with_capacity(8),
            emcy_sent: Vec::new(),
            booted: false,
        }
    }

    /// Node id.
    pub fn node(&self) -> u8 {
        self.node
    }

    /// CiA 402 state.
    pub fn state(&self) -> Cia402State {
        self.state
    }

    /// NMT state.
    pub fn nmt(&self) -> NmtState {
        self.nmt
    }

    /// Current target torque [‰].
    pub fn target_torque(&self) -> i16 {
        self.od.target_torque
    }

    /// Plants a target torque as if left from an earlier session (test set-up for the stale-target hazard).
    pub fn set_stale_target(&mut self, permille: i16) {
        self.od.target_torque = permille;
    }

    /// EMCY messages sent so far.
    pub fn emcy_sent(&self) -> &[Emcy] {
        &self.emcy_sent
    }

    /// Raises a drive fault with EMCY `code` (e.g. 0x4310 motor over-temperature).
    pub fn inject_fault(&mut self, code: u16) {
        self.fault(code);
    }

    /// Makes every SDO access to object `index` abort with `code` (e.g. a drive that lacks 0x1016), until
    /// [`EmulatedCia402Drive::clear_refusals`]. Test hook.
    pub fn refuse_object(&mut self, index: u16, code: u32) {
        self.refusals.push((index, code));
    }

    /// Lets every object be accessed again.
    pub fn clear_refusals(&mut self) {
        self.refusals.clear();
    }

    /// Stops supervising SYNC (communication cycle period 0x1006 = 0): a drive whose only reaction to a silent
    /// host is its heartbeat consumer (0x1016 with 0x6007; SYNC supervision is optional in CiA 301). Test hook.
    pub fn stop_sync_supervision(&mut self) {
        self.od.cycle_period_us = 0;
    }

    /// Sets the rated torque 0x6076 [mNm] (as after a reflash to factory parameters). Test hook.
    pub fn set_rated_torque(&mut self, mnm: u32) {
        self.rated_torque_mnm = mnm;
    }

    /// PDOs that could not be processed or built (each also sent as EMCY).
    pub fn pdo_errors(&self) -> u64 {
        self.pdo_errors
    }

    /// Simulates a power cycle: factory dictionary, boot-up message, pre-operational, switch on disabled.
    pub fn reboot(&mut self) {
        *self = Self::new(
            self.node,
            self.map,
            (self.counts_per_rad * core::f64::consts::TAU).round() as u32,
            self.rated_torque_mnm,
            self.fd,
        );
    }

    fn emit(&mut self, frame: CanFrame) {
        let id = frame.id().raw();
        let fd_pdo = self.fd && (0x180..0x580).contains(&id);
        self.outbox.push(if fd_pdo {
            CanFrame::new_fd(frame.id(), frame.data(), true).unwrap_or(frame)
        } else {
            frame
        });
    }

    fn fault(&mut self, code: u16) {
        let e = Emcy { code, register: 0x01 | if code >> 12 == 4 { 0x08 } else { 0 }, vendor: [0; 5] };
        self.emcy_sent.push(e);
        self.emit(e.frame(self.node));
        // Fault reaction (0x605E) ends in Fault with the power stage off in this model for every option.
        self.state = Cia402State::Fault;
    }

    fn connection_lost(&mut self, code: u16) {
        let e = Emcy { code, register: 0x11, vendor: [0; 5] };
        self.emcy_sent.push(e);
        self.emit(e.frame(self.node));
        use Cia402State::*;
        match (self.od.abort_connection, self.state) {
            // No reaction, or already latched in fault (only a fault reset leaves it).
            (0, _) | (_, Fault) => {}
            (1, _) => self.state = Fault,
            (2, ReadyToSwitchOn | SwitchedOn | OperationEnabled | QuickStopActive) => self.state = SwitchOnDisabled,
            (_, OperationEnabled) => self.quick_stop(),
            (_, ReadyToSwitchOn | SwitchedOn) => self.state = SwitchOnDisabled,
            _ => {}
        }
    }

    fn quick_stop(&mut self) {
        // Options 0..=4 end in switch on disabled (0: at once; 1..4 after a ramp, instantaneous here because
        // torque mode has no motion ramp to follow); 5..=8 stay in quick stop active without torque.
        self.state = if (0..=4).contains(&self.od.quick_stop_option) {
            Cia402State::SwitchOnDisabled
        } else {
            Cia402State::QuickStopActive
        };
    }

    fn apply_controlword(&mut self, c: u16) {
        let previous = self.od.controlword;
        self.od.controlword = c;
        use Cia402State::*;
        if self.state == Fault {
            if previous & cw::FAULT_RESET == 0 && c & cw::FAULT_RESET != 0 {
                self.state = SwitchOnDisabled;
            }
            return;
        }
        if c & cw::FAULT_RESET != 0 {
            return;
        }
        self.state = match (self.state, c) {
            (_, c) if c & 0x02 == 0 => SwitchOnDisabled, // disable voltage
            (ReadyToSwitchOn | SwitchedOn, c) if c & 0x06 == 0x02 => SwitchOnDisabled, // quick stop
            (OperationEnabled, c) if c & 0x06 == 0x02 => {
                self.quick_stop();
                self.state
            }
            (SwitchOnDisabled | SwitchedOn | OperationEnabled, c) if c & 0x07 == 0x06 => ReadyToSwitchOn,
            (ReadyToSwitchOn, c) if c & 0x07 == 0x07 => SwitchedOn,
            (SwitchedOn, c) if c & 0x0F == 0x0F => OperationEnabled,
            (OperationEnabled, c) if c & 0x0F == 0x07 => SwitchedOn,
            (s, _) => s,
        };
    }

    fn read_object(&self, index: u16, sub: u8) -> Result<(u32, u8), u32> {
        let Some(len) = size_of(index, sub) else {
            return Err(if object_exists(index) { abort::NO_SUBINDEX } else { abort::NO_OBJECT });
        };
        let d = &self.od;
        let value = match (index, sub) {
            (od::ERROR_REGISTER, _) => u32::from(self.state == Cia402State::Fault),
            (od::COMMUNICATION_CYCLE_PERIOD, _) => d.cycle_period_us,
            (od::CONSUMER_HEARTBEAT, 0) => 1,
            (od::CONSUMER_HEARTBEAT, _) => d.consumer_heartbeat,
            (od::PRODUCER_HEARTBEAT, _) => u32::from(d.producer_heartbeat_ms),
            (od::ABORT_CONNECTION_OPTION, _) => d.abort_connection as u16 as u32,
            (od::CONTROLWORD, _) => u32::from(d.controlword),
            (od::STATUSWORD, _) => u32::from(self.statusword()),
            (od::QUICK_STOP_OPTION, _) => d.quick_stop_option as u16 as u32,
            (od::FAULT_REACTION_OPTION, _) => d.fault_reaction_option as u16 as u32,
            (od::MODES_OF_OPERATION | od::MODES_OF_OPERATION_DISPLAY, _) => d.mode as u8 as u32,
            (od::POSITION_ACTUAL, _) => self.position_counts() as u32,
            (od::VELOCITY_ACTUAL, _) => self.velocity_counts() as u32,
            (od::TARGET_TORQUE, _) => d.target_torque as u16 as u32,
            (od::MAX_TORQUE, _) => u32::from(d.max_torque),
            (od::MOTOR_RATED_TORQUE, _) => self.rated_torque_mnm,
            (od::TORQUE_ACTUAL, _) => self.torque_permille() as u16 as u32,
            (i, s) => match pdo_slot(i) {
                Some((k, false)) if s == 1 => d.pdo_cob[k],
                Some((k, false)) => u32::from(d.pdo_type[k]),
                Some((k, true)) if s == 0 => u32::from(d.pdo_count[k]),
                Some((k, true)) => d.pdo_map[k][usize::from(s) - 1],
                None => return Err(abort::NO_OBJECT),
            },
        };
        Ok((value, len))
    }

    fn write_object(&mut self, index: u16, sub: u8, value: u32, len: u8) -> Result<(), u32> {
        let Some(size) = size_of(index, sub) else {
            return Err(if object_exists(index) { abort::NO_SUBINDEX } else { abort::NO_OBJECT });
        };
        if size != len {
            return Err(abort::LENGTH_MISMATCH);
        }
        let d = &mut self.od;
        match (index, sub) {
            (od::ERROR_REGISTER | od::STATUSWORD | od::MODES_OF_OPERATION_DISPLAY, _)
            | (od::POSITION_ACTUAL | od::VELOCITY_ACTUAL | od::MOTOR_RATED_TORQUE | od::TORQUE_ACTUAL, _)
            | (od::CONSUMER_HEARTBEAT, 0) => return Err(abort::READ_ONLY),
            (od::COMMUNICATION_CYCLE_PERIOD, _) => d.cycle_period_us = value,
            (od::CONSUMER_HEARTBEAT, _) => d.consumer_heartbeat = value,
            (od::PRODUCER_HEARTBEAT, _) => d.producer_heartbeat_ms = value as u16,
            (od::ABORT_CONNECTION_OPTION, _) => d.abort_connection = value as u16 as i16,
            (od::QUICK_STOP_OPTION, _) => d.quick_stop_option = value as u16 as i16,
            (od::FAULT_REACTION_OPTION, _) => d.fault_reaction_option = value as u16 as i16,
            (od::MODES_OF_OPERATION, _) => {
                let mode = value as u8 as i8;
                if mode != 0 && mode != canopen::MODE_CST {
                    return Err(abort::INVALID_VALUE);
                }
                d.mode = mode;
            }
            (od::TARGET_TORQUE, _) => d.target_torque = value as u16 as i16,
            (od::MAX_TORQUE, _) => d.max_torque = value as u16,
            (od::CONTROLWORD, _) => self.apply_controlword(value as u16),
            (i, s) => match pdo_slot(i) {
                Some((k, false)) if s == 1 => {
                    let valid_now = d.pdo_cob[k] & (1 << 31) == 0;
                    if valid_now && value & (1 << 31) == 0 && value != d.pdo_cob[k] {
                        return Err(abort::INVALID_VALUE); // COB-ID changes only while invalid
                    }
                    d.pdo_cob[k] = value;
                }
                Some((k, false)) => {
                    if !(value == 1 || value == 0) {
                        return Err(abort::INVALID_VALUE); // this drive supports synchronous every SYNC only
                    }
                    d.pdo_type[k] = 1;
                }
                Some((k, true)) => {
                    if d.pdo_cob[k] & (1 << 31) == 0 {
                        return Err(abort::DEVICE_STATE); // mapping changes only while the PDO is invalid
                    }
                    if s == 0 {
                        let n = value as usize;
                        if n > 8 {
                            return Err(abort::VALUE_TOO_HIGH);
                        }
                        let bits: u32 = d.pdo_map[k][..n].iter().map(|e| e & 0xFF).sum();
                        if bits > 64 {
                            return Err(abort::PDO_TOO_LONG);
                        }
                        d.pdo_count[k] = n as u8;
                    } else {
                        if d.pdo_count[k] != 0 {
                            return Err(abort::DEVICE_STATE); // sub 0 must be 0 while entries change
                        }
                        let (obj, bits) = ((value >> 16) as u16, value & 0xFF);
                        let allowed: &[u16] = if k == 0 {
                            &[od::CONTROLWORD, od::TARGET_TORQUE]
                        } else {
                            &[od::STATUSWORD, od::POSITION_ACTUAL, od::VELOCITY_ACTUAL, od::TORQUE_ACTUAL]
                        };
                        if !allowed.contains(&obj) {
                            return Err(abort::NOT_MAPPABLE);
                        }
                        if Some(bits as u8) != size_of(obj, 0).map(|b| b * 8) {
                            return Err(abort::LENGTH_MISMATCH);
                        }
                        d.pdo_map[k][usize::from(s) - 1] = value;
                    }
                }
                None => return Err(abort::NO_OBJECT),
            },
        }
        Ok(())
    }

    fn statusword(&self) -> u16 {
        self.state.statusword() | 0x0200 // remote
    }

    fn position_counts(&self) -> i32 {
        (self.position * self.counts_per_rad).round() as i32
    }

    fn velocity_counts(&self) -> i32 {
        (self.velocity * self.counts_per_rad).round() as i32
    }

    /// Torque actual 0x6077 [‰]: the plant's torque reading if there is one (the drive measures its current),
    /// else the applied target.
    fn torque_permille(&self) -> i16 {
        let torque = self.measured_torque.unwrap_or(self.delivered);
        (torque / (f64::from(self.rated_torque_mnm) / 1000.0) * 1000.0).round() as i16
    }

    /// TPDO `k` from its mapping; `Ok(None)` if it is invalid or empty, `Err(abort code)` if a mapped object
    /// cannot be read.
    fn encode_tpdo(&self, k: usize) -> Result<Option<CanFrame>, u32> {
        if self.od.pdo_cob[k] & (1 << 31) != 0 || self.od.pdo_count[k] == 0 {
            return Ok(None);
        }
        let mut data = [0u8; 8];
        let mut at = 0usize;
        for entry in &self.od.pdo_map[k][..usize::from(self.od.pdo_count[k])] {
            let (value, len) = self.read_object((entry >> 16) as u16, (entry >> 8) as u8)?;
            data[at..at + usize::from(len)].copy_from_slice(&value.to_le_bytes()[..usize::from(len)]);
            at += usize::from(len);
        }
        Ok(CanFrame::new(CanId::Standard((self.od.pdo_cob[k] & 0x7FF) as u16), &data[..at]))
    }

    /// A PDO could not be processed: counted and signalled by EMCY `code` (no state change).
    fn pdo_error(&mut self, code: u16) {
        self.pdo_errors += 1;
        let e = Emcy { code, register: 0x11, vendor: [0; 5] };
        self.emcy_sent.push(e);
        self.emit(e.frame(self.node));
    }

    fn apply_rpdo(&mut self, data: [u8; 8], received: usize) {
        let count = usize::from(self.od.pdo_count[0]);
        let mapped: usize = self.od.pdo_map[0][..count].iter().map(|e| ((e & 0xFF) / 8) as usize).sum();
        if received < mapped {
            // CiA 301: a PDO shorter than its mapping is not processed.
            self.pdo_error(0x8210);
            return;
        }
        let mut at = 0usize;
        for k in 0..count {
            let entry = self.od.pdo_map[0][k];
            let (index, len) = ((entry >> 16) as u16, ((entry & 0xFF) / 8) as usize);
            let mut b = [0u8; 4];
            b[..len].copy_from_slice(&data[at..at + len]);
            at += len;
            // Mapped objects were checked writable when mapped; a failure here is a drive bug, not ignored.
            if self.write_object(index, 0, u32::from_le_bytes(b), len as u8).is_err() {
                self.pdo_error(0x8200);
            }
        }
    }

    /// Handles one frame from the bus at time `now`; immediate answers (SDO) go to the outbox.
    pub fn handle(&mut self, frame: &CanFrame, now: Duration) {
        let CanId::Standard(id) = frame.id() else { return };
        if let Some((cmd, target)) = NmtCommand::decode(frame) {
            if target == 0 || target == self.node {
                match cmd {
                    NmtCommand::Start => self.nmt = NmtState::Operational,
                    NmtCommand::Stop => self.nmt = NmtState::Stopped,
                    NmtCommand::EnterPreOperational => self.nmt = NmtState::PreOperational,
                    NmtCommand::ResetNode | NmtCommand::ResetCommunication => self.reboot(),
                }
            }
            return;
        }
        if self.od.consumer_heartbeat != 0 && u32::from(id) == 0x700 + ((self.od.consumer_heartbeat >> 16) & 0x7F) {
            self.last_master_heartbeat = Some(now);
            return;
        }
        if let Some(req) = SdoRequest::decode(frame, self.node) {
            if self.nmt == NmtState::Stopped {
                return;
            }
            let refused = |index: u16| self.refusals.iter().find(|(i, _)| *i == index).map(|(_, c)| *c);
            let resp = match req {
                SdoRequest::Upload { index, subindex } | SdoRequest::Download { index, subindex, .. }
                    if refused(index).is_some() =>
                {
                    SdoResponse::Abort { index, subindex, code: refused(index).unwrap_or(abort::GENERAL) }
                }
                SdoRequest::Upload { index, subindex } => match self.read_object(index, subindex) {
                    Ok((v, len)) => SdoResponse::Upload { index, subindex, data: v.to_le_bytes(), len },
                    Err(code) => SdoResponse::Abort { index, subindex, code },
                },
                SdoRequest::Download { index, subindex, data, len } => {
                    match self.write_object(index, subindex, u32::from_le_bytes(data), len) {
                        Ok(()) => SdoResponse::DownloadAck { index, subindex },
                        Err(code) => SdoResponse::Abort { index, subindex, code },
                    }
                }
            };
            self.emit(resp.frame(self.node));
            return;
        }
        if self.nmt != NmtState::Operational {
            return;
        }
        if id == COB_SYNC && frame.is_empty() {
            self.last_sync = Some(now);
            if let Some((data, len)) = self.rpdo_latch.take() {
                self.apply_rpdo(data, len);
            }
            self.tpdo_pending = true;
        } else if self.od.pdo_cob[0] & (1 << 31) == 0 && u32::from(id) == self.od.pdo_cob[0] & 0x7FF {
            let mut data = [0u8; 8];
            let n = frame.len().min(8);
            data[..n].copy_from_slice(&frame.data()[..n]);
            self.rpdo_latch = Some((data, n));
        }
    }

    /// Updates the measurement from the plant (link side): position [rad], velocity [rad/s].
    pub fn measure(&mut self, link_position: f64, link_velocity: f64) {
        self.position = self.map.drive_position(link_position);
        self.velocity = self.map.drive_velocity(link_velocity);
    }

    /// Updates the torque reading from the plant's torque sensing (link side) [Nm]: what 0x6077 reports.
    pub fn measure_torque(&mut self, link_torque: f64) {
        self.measured_torque = Some(self.map.drive_torque(link_torque));
    }

    /// Link-side torque [Nm] the drive applies during the period starting at `now`.
    pub fn torque(&mut self, _now: Duration) -> f64 {
        let produces = self.state == Cia402State::OperationEnabled
            && self.od.mode == canopen::MODE_CST
            && self.nmt == NmtState::Operational;
        if !produces {
            self.delivered = 0.0;
            return 0.0;
        }
        let limit = i32::from(self.od.max_torque);
        let permille = i32::from(self.od.target_torque).clamp(-limit, limit);
        self.delivered = f64::from(permille) / 1000.0 * f64::from(self.rated_torque_mnm) / 1000.0;
        self.map.link_torque(self.delivered)
    }

    /// Timers at `now`: boot-up, heartbeat producer, heartbeat consumer and SYNC-loss watchdogs.
    pub fn tick(&mut self, now: Duration) {
        if !self.booted {
            self.booted = true;
            self.emit(canopen::heartbeat_frame(self.node, NmtState::BootUp));
            self.last_heartbeat_sent = now;
        }
        let hb = Duration::from_millis(u64::from(self.od.producer_heartbeat_ms));
        if !hb.is_zero() && now.saturating_sub(self.last_heartbeat_sent) >= hb {
            self.last_heartbeat_sent = now;
            self.emit(canopen::heartbeat_frame(self.node, self.nmt));
        }
        let consumer = Duration::from_millis(u64::from(self.od.consumer_heartbeat & 0xFFFF));
        if self.nmt != NmtState::Stopped
            && !consumer.is_zero()
            && let Some(t) = self.last_master_heartbeat
            && now.saturating_sub(t) > consumer
        {
            self.connection_lost(0x8130);
            self.last_master_heartbeat = None;
        }
        let cycle = Duration::from_micros(u64::from(self.od.cycle_period_us));
        if self.state == Cia402State::OperationEnabled
            && !cycle.is_zero()
            && let Some(t) = self.last_sync
            && now.saturating_sub(t) > 3 * cycle
        {
            self.connection_lost(0x8100);
            self.last_sync = None;
        }
    }

    /// Cyclic replies due (TPDOs after a SYNC) go to the outbox.
    pub fn flush(&mut self) {
        if std::mem::take(&mut self.tpdo_pending) && self.nmt == NmtState::Operational {
            for k in 1..3 {
                match self.encode_tpdo(k) {
                    Ok(Some(f)) => self.emit(f),
                    Ok(None) => {}
                    Err(_) => self.pdo_error(0x8200),
                }
            }
        }
    }

    /// Frames to send (drained).
    pub fn drain_outbox(&mut self) -> std::vec::Drain<'_, CanFrame> {
        self.outbox.drain(..)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drive() -> EmulatedCia402Drive {
        EmulatedCia402Drive::new(5, JointMapping { ratio: 1.0, direction: 1.0, zero_offset: 0.0 }, 4096, 1000, false)
    }

    fn sdo(d: &mut EmulatedCia402Drive, req: SdoRequest) -> SdoResponse {
        d.handle(&req.frame(5), Duration::ZERO);
        let out: Vec<CanFrame> = d.drain_outbox().collect();
        SdoResponse::decode(out.last().unwrap(), 5).unwrap()
    }

    #[test]
    fn sdo_abort_codes() {
        let mut d = drive();
        let r = sdo(&mut d, SdoRequest::Upload { index: 0x2000, subindex: 0 });
        assert!(matches!(r, SdoResponse::Abort { code: abort::NO_OBJECT, .. }));
        let r = sdo(&mut d, SdoRequest::Upload { index: od::STATUSWORD, subindex: 3 });
        assert!(matches!(r, SdoResponse::Abort { code: abort::NO_SUBINDEX, .. }));
        let r = sdo(&mut d, SdoRequest::write(od::STATUSWORD, 0, 0, 2));
        assert!(matches!(r, SdoResponse::Abort { code: abort::READ_ONLY, .. }));
        let r = sdo(&mut d, SdoRequest::write(od::CONTROLWORD, 0, 6, 4));
        assert!(matches!(r, SdoResponse::Abort { code: abort::LENGTH_MISMATCH, .. }));
        let r = sdo(&mut d, SdoRequest::write(od::MODES_OF_OPERATION, 0, 3, 1));
        assert!(matches!(r, SdoResponse::Abort { code: abort::INVALID_VALUE, .. }));
        let r = sdo(&mut d, SdoRequest::write(od::TPDO1_MAP, 1, 0x6071_0010, 4));
        assert!(matches!(r, SdoResponse::Abort { code: abort::NOT_MAPPABLE, .. }), "{r:?}");
        let r = sdo(&mut d, SdoRequest::Upload { index: od::MOTOR_RATED_TORQUE, subindex: 0 });
        assert_eq!(r.value(), Some(1000));
    }

    #[test]
    fn state_machine_follows_cia402() {
        let mut d = drive();
        use Cia402State::*;
        for (c, want) in [
            (cw::SWITCH_ON, SwitchOnDisabled), // not allowed from switch on disabled
            (cw::SHUTDOWN, ReadyToSwitchOn),
            (cw::SWITCH_ON, SwitchedOn),
            (cw::ENABLE_OPERATION, OperationEnabled),
            (cw::SWITCH_ON, SwitchedOn), // disable operation
            (cw::ENABLE_OPERATION, OperationEnabled),
            (cw::QUICK_STOP, SwitchOnDisabled), // quick stop option 2 → switch on disabled
            (cw::SHUTDOWN, ReadyToSwitchOn),
            (cw::DISABLE_VOLTAGE, SwitchOnDisabled),
        ] {
            d.apply_controlword(c);
            assert_eq!(d.state(), want, "after {c:#06x}");
        }
        d.inject_fault(0x2310);
        assert_eq!(d.state(), Fault);
        d.apply_controlword(cw::SHUTDOWN);
        assert_eq!(d.state(), Fault, "no transition out of fault without reset");
        d.apply_controlword(cw::FAULT_RESET);
        assert_eq!(d.state(), SwitchOnDisabled, "rising edge of bit 7 resets");
    }
}
