//! CubeMars AK actuators in "MIT mode" (the Mini Cheetah protocol): special frames, command packing, reply
//! decoding and the per-model range table.
//!
//! Source: CubeMars, *AK Series Actuator Driver Manual*, V1.0.8, §5.3 "MIT power mode communication protocol"
//! (pp. 48–50): special CAN codes, the command layout (standard id = motor id, 8 bytes: position 16 bit,
//! velocity 12, Kp 12, Kd 12, torque 12, big-endian bit packing), the reply layout (data[0] = driver id,
//! position 16, velocity 12, current/torque 12, data[6] = temperature, data[7] = error code) and the per-model
//! ranges. Each value is mapped linearly from `[min, max]` to `0 ..= 2^bits − 1`.
//!
//! Out-of-range values are **clamped, never wrapped** ([`MitCommand::encode`] reports which fields were clamped)
//! and NaN is refused before packing.

use crate::can::{CanFrame, CanId};

/// Enter motor (MIT) control mode.
pub const ENTER_MOTOR_MODE: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFC];
/// Exit motor control mode (torque off). The motor replies with its state, so Plexo also uses it as a poll
/// while disabled.
pub const EXIT_MOTOR_MODE: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFD];
/// Set the current position as zero.
pub const SET_ZERO: [u8; 8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE];

/// Ranges of the MIT-mode fields of one motor model, output-shaft side.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MitRanges {
    /// Position range ±`position_max` [rad].
    pub position_max: f64,
    /// Velocity range ±`velocity_max` [rad/s].
    pub velocity_max: f64,
    /// Torque range ±`torque_max` [Nm].
    pub torque_max: f64,
    /// Stiffness range 0..`kp_max` [Nm/rad].
    pub kp_max: f64,
    /// Damping range 0..`kd_max` [Nm·s/rad].
    pub kd_max: f64,
}

/// CubeMars AK motor models with a known MIT range table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum AkModel {
    /// AK10-9 (V1.1, KV100).
    #[serde(rename = "AK10-9")]
    Ak10_9,
    /// AK60-6 (V1.1).
    #[serde(rename = "AK60-6")]
    Ak60_6,
    /// AK70-10.
    #[serde(rename = "AK70-10")]
    Ak70_10,
    /// AK80-9.
    #[serde(rename = "AK80-9")]
    Ak80_9,
    /// AK80-64.
    #[serde(rename = "AK80-64")]
    Ak80_64,
}

impl AkModel {
    /// The model's MIT-mode ranges.
    ///
    /// CubeMars *AK Series Actuator Driver Manual* V1.0.8, §5.3, module range table (p. 50): position
    /// ±12.5 rad for all models; velocity / torque: AK10-9 ±50 rad/s / ±65 Nm, AK60-6 ±45 / ±15, AK70-10 ±50 /
    /// ±25, AK80-9 ±50 / ±18, AK80-64 ±8 / ±144; Kp 0–500, Kd 0–5. Older firmware used other ranges (e.g.
    /// ±95.5 rad); the ranges are firmware settings, so a joint config may override them (`mit.ranges`) and
    /// must match the motor's firmware.
    pub const fn ranges(self) -> MitRanges {
        let (velocity_max, torque_max) = match self {
            AkModel::Ak10_9 => (50.0, 65.0),
            AkModel::Ak60_6 => (45.0, 15.0),
            AkModel::Ak70_10 => (50.0, 25.0),
            AkModel::Ak80_9 => (50.0, 18.0),
            AkModel::Ak80_64 => (8.0, 144.0),
        };
        MitRanges { position_max: 12.5, velocity_max, torque_max, kp_max: 500.0, kd_max: 5.0 }
    }
}

/// Maps `x` in `[min, max]` to an unsigned `bits`-wide integer, clamping (never wrapping), rounding to nearest.
/// Returns the value and whether it was clamped. `x` must be finite. Real-time safe.
pub fn float_to_uint(x: f64, min: f64, max: f64, bits: u32) -> (u16, bool) {
    let clamped = x.clamp(min, max);
    let levels = f64::from((1u32 << bits) - 1);
    // Non-negative after the clamp: adding 0.5 and truncating rounds to nearest without a libm call.
    let v = (clamped - min) * (levels / (max - min)) + 0.5;
    ((v as u32).min((1u32 << bits) - 1) as u16, clamped != x)
}

/// Inverse of [`float_to_uint`]. Real-time safe.
pub fn uint_to_float(v: u16, min: f64, max: f64, bits: u32) -> f64 {
    let inv_levels = 1.0 / f64::from((1u32 << bits) - 1);
    f64::from(v) * ((max - min) * inv_levels) + min
}

/// One MIT-mode command, output-shaft side: `τ = τ_ff + Kp (p − p_m) + Kd (v − v_m)` in the drive.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub struct MitCommand {
    /// Desired position [rad].
    pub position: f64,
    /// Desired velocity [rad/s].
    pub velocity: f64,
    /// Stiffness [Nm/rad].
    pub kp: f64,
    /// Damping [Nm·s/rad].
    pub kd: f64,
    /// Feed-forward torque [Nm].
    pub torque: f64,
}

/// Which fields of a command were clamped to the model's range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Clamped {
    /// Number of clamped fields (0..=5).
    pub fields: u8,
}

impl MitCommand {
    /// A torque-free command holding at `position`: zero gains, zero torque (sent before entering motor mode
    /// so that a stale command in the drive cannot kick the arm).
    pub const fn hold_free(position: f64) -> Self {
        Self { position, velocity: 0.0, kp: 0.0, kd: 0.0, torque: 0.0 }
    }

    /// Packs the command into the 8-byte payload; `None` if a field is NaN/Inf (never packed). Real-time safe.
    ///
    /// Layout (manual V1.0.8 p. 49): `[p15..8] [p7..0] [v11..4] [v3..0|kp11..8] [kp7..0] [kd11..4]
    /// [kd3..0|t11..8] [t7..0]`.
    pub fn encode(&self, ranges: &MitRanges) -> Option<([u8; 8], Clamped)> {
        let values = [self.position, self.velocity, self.kp, self.kd, self.torque];
        if values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let (p, c0) = float_to_uint(self.position, -ranges.position_max, ranges.position_max, 16);
        let (v, c1) = float_to_uint(self.velocity, -ranges.velocity_max, ranges.velocity_max, 12);
        let (kp, c2) = float_to_uint(self.kp, 0.0, ranges.kp_max, 12);
        let (kd, c3) = float_to_uint(self.kd, 0.0, ranges.kd_max, 12);
        let (t, c4) = float_to_uint(self.torque, -ranges.torque_max, ranges.torque_max, 12);
        let data = [
            (p >> 8) as u8,
            p as u8,
            (v >> 4) as u8,
            (((v & 0xF) << 4) | (kp >> 8)) as u8,
            kp as u8,
            (kd >> 4) as u8,
            (((kd & 0xF) << 4) | (t >> 8)) as u8,
            t as u8,
        ];
        let fields = [c0, c1, c2, c3, c4].iter().filter(|c| **c).count() as u8;
        Some((data, Clamped { fields }))
    }

    /// Unpacks a command payload (what the drive does). `None` for special frames or a wrong length.
    pub fn decode(data: &[u8], ranges: &MitRanges) -> Option<Self> {
        let d: &[u8; 8] = data.try_into().ok()?;
        if is_special(d) {
            return None;
        }
        let p = (u16::from(d[0]) << 8) | u16::from(d[1]);
        let v = (u16::from(d[2]) << 4) | u16::from(d[3] >> 4);
        let kp = (u16::from(d[3] & 0xF) << 8) | u16::from(d[4]);
        let kd = (u16::from(d[5]) << 4) | u16::from(d[6] >> 4);
        let t = (u16::from(d[6] & 0xF) << 8) | u16::from(d[7]);
        Some(Self {
            position: uint_to_float(p, -ranges.position_max, ranges.position_max, 16),
            velocity: uint_to_float(v, -ranges.velocity_max, ranges.velocity_max, 12),
            kp: uint_to_float(kp, 0.0, ranges.kp_max, 12),
            kd: uint_to_float(kd, 0.0, ranges.kd_max, 12),
            torque: uint_to_float(t, -ranges.torque_max, ranges.torque_max, 12),
        })
    }

    /// The command frame for motor `motor_id`. `None` for NaN/Inf fields. Real-time safe.
    pub fn frame(&self, motor_id: u8, ranges: &MitRanges) -> Option<(CanFrame, Clamped)> {
        let (data, clamped) = self.encode(ranges)?;
        Some((CanFrame::new(CanId::Standard(u16::from(motor_id)), &data)?, clamped))
    }
}

/// True for the enter/exit/zero special payloads.
pub fn is_special(data: &[u8; 8]) -> bool {
    data[..7].iter().all(|b| *b == 0xFF) && matches!(data[7], 0xFC..=0xFE)
}

/// A special frame (`ENTER_MOTOR_MODE`, `EXIT_MOTOR_MODE`, `SET_ZERO`) for motor `motor_id`.
pub fn special_frame(motor_id: u8, payload: [u8; 8]) -> CanFrame {
    CanFrame::new(CanId::Standard(u16::from(motor_id)), &payload).unwrap_or_default()
}

/// Error codes of the reply's data[7] (manual V1.0.8 §5.3 / AK driver error table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MitErrorCode {
    /// 0: no fault.
    None,
    /// 1: motor over-temperature.
    OverTemperature,
    /// 2: over-current.
    OverCurrent,
    /// 3: over-voltage.
    OverVoltage,
    /// 4: under-voltage.
    UnderVoltage,
    /// 5: encoder fault.
    Encoder,
    /// 6: MOSFET over-temperature.
    MosfetOverTemperature,
    /// 7: motor stall / lock-up.
    Stall,
    /// Any other code.
    Unknown(u8),
}

impl MitErrorCode {
    /// Decodes the code byte.
    pub const fn from_byte(b: u8) -> Self {
        match b {
            0 => Self::None,
            1 => Self::OverTemperature,
            2 => Self::OverCurrent,
            3 => Self::OverVoltage,
            4 => Self::UnderVoltage,
            5 => Self::Encoder,
            6 => Self::MosfetOverTemperature,
            7 => Self::Stall,
            other => Self::Unknown(other),
        }
    }

    /// The code byte.
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::None => 0,
            Self::OverTemperature => 1,
            Self::OverCurrent => 2,
            Self::OverVoltage => 3,
            Self::UnderVoltage => 4,
            Self::Encoder => 5,
            Self::MosfetOverTemperature => 6,
            Self::Stall => 7,
            Self::Unknown(b) => b,
        }
    }

    /// The joint flags this code implies.
    pub const fn flags(self) -> crate::JointFlags {
        use crate::JointFlags as F;
        match self {
            Self::None => F::NONE,
            Self::OverTemperature | Self::MosfetOverTemperature => F::OVER_TEMPERATURE,
            Self::OverCurrent | Self::OverVoltage | Self::UnderVoltage => F::POWER,
            Self::Encoder => F::ENCODER,
            Self::Stall | Self::Unknown(_) => F::DRIVE_FAULT,
        }
    }
}

/// A decoded MIT reply, output-shaft side.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MitReply {
    /// Motor (driver) id from data[0].
    pub motor_id: u8,
    /// Position [rad].
    pub position: f64,
    /// Velocity [rad/s].
    pub velocity: f64,
    /// Torque [Nm] (or current [A] on firmware that reports current; see the joint config).
    pub torque: f64,
    /// Temperature [°C] (data[6], signed).
    pub temperature: f64,
    /// Error code (data[7]).
    pub error: MitErrorCode,
}

impl MitReply {
    /// Decodes a reply payload (6 bytes on old firmware without temperature/error, 8 on current firmware).
    /// Real-time safe.
    pub fn decode(data: &[u8], ranges: &MitRanges) -> Option<Self> {
        if data.len() < 6 {
            return None;
        }
        let p = (u16::from(data[1]) << 8) | u16::from(data[2]);
        let v = (u16::from(data[3]) << 4) | u16::from(data[4] >> 4);
        let t = (u16::from(data[4] & 0xF) << 8) | u16::from(data[5]);
        Some(Self {
            motor_id: data[0],
            position: uint_to_float(p, -ranges.position_max, ranges.position_max, 16),
            velocity: uint_to_float(v, -ranges.velocity_max, ranges.velocity_max, 12),
            torque: uint_to_float(t, -ranges.torque_max, ranges.torque_max, 12),
            temperature: data.get(6).map_or(0.0, |b| f64::from(*b as i8)),
            error: MitErrorCode::from_byte(data.get(7).copied().unwrap_or(0)),
        })
    }

    /// Encodes the 8-byte reply payload (what the drive sends). Values are clamped to the ranges.
    pub fn encode(&self, ranges: &MitRanges) -> [u8; 8] {
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        let (p, _) = float_to_uint(finite(self.position), -ranges.position_max, ranges.position_max, 16);
        let (v, _) = float_to_uint(finite(self.velocity), -ranges.velocity_max, ranges.velocity_max, 12);
        let (t, _) = float_to_uint(finite(self.torque), -ranges.torque_max, ranges.torque_max, 12);
        [
            self.motor_id,
            (p >> 8) as u8,
            p as u8,
            (v >> 4) as u8,
            (((v & 0xF) << 4) | (t >> 8)) as u8,
            t as u8,
            finite(self.temperature).clamp(-128.0, 127.0).round() as i8 as u8,
            self.error.to_byte(),
        ]
    }
}

/// A minimal set of MIT motors for tests and benchmarks: every frame addressed to one of them is answered at
/// once with a reply whose position and velocity are the commanded ones (no physics, no state machine). Use the
/// emulated drives of `plexo-sim` for faithful behaviour. A [`crate::can::Pump`] for
/// [`crate::can::PumpedNode`].
pub struct EchoMotors {
    node: crate::can::VirtualNode,
    motors: Vec<(u8, MitRanges)>,
}

impl EchoMotors {
    /// Motors `(id, ranges)` on `node`.
    pub fn new(node: crate::can::VirtualNode, motors: Vec<(u8, MitRanges)>) -> Self {
        Self { node, motors }
    }
}

impl crate::can::Pump for EchoMotors {
    fn pump(&mut self) {
        use crate::can::CanBus as _;
        while let Some(frame) = self.node.try_receive() {
            let Some(&(id, ranges)) = self.motors.iter().find(|(id, _)| frame.id() == CanId::Standard(u16::from(*id)))
            else {
                continue;
            };
            let cmd = MitCommand::decode(frame.data(), &ranges).unwrap_or_default();
            let reply = MitReply {
                motor_id: id,
                position: cmd.position,
                velocity: cmd.velocity,
                torque: cmd.torque,
                temperature: 30.0,
                error: MitErrorCode::None,
            };
            if let Some(f) = CanFrame::new(CanId::Standard(0), &reply.encode(&ranges)) {
                // A full queue here shows up as a missing reply on the host side, which is what tests check.
                let _ = self.node.transmit(&f);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK80_9: MitRanges = AkModel::Ak80_9.ranges();

    #[test]
    fn golden_command_frame_ak80_9() {
        // Hand derivation, AK80-9 ranges (p ±12.5, v ±50, Kp 0..500, Kd 0..5, τ ±18):
        // p = 0 rad     → (0 + 12.5)·65535/25 = 32767.5 → round 32768 = 0x8000
        // v = 0 rad/s   → 50·4095/100 = 2047.5 → 2048 = 0x800
        // Kp = 100      → 100·4095/500 = 819 = 0x333
        // Kd = 1        → 1·4095/5 = 819 = 0x333
        // τ = 9 Nm      → (9 + 18)·4095/36 = 3071.25 → 3071 = 0xBFF
        // bytes: 80 00 | 80 | 0|3 → 0x03 | 33 | 33 | 3|B → 0x3B | FF
        let cmd = MitCommand { position: 0.0, velocity: 0.0, kp: 100.0, kd: 1.0, torque: 9.0 };
        let (data, clamped) = cmd.encode(&AK80_9).unwrap();
        assert_eq!(data, [0x80, 0x00, 0x80, 0x03, 0x33, 0x33, 0x3B, 0xFF]);
        assert_eq!(clamped.fields, 0);
        let (frame, _) = cmd.frame(3, &AK80_9).unwrap();
        assert_eq!(frame.to_string(), "003#800080033333 3BFF".replace(' ', ""));
    }

    #[test]
    fn golden_special_frames() {
        assert_eq!(special_frame(1, ENTER_MOTOR_MODE).to_string(), "001#FFFFFFFFFFFFFFFC");
        assert_eq!(special_frame(1, EXIT_MOTOR_MODE).to_string(), "001#FFFFFFFFFFFFFFFD");
        assert_eq!(special_frame(1, SET_ZERO).to_string(), "001#FFFFFFFFFFFFFFFE");
        assert!(MitCommand::decode(&ENTER_MOTOR_MODE, &AK80_9).is_none(), "special frames are not commands");
    }

    #[test]
    fn golden_reply_ak80_9() {
        // Hand derivation: id 2; p = 0x9000 = 36864 → 36864·25/65535 = 14.062715, − 12.5 = 1.562715 rad;
        // v = 0x7FF = 2047 → 2047·100/4095 − 50 = −0.01221 rad/s; τ = 0x000 → −18 Nm;
        // temperature 0x1E = 30 °C; error 0.
        let r = MitReply::decode(&[0x02, 0x90, 0x00, 0x7F, 0xF0, 0x00, 0x1E, 0x00], &AK80_9).unwrap();
        assert_eq!(r.motor_id, 2);
        assert!((r.position - 1.562715).abs() < 1e-6, "{}", r.position);
        assert!((r.velocity + 0.012210).abs() < 1e-6, "{}", r.velocity);
        assert_eq!(r.torque, -18.0);
        assert_eq!(r.temperature, 30.0);
        assert_eq!(r.error, MitErrorCode::None);
        // Negative temperature byte and a fault code.
        let r = MitReply::decode(&[0x02, 0, 0, 0, 0, 0, 0xF6, 0x05], &AK80_9).unwrap();
        assert_eq!(r.temperature, -10.0);
        assert_eq!(r.error, MitErrorCode::Encoder);
        assert!(r.error.flags().contains(crate::JointFlags::ENCODER));
    }

    #[test]
    fn round_trip_within_quantisation_for_every_model() {
        for model in [AkModel::Ak10_9, AkModel::Ak60_6, AkModel::Ak70_10, AkModel::Ak80_9, AkModel::Ak80_64] {
            let r = model.ranges();
            let cmd = MitCommand { position: 1.234, velocity: -3.21, kp: 42.0, kd: 0.7, torque: r.torque_max * 0.3 };
            let back = MitCommand::decode(&cmd.encode(&r).unwrap().0, &r).unwrap();
            assert!((back.position - cmd.position).abs() <= 25.0 / 65535.0);
            assert!((back.velocity - cmd.velocity).abs() <= 2.0 * r.velocity_max / 4095.0);
            assert!((back.kp - cmd.kp).abs() <= 500.0 / 4095.0);
            assert!((back.kd - cmd.kd).abs() <= 5.0 / 4095.0);
            assert!((back.torque - cmd.torque).abs() <= 2.0 * r.torque_max / 4095.0);
            let reply = MitReply {
                motor_id: 9,
                position: -2.5,
                velocity: 1.0,
                torque: -r.torque_max * 0.5,
                temperature: 41.0,
                error: MitErrorCode::OverCurrent,
            };
            let back = MitReply::decode(&reply.encode(&r), &r).unwrap();
            assert_eq!((back.motor_id, back.temperature, back.error), (9, 41.0, MitErrorCode::OverCurrent));
            assert!((back.position - reply.position).abs() <= 25.0 / 65535.0);
            assert!((back.torque - reply.torque).abs() <= 2.0 * r.torque_max / 4095.0);
        }
    }

    #[test]
    fn out_of_range_is_clamped_never_wrapped_and_nan_refused() {
        let cmd = MitCommand { position: 100.0, velocity: -1e9, kp: 600.0, kd: -1.0, torque: 18.0001 };
        let (data, clamped) = cmd.encode(&AK80_9).unwrap();
        assert_eq!(clamped.fields, 5);
        let back = MitCommand::decode(&data, &AK80_9).unwrap();
        assert_eq!(back.position, 12.5, "clamped to +max, not wrapped to a negative angle");
        assert_eq!(back.velocity, -50.0);
        assert_eq!(back.kp, 500.0);
        assert_eq!(back.kd, 0.0);
        assert_eq!(back.torque, 18.0);
        assert!(MitCommand { torque: f64::NAN, ..cmd }.encode(&AK80_9).is_none());
    }
}
