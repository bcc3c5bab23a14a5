//! Bit timing of CAN frames: how long a frame occupies the bus, with worst-case bit stuffing.
//!
//! Frame layouts per ISO 11898-1:2015 (CAN 2.0 classic and CAN FD):
//! - Classic, standard id: SOF 1 + id 11 + RTR 1 + IDE 1 + r0 1 + DLC 4 + data 8n + CRC 15 = 34 + 8n bits
//!   subject to stuffing, then CRC delimiter 1 + ACK 2 + EOF 7 + intermission 3 = 13 bits without stuffing.
//!   8 bytes: 111 bits, plus at most ⌊(98 − 1)/4⌋ = 24 stuff bits → 135 bits (a stuff bit after every 4 equal
//!   bits in the worst case, the stuff bit itself starting the next run).
//! - Classic, extended id: SOF 1 + id 11 + SRR 1 + IDE 1 + id 18 + RTR 1 + r1 r0 2 + DLC 4 + data 8n + CRC 15 =
//!   54 + 8n stuffed bits + 13.
//! - CAN FD: arbitration phase (SOF … BRS: 17 bits standard, 36 extended) at the nominal bitrate; data phase
//!   (ESI 1 + DLC 4 + data 8n, dynamically stuffed; stuff count 4 + CRC 17 (n ≤ 16) or 21 with a fixed stuff
//!   bit every 4 bits) at the data bitrate when BRS is set; CRC delimiter, ACK, EOF and intermission (13 bits) at
//!   the nominal bitrate.

use core::time::Duration;

use super::frame::CanFrame;

/// Shape of a frame as far as timing is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameFormat {
    /// 29-bit identifier.
    pub extended: bool,
    /// CAN FD frame.
    pub fd: bool,
    /// FD bit-rate switch (data phase at the data bitrate).
    pub brs: bool,
    /// Payload bytes (for FD a valid FD length).
    pub len: u8,
}

impl FrameFormat {
    /// A classic frame with a standard id and `len` bytes.
    pub const fn classic(len: u8) -> Self {
        Self { extended: false, fd: false, brs: false, len }
    }

    /// The format of a concrete frame.
    pub fn of(frame: &CanFrame) -> Self {
        Self {
            extended: frame.id().is_extended(),
            fd: frame.is_fd(),
            brs: frame.is_brs(),
            len: if frame.is_remote() { 0 } else { frame.len() as u8 },
        }
    }
}

/// Bits of a frame at the nominal and at the data bitrate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameBits {
    /// Bits sent at the nominal (arbitration) bitrate.
    pub nominal: u32,
    /// Bits sent at the data bitrate (0 for classic frames and FD without BRS).
    pub data: u32,
}

impl FrameBits {
    /// Total bits.
    pub const fn total(self) -> u32 {
        self.nominal + self.data
    }
}

/// Nominal and data bitrates of a bus [bit/s].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bitrates {
    /// Nominal (arbitration) bitrate [bit/s].
    pub nominal: u32,
    /// Data-phase bitrate for CAN FD with BRS [bit/s]; equal to `nominal` for classic buses.
    pub data: u32,
}

impl Bitrates {
    /// A classic bus at `nominal` bit/s.
    pub const fn classic(nominal: u32) -> Self {
        Self { nominal, data: nominal }
    }
}

const TAIL_BITS: u32 = 13; // CRC delimiter 1 + ACK 2 + EOF 7 + intermission 3

/// Bits a frame occupies; `worst_case_stuffing` adds the maximum number of dynamic stuff bits.
pub fn frame_bits(format: FrameFormat, worst_case_stuffing: bool) -> FrameBits {
    let n = u32::from(format.len);
    if !format.fd {
        let stuffed = if format.extended { 54 } else { 34 } + 8 * n;
        let stuff = if worst_case_stuffing { (stuffed - 1) / 4 } else { 0 };
        return FrameBits { nominal: stuffed + stuff + TAIL_BITS, data: 0 };
    }
    let arbitration = if format.extended { 36 } else { 17 };
    let data_dynamic = 5 + 8 * n; // ESI + DLC + data
    let total_dynamic = arbitration + data_dynamic;
    let (arb_stuff, data_stuff) = if worst_case_stuffing {
        let all = (total_dynamic - 1) / 4;
        let arb = (arbitration - 1) / 4;
        (arb, all - arb)
    } else {
        (0, 0)
    };
    let crc: u32 = if n <= 16 { 17 } else { 21 };
    let fixed_stuff = (4 + crc).div_ceil(4);
    let data_phase = data_dynamic + data_stuff + 4 + crc + fixed_stuff;
    let arbitration_phase = arbitration + arb_stuff + TAIL_BITS;
    if format.brs {
        FrameBits { nominal: arbitration_phase, data: data_phase }
    } else {
        FrameBits { nominal: arbitration_phase + data_phase, data: 0 }
    }
}

/// Time a frame occupies the bus. Real-time safe.
pub fn frame_duration(format: FrameFormat, bitrates: Bitrates, worst_case_stuffing: bool) -> Duration {
    let bits = frame_bits(format, worst_case_stuffing);
    let nanos = u64::from(bits.nominal) * 1_000_000_000 / u64::from(bitrates.nominal.max(1))
        + u64::from(bits.data) * 1_000_000_000 / u64::from(bitrates.data.max(1));
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classic_bit_counts_match_the_design_notes() {
        // design-notes.md: 8 data bytes, 111 bits unstuffed, ≤ 135 with worst-case stuffing.
        assert_eq!(frame_bits(FrameFormat::classic(8), false).total(), 111);
        assert_eq!(frame_bits(FrameFormat::classic(8), true).total(), 135);
        // SYNC (0 bytes): 47–55 bits.
        assert_eq!(frame_bits(FrameFormat::classic(0), false).total(), 47);
        assert_eq!(frame_bits(FrameFormat::classic(0), true).total(), 55);
        let d = frame_duration(FrameFormat::classic(8), Bitrates::classic(1_000_000), true);
        assert_eq!(d, Duration::from_micros(135));
    }

    #[test]
    fn extended_and_fd_frames() {
        let ext = FrameFormat { extended: true, ..FrameFormat::classic(8) };
        // 54 + 64 = 118 stuffed bits, ⌊117/4⌋ = 29 stuff bits, + 13.
        assert_eq!(frame_bits(ext, false).total(), 131);
        assert_eq!(frame_bits(ext, true).total(), 160);
        // FD, 64 bytes, BRS, standard id: arbitration 17 + 4 stuff + 13 tail = 34 nominal bits;
        // data: 5 + 512 = 517 dynamic, all stuff ⌊(534 − 1)/4⌋ = 133 − 4 = 129, CRC 21 + 4 + 7 fixed.
        let fd = FrameFormat { extended: false, fd: true, brs: true, len: 64 };
        let bits = frame_bits(fd, true);
        assert_eq!(bits, FrameBits { nominal: 34, data: 517 + 129 + 4 + 21 + 7 });
        let d = frame_duration(fd, Bitrates { nominal: 1_000_000, data: 5_000_000 }, true);
        assert_eq!(d, Duration::from_nanos(34_000 + 678 * 200));
    }
}
