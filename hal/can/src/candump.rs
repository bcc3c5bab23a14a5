//! The can-utils candump log format (`candump -L`, read by `canplayer`, `log2asc` and python-can's
//! `CanutilsLogReader`): one frame per line, `(seconds.micros) ifname FRAME`, where FRAME is
//! - `123#DEADBEEF` (standard id: 3 hex digits; extended: 8 hex digits), uppercase hex data;
//! - `123#R` or `123#R3` for a remote request (with its length);
//! - `123##5DATA` for CAN FD: `##` then one hex digit of flags (bit 0 BRS, bit 1 ESI, bit 2 FDF: can-utils
//!   ≥ 2023.03 sets CANFD_FDF 0x04 on every FD frame it logs; logs without it are read too);
//! - error frames carry the error flag 0x20000000 in an 8-digit id.
//!
//! Format as defined by can-utils `lib.c` (`snprintf_canframe`, `parse_canframe`).

use core::fmt::Write as _;
use core::time::Duration;

use super::frame::{CanFrame, CanId, error_class};
use plexo_hal::HalError;

/// One line of a candump log.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRecord {
    /// Timestamp [s] since the log's epoch (virtual time for the virtual bus).
    pub time: Duration,
    /// Interface name.
    pub ifname: String,
    /// The frame.
    pub frame: CanFrame,
}

/// Formats one candump log line (without newline) as can-utils' `candump -l` writes it (`(%010llu.%06llu)`:
/// seconds zero-padded to 10 digits), e.g. `(0000000000.001000) vcan0 601#2B4060000F000000`.
pub fn format_line(time: Duration, ifname: &str, frame: &CanFrame) -> String {
    let mut line = String::with_capacity(40 + 2 * frame.len());
    // Writing to a String cannot fail.
    let _ = write!(line, "({:010}.{:06}) {} {}", time.as_secs(), time.subsec_micros(), ifname, frame);
    line
}

/// Formats a whole log, one line per record, each terminated by `\n`.
pub fn format_log<'a>(ifname: &str, records: impl IntoIterator<Item = (Duration, &'a CanFrame)>) -> String {
    let mut out = String::new();
    for (time, frame) in records {
        out.push_str(&format_line(time, ifname, frame));
        out.push('\n');
    }
    out
}

fn parse_hex_bytes(text: &str, line: usize) -> Result<Vec<u8>, HalError> {
    if !text.len().is_multiple_of(2) {
        return Err(HalError::LogParse { line, reason: format!("odd number of hex digits in data {text:?}") });
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .map_err(|_| HalError::LogParse { line, reason: format!("bad hex byte {:?}", &text[i..i + 2]) })
        })
        .collect()
}

/// Parses one candump log line; `line` is its 1-based number for error messages.
pub fn parse_line(text: &str, line: usize) -> Result<LogRecord, HalError> {
    let err = |reason: String| HalError::LogParse { line, reason };
    let mut parts = text.split_whitespace();
    let stamp = parts.next().ok_or_else(|| err("empty line".into()))?;
    let ifname = parts.next().ok_or_else(|| err("missing interface name".into()))?;
    let frame_text = parts.next().ok_or_else(|| err("missing frame".into()))?;
    if parts.next().is_some() {
        return Err(err("trailing fields after the frame".into()));
    }
    let stamp = stamp
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| err(format!("timestamp {stamp:?} is not (seconds.micros)")))?;
    let (secs, micros) = stamp.split_once('.').ok_or_else(|| err(format!("timestamp {stamp:?} has no '.'")))?;
    let secs: u64 = secs.parse().map_err(|_| err(format!("bad seconds {secs:?}")))?;
    if micros.len() != 6 {
        return Err(err(format!("timestamp fraction {micros:?} must have 6 digits")));
    }
    let micros: u32 = micros.parse().map_err(|_| err(format!("bad microseconds {micros:?}")))?;
    let time = Duration::new(secs, micros * 1000);

    let (id_text, rest) = frame_text.split_once('#').ok_or_else(|| err(format!("frame {frame_text:?} has no '#'")))?;
    let raw_id = u32::from_str_radix(id_text, 16).map_err(|_| err(format!("bad identifier {id_text:?}")))?;
    let frame = if id_text.len() == 8 && raw_id & error_class::FLAG != 0 {
        let data = parse_hex_bytes(rest, line)?;
        let mut bytes = [0u8; 8];
        if data.len() > 8 {
            return Err(err("error frame with more than 8 data bytes".into()));
        }
        bytes[..data.len()].copy_from_slice(&data);
        CanFrame::error(raw_id & error_class::MASK, bytes)
    } else {
        let id = match id_text.len() {
            3 => CanId::standard(raw_id as u16).ok_or_else(|| err(format!("standard id {id_text} above 7FF")))?,
            8 => CanId::extended(raw_id).ok_or_else(|| err(format!("extended id {id_text} above 1FFFFFFF")))?,
            _ => return Err(err(format!("identifier {id_text:?} must have 3 or 8 hex digits"))),
        };
        if let Some(fd) = rest.strip_prefix('#') {
            let mut chars = fd.chars();
            let flags = chars
                .next()
                .and_then(|c| c.to_digit(16))
                .ok_or_else(|| err(format!("FD frame {frame_text:?} lacks the flags digit")))?;
            let data = parse_hex_bytes(chars.as_str(), line)?;
            if !super::frame::FD_LENGTHS.contains(&(data.len() as u8)) || data.len() > 64 {
                return Err(err(format!("{} bytes is not a valid CAN FD length", data.len())));
            }
            let mut frame =
                CanFrame::new_fd(id, &data, flags & 1 != 0).ok_or_else(|| err("FD frame too long".into()))?;
            frame.set_esi(flags & 2 != 0);
            frame
        } else if let Some(r) = rest.strip_prefix('R') {
            let dlc = if r.is_empty() { 0 } else { r.parse().map_err(|_| err(format!("bad RTR length {r:?}")))? };
            CanFrame::remote(id, dlc).ok_or_else(|| err(format!("RTR length {dlc} above 8")))?
        } else {
            let data = parse_hex_bytes(rest, line)?;
            CanFrame::new(id, &data).ok_or_else(|| err(format!("{} data bytes in a classic frame", data.len())))?
        }
    };
    Ok(LogRecord { time, ifname: ifname.to_owned(), frame })
}

/// Parses a whole candump log (blank lines and `#` comments skipped). Not real-time safe.
pub fn parse_log(text: &str) -> Result<Vec<LogRecord>, HalError> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with("#"))
        .map(|(i, l)| parse_line(l, i + 1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_candump_text_for_each_frame_kind() {
        let t = Duration::from_micros(1_436_509_052_249_713);
        let f = CanFrame::standard(0x044, &[0x2A, 0x36, 0x6C, 0x2B, 0xBA]).unwrap();
        assert_eq!(format_line(t, "vcan0", &f), "(1436509052.249713) vcan0 044#2A366C2BBA");
        let t = Duration::from_micros(1_500);
        let ext = CanFrame::new(CanId::Extended(0x18DAF110), &[]).unwrap();
        assert_eq!(format_line(t, "can1", &ext), "(0000000000.001500) can1 18DAF110#");
        let fd = CanFrame::new_fd(CanId::Standard(0x123), &[0x11, 0x22], true).unwrap();
        assert_eq!(format_line(Duration::ZERO, "can0", &fd), "(0000000000.000000) can0 123##51122");
    }

    #[test]
    fn round_trip_through_the_parser() {
        let mut esi = CanFrame::new_fd(CanId::Extended(0x1ABCDE), &[7; 12], false).unwrap();
        esi.set_esi(true);
        let frames = [
            CanFrame::standard(0x601, &[0x40, 0x41, 0x60, 0, 0, 0, 0, 0]).unwrap(),
            CanFrame::remote(CanId::Standard(0x701), 1).unwrap(),
            CanFrame::new_fd(CanId::Standard(0x7FF), &[0xFF; 64], true).unwrap(),
            esi,
            CanFrame::error(error_class::BUS_OFF | error_class::CONTROLLER, [0, 0x20, 0, 0, 0, 0, 0, 0]),
        ];
        let log =
            format_log("vcan0", frames.iter().enumerate().map(|(i, f)| (Duration::from_micros(i as u64 * 250), f)));
        let parsed = parse_log(&log).unwrap();
        assert_eq!(parsed.len(), frames.len());
        for (i, (rec, f)) in parsed.iter().zip(&frames).enumerate() {
            assert_eq!(&rec.frame, f, "frame {i}");
            assert_eq!(rec.time, Duration::from_micros(i as u64 * 250));
            assert_eq!(rec.ifname, "vcan0");
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let e = parse_log("(0.000000) can0 123#00\n(0.1) can0 123#00").unwrap_err();
        assert!(matches!(e, HalError::LogParse { line: 2, .. }), "{e}");
        assert!(parse_line("(0.000000) can0 123#0", 1).is_err(), "odd hex digits");
        assert!(parse_line("(0.000000) can0 1234#00", 1).is_err(), "4-digit id");
        assert!(parse_line("(0.000000) can0 123#000000000000000000", 1).is_err(), "9 classic bytes");
        assert!(parse_line("(0.000000) can0 123##1000000000000000000", 1).is_err(), "9 bytes is no FD length");
    }

    #[test]
    fn lines_are_written_as_can_utils_writes_them() {
        // Issue 13 §5: seconds were not zero-padded to 10 digits and the FD flags digit lacked CANFD_FDF (0x04),
        // as can-utils' `candump -l` (lib.c, `(%010llu.%06llu)`; FDF logged since can-utils 2023.03) writes them.
        let fd = CanFrame::new_fd(CanId::Standard(0x123), &[0x11, 0x22], true).unwrap();
        let line = format_line(Duration::new(1_733_140_000, 123_000), "can1", &fd);
        assert_eq!(line, "(1733140000.000123) can1 123##51122");
        let classic = CanFrame::new(CanId::Standard(0x80), &[]).unwrap();
        assert_eq!(format_line(Duration::from_micros(55), "can0", &classic), "(0000000000.000055) can0 080#");
        // can-utils' lines parse back, with or without the FDF bit.
        for (text, brs) in [("(1733140000.000123) can1 123##51122", true), ("(0.000000) can0 123##01122", false)] {
            let r = parse_line(text, 1).unwrap();
            assert!(r.frame.is_fd() && r.frame.is_brs() == brs && r.frame.data() == [0x11, 0x22], "{text}");
        }
    }
}
