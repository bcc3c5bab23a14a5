//! CubeMars AK actuators in "MIT mode" (the Mini Cheetah protocol): special frames, command packing, reply
//! decoding and the per-model range table.
//!
//! Source: CubeMars, *AK Series Actuator Driver Manual*, V1.0.8, §5.3 "MIT power mode communication protocol"
//! (pp. 48–50 of the 52-page document; the copy read is the one manualshelf.com hosts under "AK80-64 AK Series
//! Actuator Driver Manual V1.0.8"): special CAN codes, the command layout (standard id = motor id, 8 bytes:
//! position 16 bit, velocity 12, Kp 12, Kd 12, torque 12, big-endian bit packing), the reply layout (data[0] =
//! driver id, position 16, velocity 12, current/torque 12, data[6] = "motor temperature", data[7] = "an error
//! code"; the same page gives the reply's DLC as 6 while listing 8 bytes) and the module range table (p. 50).
//! Each value is mapped linearly from `[min, max]` to `0 ..= 2^bits − 1`.
//!
//! **The ranges are firmware settings** ([`AkModel::ranges_for`], [`MitFirmware`]): the motor decodes a
//! command and encodes its reply with the table compiled into its firmware, so a host using another table
//! reads and commands every value scaled wrongly (AK80-9: a velocity of 20 rad/s sent with the V2.0 table
//! decodes as 39 rad/s on V1.1 firmware). What the reachable sources say, per model and firmware:
//!
//! | model | V1.1 (manual V1.0.8 p. 50) | V2.0 | other figures found |
//! |---|---|---|---|
//! | AK10-9 | ±50 rad/s, ±65 Nm | not found | — |
//! | AK60-6 | ±45 rad/s, ±15 Nm | not found | ±50 rad/s, ±15 Nm in TMotorCANControl `mit_can.py` ("thresholds are in the datasheet for the motor on cubemars.com", no firmware named) |
//! | AK70-10 | ±50 rad/s, ±25 Nm | not found | ±24 Nm for "V1.1" in DFKI `canmotorlib.py` |
//! | AK80-9 | ±50 rad/s, ±18 Nm | ±25.64 rad/s, ±18 Nm (DFKI) | DFKI issue #4: with V1.1 firmware ±22.5 rad/s "works best"; IHMC tMotorCore: "25.64 according to data sheet" |
//! | AK80-64 | ±8 rad/s, ±144 Nm | not found | — |
//!
//! Position ±12.5 rad, Kp 0–500 Nm/rad and Kd 0–5 Nm·s/rad in every table found. The manual names no firmware
//! version for its table; Plexo files it under V1.1 because the per-firmware table T-Motor sent to the DFKI
//! Underactuated Lab (dfki-ric-underactuated-lab/mini-cheetah-tmotor-python-can issue #4, "T-Motor AK80 series
//! different motor parameters for firmware versions V1.0, V1.1., V2.0", 2022; their `src/motor_driver/
//! canmotorlib.py` holds it as `AK10_9_V1p1_PARAMS` … `AK80_9_V2_PARAMS`) gives the same AK10-9 and AK80-9
//! figures for V1.1 and a different AK80-9 velocity range (±25.64 rad/s) for V2.0; the manual's own example code
//! (p. 50, `pack_cmd`) still uses the older ±95.5 rad / ±30 rad/s / ±18 Nm (V1.0-era) ranges. No reachable
//! source gives a V2.0 table for AK10-9, AK60-6, AK70-10 or AK80-64, nor assigns AK60-6's ±50 rad/s to a
//! firmware version: Plexo refuses those combinations (a configuration must then give `mit.ranges`), and
//! requires `mit.firmware` for AK80-9 and AK60-6, whose velocity range differs between sources
//! ([`AkModel::firmware_dependent`]). Verify the velocity scale on the bench (the reply's velocity against the
//! position's change over time) before the first session: the sources disagree.
//!
//! Out-of-range values are **clamped, never wrapped** ([`MitCommand::encode`] reports which fields were clamped)
//! and NaN is refused before packing.

use crate::frame::{CanFrame, CanId};

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

/// Firmware versions of the AK drives whose MIT range tables differ (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum MitFirmware {
    /// V1.1: the table of the *AK Series Actuator Driver Manual* V1.0.8, p. 50.
    #[serde(rename = "V1.1")]
    V1_1,
    /// V2.0: AK80-9 only (DFKI mini-cheetah-tmotor-python-can, `AK80_9_V2_PARAMS`, from T-Motor's table).
    #[serde(rename = "V2.0")]
    V2_0,
}

impl MitFirmware {
    /// The name used in configurations (`"V1.1"`, `"V2.0"`).
    pub const fn name(self) -> &'static str {
        match self {
            MitFirmware::V1_1 => "V1.1",
            MitFirmware::V2_0 => "V2.0",
        }
    }
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
    /// The model's MIT-mode ranges on firmware V1.1 (= `ranges_for(MitFirmware::V1_1)`).
    ///
    /// CubeMars *AK Series Actuator Driver Manual* V1.0.8, §5.3, module range table (p. 50): position
    /// ±12.5 rad for all models; velocity / torque: AK10-9 ±50 rad/s / ±65 Nm, AK60-6 ±45 / ±15, AK70-10 ±50 /
    /// ±25, AK80-9 ±50 / ±18, AK80-64 (the manual's "AK80-80") ±8 / ±144; Kp 0–500, Kd 0–5. Other firmware
    /// uses other ranges (module docs): a joint config names its firmware (`mit.firmware`) or overrides the
    /// ranges (`mit.ranges`).
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

    /// The model's MIT-mode ranges on `firmware`, `None` where no reachable source gives that table (module
    /// docs). V2.0: AK80-9 ±12.5 rad, ±25.64 rad/s, ±18 Nm, Kp 0–500, Kd 0–5 (DFKI
    /// mini-cheetah-tmotor-python-can `src/motor_driver/canmotorlib.py`, `AK80_9_V2_PARAMS`, and its README
    /// "Working parameters for AK80-9 V2.0 firmware"; IHMC tMotorCore `TMotorAK809Parameters` notes the same
    /// ±25.64 rad/s "according to data sheet").
    pub const fn ranges_for(self, firmware: MitFirmware) -> Option<MitRanges> {
        match (self, firmware) {
            (_, MitFirmware::V1_1) => Some(self.ranges()),
            (AkModel::Ak80_9, MitFirmware::V2_0) => Some(MitRanges {
                position_max: 12.5,
                velocity_max: 25.64,
                torque_max: 18.0,
                kp_max: 500.0,
                kd_max: 5.0,
            }),
            (AkModel::Ak10_9 | AkModel::Ak60_6 | AkModel::Ak70_10 | AkModel::Ak80_64, MitFirmware::V2_0) => None,
        }
    }

    /// True for the models whose range table differs between firmware versions or between sources (AK80-9:
    /// ±50 rad/s on V1.1, ±25.64 rad/s on V2.0; AK60-6: ±45 rad/s in the manual, ±50 rad/s in
    /// TMotorCANControl): their configuration must name the firmware (`mit.firmware`) or give `mit.ranges`.
    pub const fn firmware_dependent(self) -> bool {
        matches!(self, AkModel::Ak80_9 | AkModel::Ak60_6)
    }

    /// The name used in configurations (`"AK80-9"`, …).
    pub const fn name(self) -> &'static str {
        match self {
            AkModel::Ak10_9 => "AK10-9",
            AkModel::Ak60_6 => "AK60-6",
            AkModel::Ak70_10 => "AK70-10",
            AkModel::Ak80_9 => "AK80-9",
            AkModel::Ak80_64 => "AK80-64",
        }
    }
}

/// Maps `x` in `[min, max]` to an unsigned `bits`-wide integer, clamping (never wrapping), rounding to nearest.
/// Returns the value and whether it was clamped. `x` must be finite. Real-time safe.
///
/// Convention (see the derivation in the golden-frame tests): the scale is `(2^bits − 1) / (max − min)`, the
/// exact inverse of the decoder `x_int · (max − min) / (2^bits − 1) + min` that the motor applies, and the
/// result is rounded to nearest. The manual's reference `float_to_uint` (V1.0.8 p. 51) instead truncates
/// `(x − min) · 2^bits / (max − min)` with an `(int)` cast; Plexo does not follow it because (1) with `2^bits`
/// the value `x = max` maps to `2^bits`, one past the field, which the packing then wraps to 0 — `+max` would
/// reach the motor as `min`, the wrap the HAL must never do; (2) truncation biases every value by −½ LSB on
/// average (AK80-9: −4.4 mNm on every feed-forward torque, −0.06 Nm/rad on every stiffness), rounding keeps
/// the error within ±½ LSB and unbiased. Every integer is a valid field value, so the motor decodes either.
pub fn float_to_uint(x: f64, min: f64, max: f64, bits: u32) -> (u16, bool) {
    FieldMap::new(min, max, bits).quantise(x)
}

/// Inverse of [`float_to_uint`]: `v · (max − min) / (2^bits − 1) + min`. Real-time safe.
pub fn uint_to_float(v: u16, min: f64, max: f64, bits: u32) -> f64 {
    FieldMap::new(min, max, bits).value(v)
}

/// Temperature [°C] as the reply's unsigned byte (see [`MitReply::temperature`]): clamped to 0..=255, rounded
/// half up like `f64::round` on non-negative values but without its libm call.
#[inline(always)]
fn round_temperature(t: f64) -> u8 {
    (t.clamp(0.0, 255.0) + 0.5) as u8
}

/// The linear map of one packed field, precomputed (no division on the hot path).
#[derive(Clone, Copy, Debug, PartialEq)]
struct FieldMap {
    min: f64,
    max: f64,
    /// `(2^bits − 1) / (max − min)` [1/unit].
    to_int: f64,
    /// `(max − min) / (2^bits − 1)` [unit].
    to_float: f64,
    /// `2^bits − 1`.
    top_f: f64,
}

impl FieldMap {
    const fn new(min: f64, max: f64, bits: u32) -> Self {
        let levels = ((1u32 << bits) - 1) as f64;
        Self { min, max, to_int: levels / (max - min), to_float: (max - min) / levels, top_f: levels }
    }

    /// Clamped, rounded field value and whether `x` was clamped. `x` must be finite.
    #[inline(always)]
    fn quantise(&self, x: f64) -> (u16, bool) {
        let clamped = x.clamp(self.min, self.max);
        // In [0.5, top + 0.5] after the clamp: adding 0.5 and truncating rounds to nearest without a libm call;
        // the comparison keeps `max` itself on the top code (plain compares: `x` is finite, no NaN handling).
        let v = (clamped - self.min) * self.to_int + 0.5;
        let v = if v > self.top_f { self.top_f } else { v };
        (v as u16, clamped != x)
    }

    /// As [`FieldMap::quantise`], but the code's value never exceeds `limit` in magnitude: where rounding to
    /// nearest lands beyond ±`limit` (a value clamped to a limit inside the field's range), the code one step
    /// toward zero is taken. `limit` ≥ 0.
    #[inline(always)]
    fn quantise_within(&self, x: f64, limit: f64) -> (u16, bool) {
        let (mut v, clamped) = self.quantise(x);
        let value = self.value(v);
        if value > limit && v > 0 {
            v -= 1;
        } else if value < -limit && f64::from(v) < self.top_f {
            v += 1;
        }
        (v, clamped)
    }

    #[inline(always)]
    fn value(&self, v: u16) -> f64 {
        f64::from(v) * self.to_float + self.min
    }
}

/// The MIT-mode codec of one motor: the field maps of its [`MitRanges`], precomputed once (they are constant per
/// motor), so that encoding and decoding are multiplications only. `CanRobot` keeps one per joint.
///
/// ```
/// use plexo_can::mit::{AkModel, MitCodec, MitCommand};
/// let codec = MitCodec::new(&AkModel::Ak80_9.ranges());
/// let cmd = MitCommand { position: 0.0, velocity: 0.0, kp: 100.0, kd: 1.0, torque: 9.0 };
/// let (data, clamped) = codec.encode_command(&cmd).unwrap();
/// assert_eq!(data, [0x80, 0x00, 0x80, 0x03, 0x33, 0x33, 0x3B, 0xFF]);
/// assert_eq!(clamped.fields, 0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MitCodec {
    ranges: MitRanges,
    position: FieldMap,
    velocity: FieldMap,
    kp: FieldMap,
    kd: FieldMap,
    torque: FieldMap,
}

impl MitCodec {
    /// Precomputes the field maps of `ranges`. Not on the hot path (five divisions).
    pub const fn new(ranges: &MitRanges) -> Self {
        Self {
            ranges: *ranges,
            position: FieldMap::new(-ranges.position_max, ranges.position_max, 16),
            velocity: FieldMap::new(-ranges.velocity_max, ranges.velocity_max, 12),
            kp: FieldMap::new(0.0, ranges.kp_max, 12),
            kd: FieldMap::new(0.0, ranges.kd_max, 12),
            torque: FieldMap::new(-ranges.torque_max, ranges.torque_max, 12),
        }
    }

    /// The ranges this codec packs.
    pub const fn ranges(&self) -> &MitRanges {
        &self.ranges
    }

    /// Packs a command into the 8-byte payload; `None` if a field is NaN/Inf (never packed). Real-time safe.
    ///
    /// Layout (manual V1.0.8 p. 49): `[p15..8] [p7..0] [v11..4] [v3..0|kp11..8] [kp7..0] [kd11..4]
    /// [kd3..0|t11..8] [t7..0]`.
    #[inline]
    pub fn encode_command(&self, cmd: &MitCommand) -> Option<([u8; 8], Clamped)> {
        self.encode_command_within(cmd, f64::INFINITY)
    }

    /// As [`MitCodec::encode_command`], with the torque field never decoding beyond ±`torque_limit` [Nm] (or
    /// [A] for a current field): a torque clamped to a joint's limit is rounded toward zero where rounding to
    /// nearest would send it above the limit (15 Nm on a ±18 Nm field would go out as 15.002 Nm). Real-time safe.
    #[inline]
    pub fn encode_command_within(&self, cmd: &MitCommand, torque_limit: f64) -> Option<([u8; 8], Clamped)> {
        if !(cmd.position.is_finite()
            && cmd.velocity.is_finite()
            && cmd.kp.is_finite()
            && cmd.kd.is_finite()
            && cmd.torque.is_finite())
        {
            return None;
        }
        let (p, c0) = self.position.quantise(cmd.position);
        let (v, c1) = self.velocity.quantise(cmd.velocity);
        let (kp, c2) = self.kp.quantise(cmd.kp);
        let (kd, c3) = self.kd.quantise(cmd.kd);
        let (t, c4) = self.torque.quantise_within(cmd.torque, torque_limit);
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
        let fields = u8::from(c0) + u8::from(c1) + u8::from(c2) + u8::from(c3) + u8::from(c4);
        Some((data, Clamped { fields }))
    }

    /// Unpacks a command payload (what the drive does). `None` for special frames or a wrong length.
    /// Real-time safe.
    #[inline]
    pub fn decode_command(&self, data: &[u8]) -> Option<MitCommand> {
        let d: &[u8; 8] = data.try_into().ok()?;
        if is_special(d) {
            return None;
        }
        let p = (u16::from(d[0]) << 8) | u16::from(d[1]);
        let v = (u16::from(d[2]) << 4) | u16::from(d[3] >> 4);
        let kp = (u16::from(d[3] & 0xF) << 8) | u16::from(d[4]);
        let kd = (u16::from(d[5]) << 4) | u16::from(d[6] >> 4);
        let t = (u16::from(d[6] & 0xF) << 8) | u16::from(d[7]);
        Some(MitCommand {
            position: self.position.value(p),
            velocity: self.velocity.value(v),
            kp: self.kp.value(kp),
            kd: self.kd.value(kd),
            torque: self.torque.value(t),
        })
    }

    /// Encodes the 8-byte reply payload (what the drive sends). Values are clamped to the ranges, NaN sent as 0.
    /// Real-time safe.
    #[inline]
    pub fn encode_reply(&self, reply: &MitReply) -> [u8; 8] {
        let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
        let (p, _) = self.position.quantise(finite(reply.position));
        let (v, _) = self.velocity.quantise(finite(reply.velocity));
        let (t, _) = self.torque.quantise(finite(reply.torque));
        [
            reply.motor_id,
            (p >> 8) as u8,
            p as u8,
            (v >> 4) as u8,
            (((v & 0xF) << 4) | (t >> 8)) as u8,
            t as u8,
            round_temperature(finite(reply.temperature)),
            reply.error.to_byte(),
        ]
    }

    /// Decodes a reply payload (6 bytes on old firmware without temperature/error, 8 on current firmware).
    /// Real-time safe.
    #[inline]
    pub fn decode_reply(&self, data: &[u8]) -> Option<MitReply> {
        if data.len() < 6 {
            return None;
        }
        let p = (u16::from(data[1]) << 8) | u16::from(data[2]);
        let v = (u16::from(data[3]) << 4) | u16::from(data[4] >> 4);
        let t = (u16::from(data[4] & 0xF) << 8) | u16::from(data[5]);
        Some(MitReply {
            motor_id: data[0],
            position: self.position.value(p),
            velocity: self.velocity.value(v),
            torque: self.torque.value(t),
            temperature: data.get(6).map_or(0.0, |b| f64::from(*b)),
            error: MitErrorCode::from_byte(data.get(7).copied().unwrap_or(0)),
        })
    }

    /// One quantisation step of the position field [rad].
    pub const fn position_step(&self) -> f64 {
        self.position.to_float
    }

    /// One quantisation step of the torque field [Nm].
    pub const fn torque_step(&self) -> f64 {
        self.torque.to_float
    }
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

    /// Packs the command into the 8-byte payload; `None` if a field is NaN/Inf (never packed). Builds the
    /// codec on each call: on the hot path keep a [`MitCodec`] and use [`MitCodec::encode_command`].
    pub fn encode(&self, ranges: &MitRanges) -> Option<([u8; 8], Clamped)> {
        MitCodec::new(ranges).encode_command(self)
    }

    /// Unpacks a command payload (what the drive does). `None` for special frames or a wrong length.
    pub fn decode(data: &[u8], ranges: &MitRanges) -> Option<Self> {
        MitCodec::new(ranges).decode_command(data)
    }

    /// The command frame for motor `motor_id`. `None` for NaN/Inf fields. Real-time safe.
    #[inline]
    pub fn frame_with(&self, motor_id: u8, codec: &MitCodec) -> Option<(CanFrame, Clamped)> {
        let (data, clamped) = codec.encode_command(self)?;
        Some((CanFrame::classic8(CanId::Standard(u16::from(motor_id)), data), clamped))
    }

    /// As [`MitCommand::frame_with`], the torque never sent beyond ±`torque_limit` (see
    /// [`MitCodec::encode_command_within`]). Real-time safe.
    #[inline]
    pub fn frame_within(&self, motor_id: u8, codec: &MitCodec, torque_limit: f64) -> Option<(CanFrame, Clamped)> {
        let (data, clamped) = codec.encode_command_within(self, torque_limit)?;
        Some((CanFrame::classic8(CanId::Standard(u16::from(motor_id)), data), clamped))
    }

    /// The command frame for motor `motor_id`. `None` for NaN/Inf fields.
    pub fn frame(&self, motor_id: u8, ranges: &MitRanges) -> Option<(CanFrame, Clamped)> {
        self.frame_with(motor_id, &MitCodec::new(ranges))
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

/// Error codes of the reply's data[7].
///
/// The manual (V1.0.8 p. 49) only names data[7] "an error code" and lists no meanings for MIT mode (its
/// servo-mode fault list, `mc_fault_code` p. 42–43, is another numbering: 1 = over-voltage, 2 = under-voltage,
/// …, and belongs to the serial protocol). The meanings below are what the open-source MIT drivers document:
/// codes 0–5 agree between neurobionics/TMotorCANControl (`mit_can.py`, `MIT_Params['ERROR_CODES']`) and
/// NaCl-Salt-12/Cubemars-V2-Motor-Control (`motor_node.py`, `MOTOR_ERROR_CODES`, "from CubeMars
/// documentation"); for 6 they disagree (TMotorCANControl: "phase current unbalance fault (the hardware may be
/// damaged)"; Cubemars-V2-Motor-Control: "MOSFET over-temperature"), and 7 ("motor lock-up") is in the second
/// only. Every code other than 0 is a drive fault whatever its meaning (`Fault` in the read that sees it).
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
    /// 6: MOSFET over-temperature, or phase current unbalance (the sources disagree, see the type's docs).
    MosfetOverTemperature,
    /// 7: motor stall / lock-up (one source).
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

    /// What the code means, as the sources state it (see the type's docs).
    pub const fn meaning(self) -> &'static str {
        match self {
            Self::None => "no fault",
            Self::OverTemperature => "motor over-temperature",
            Self::OverCurrent => "over-current",
            Self::OverVoltage => "over-voltage",
            Self::UnderVoltage => "under-voltage",
            Self::Encoder => "encoder fault",
            Self::MosfetOverTemperature => {
                "MOSFET over-temperature or phase current unbalance (sources disagree; the hardware may be damaged)"
            }
            Self::Stall => "motor lock-up",
            Self::Unknown(_) => "undocumented error code",
        }
    }

    /// The joint flags this code implies (every one but 0 is a fault flag). Code 6 is flagged as a drive fault,
    /// not as over-temperature: the sources disagree on its meaning.
    pub const fn flags(self) -> plexo_hal::JointFlags {
        use plexo_hal::JointFlags as F;
        match self {
            Self::None => F::NONE,
            Self::OverTemperature => F::OVER_TEMPERATURE,
            Self::OverCurrent | Self::OverVoltage | Self::UnderVoltage => F::POWER,
            Self::Encoder => F::ENCODER,
            Self::MosfetOverTemperature | Self::Stall | Self::Unknown(_) => F::DRIVE_FAULT,
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
    /// Temperature [°C]: data[6] read as an unsigned byte, 0–255 °C, no offset.
    ///
    /// The manual (V1.0.8 p. 49) names data[6] "motor temperature" and gives no unit, offset or signedness; no
    /// reachable source documents an offset (an OBD-style "raw − 40 °C" encoding appears in none of them), so
    /// none is applied. The open-source MIT drivers read the byte unsigned in °C (neurobionics/TMotorCANControl
    /// `mit_can.py` `parse_MIT_message`: `int(data[6])`; KM-RoBoTa/KMR_CubeMars `listener.cpp`;
    /// NaCl-Salt-12/Cubemars-V2-Motor-Control `motor_node.py`), and so does Plexo since it read it signed before:
    /// a byte ≥ 0x80 then came out negative, so a motor reporting 150 °C (0x96) read −106 °C and never reached
    /// the temperature limit. Unsigned fails safe: a (clinically impossible) sub-zero reading of a signed
    /// firmware would read ≥ 236 °C and fault. A 6-byte reply (old firmware) carries no temperature: 0.
    pub temperature: f64,
    /// Error code (data[7]).
    pub error: MitErrorCode,
}

impl MitReply {
    /// Decodes a reply payload (6 bytes on old firmware without temperature/error, 8 on current firmware).
    /// Builds the codec on each call: on the hot path use [`MitCodec::decode_reply`].
    pub fn decode(data: &[u8], ranges: &MitRanges) -> Option<Self> {
        MitCodec::new(ranges).decode_reply(data)
    }

    /// Encodes the 8-byte reply payload (what the drive sends). Values are clamped to the ranges.
    pub fn encode(&self, ranges: &MitRanges) -> [u8; 8] {
        MitCodec::new(ranges).encode_reply(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AK80_9: MitRanges = AkModel::Ak80_9.ranges();

    #[test]
    fn a_torque_at_a_limit_inside_the_range_rounds_toward_zero() {
        let codec = MitCodec::new(&AK80_9);
        let lsb = 2.0 * AK80_9.torque_max / 4095.0;
        for limit in [15.0, 9.0, 1.0, 17.99] {
            for torque in [limit, -limit] {
                let cmd = MitCommand { torque, ..MitCommand::hold_free(0.0) };
                let (data, _) = codec.encode_command_within(&cmd, limit).unwrap();
                let sent = codec.decode_command(&data).unwrap().torque;
                assert!(sent.abs() <= limit, "{torque} Nm sent as {sent} Nm");
                assert!((sent - torque).abs() < lsb, "{torque} Nm sent as {sent} Nm: more than one code off");
            }
        }
        // Without a limit: round to nearest, as before (15 Nm → 15.0022 Nm).
        let (data, _) = codec.encode_command(&MitCommand { torque: 15.0, ..MitCommand::hold_free(0.0) }).unwrap();
        assert!(codec.decode_command(&data).unwrap().torque > 15.0);
        // The ends of the range stay exact.
        let (data, _) =
            codec.encode_command_within(&MitCommand { torque: 18.0, ..MitCommand::hold_free(0.0) }, 18.0).unwrap();
        assert_eq!(codec.decode_command(&data).unwrap().torque, 18.0);
    }

    #[test]
    fn zero_torque_is_half_a_code_from_zero_the_nearest_possible() {
        // ±18 Nm over 4095 levels: zero lies exactly between codes 2047 and 2048, both ½ LSB away.
        let codec = MitCodec::new(&AK80_9);
        let lsb = 2.0 * AK80_9.torque_max / 4095.0;
        let (data, _) = codec.encode_command_within(&MitCommand::hold_free(0.0), 15.0).unwrap();
        let sent = codec.decode_command(&data).unwrap().torque;
        assert!(sent.abs() <= 0.5 * lsb + 1e-12, "{sent}");
    }

    #[test]
    fn golden_command_frame_ak80_9() {
        // Hand derivation, AK80-9 ranges (manual V1.0.8 p. 50: p ±12.5, v ±50, Kp 0..500, Kd 0..5, τ ±18).
        // Convention (see `float_to_uint`): scale (2^bits − 1)/span, the inverse of the motor's decoder, rounded
        // to nearest. The manual's reference float_to_uint (p. 51) truncates (x − min)·2^bits/span instead; the
        // value it would give is noted in brackets where it differs.
        // p = 0 rad     → (0 + 12.5)·65535/25 = 32767.5 → round 32768 = 0x8000   [12.5·65536/25 = 32768 → 0x8000]
        // v = 0 rad/s   → 50·4095/100 = 2047.5 → 2048 = 0x800                    [50·4096/100 = 2048]
        // Kp = 100      → 100·4095/500 = 819 = 0x333                             [100·4096/500 = 819.2 → 819]
        // Kd = 1        → 1·4095/5 = 819 = 0x333                                 [819.2 → 819]
        // τ = 9 Nm      → (9 + 18)·4095/36 = 3071.25 → 3071 = 0xBFF               [27·4096/36 = 3072 = 0xC00]
        // bytes: 80 00 | 80 | 0|3 → 0x03 | 33 | 33 | 3|B → 0x3B | FF
        let cmd = MitCommand { position: 0.0, velocity: 0.0, kp: 100.0, kd: 1.0, torque: 9.0 };
        let (data, clamped) = cmd.encode(&AK80_9).unwrap();
        assert_eq!(data, [0x80, 0x00, 0x80, 0x03, 0x33, 0x33, 0x3B, 0xFF]);
        assert_eq!(clamped.fields, 0);
        let (frame, _) = cmd.frame(3, &AK80_9).unwrap();
        assert_eq!(frame.to_string(), "003#800080033333 3BFF".replace(' ', ""));
        // The torque the motor decodes: 3071·36/4095 − 18 = 8.9978 Nm (error −2.2 mNm, within ½ LSB = 4.4 mNm);
        // the manual's 3072 would decode to 9.0066 Nm (+6.6 mNm = 0.75 LSB).
        let back = MitCommand::decode(&data, &AK80_9).unwrap();
        assert!((back.torque - 9.0).abs() <= 0.5 * 36.0 / 4095.0 + 1e-12, "{}", back.torque);
    }

    #[test]
    fn rounding_convention_is_unbiased_and_the_top_of_the_range_never_wraps() {
        // The manual's 2^bits scale maps +max to 2^bits: 65536 for the position, whose packed high byte
        // (65536 >> 8) & 0xFF is 0x00 — +12.5 rad would be sent as −12.5 rad. Ours maps it to the top code.
        assert_eq!(float_to_uint(12.5, -12.5, 12.5, 16), (0xFFFF, false));
        assert_eq!(float_to_uint(-12.5, -12.5, 12.5, 16), (0x0000, false));
        assert_eq!(((12.5 + 12.5) * 65536.0 / 25.0) as u32 >> 8 & 0xFF, 0x00, "the manual's formula wraps");
        // Round to nearest: the decoded error is within ±½ LSB and averages to ~0 over a sweep (truncation
        // would average −½ LSB).
        let lsb = 36.0 / 4095.0;
        let (mut sum, n) = (0.0, 10_000);
        for i in 0..n {
            let x = -18.0 + 36.0 * (i as f64 + 0.37) / n as f64;
            let (v, _) = float_to_uint(x, -18.0, 18.0, 12);
            let e = uint_to_float(v, -18.0, 18.0, 12) - x;
            assert!(e.abs() <= 0.5 * lsb + 1e-12, "x = {x}: error {e}");
            sum += e;
        }
        assert!((sum / n as f64).abs() < 0.02 * lsb, "mean error {} LSB", sum / n as f64 / lsb);
    }

    #[test]
    fn reply_temperature_byte_rounds_like_f64_round_and_clamps() {
        for t in [-200.0f64, -0.49, 0.0, 0.49, 0.5, 41.5, 126.6, 127.4, 254.4, 254.5, 300.0] {
            let want = t.clamp(0.0, 255.0).round() as u8;
            assert_eq!(round_temperature(t), want, "{t} °C");
        }
    }

    #[test]
    fn regression_a_temperature_byte_above_127_was_read_as_negative_and_hid_an_overheated_motor() {
        // 0x96 = 150: read as a signed byte it was −106 °C, below every limit. Unsigned, no offset (the manual
        // documents none; the open-source drivers read `int(data[6])`).
        let r = MitReply::decode(&[0x01, 0x80, 0x00, 0x80, 0x08, 0x00, 0x96, 0x00], &AK80_9).unwrap();
        assert_eq!(r.temperature, 150.0);
        assert_eq!(MitReply::decode(&[0x01, 0, 0, 0, 0, 0, 0x00, 0], &AK80_9).unwrap().temperature, 0.0);
        assert_eq!(MitReply::decode(&[0x01, 0, 0, 0, 0, 0, 0xFF, 0], &AK80_9).unwrap().temperature, 255.0);
        // A 6-byte reply (old firmware) has no temperature byte.
        assert_eq!(MitReply::decode(&[0x01, 0, 0, 0, 0, 0], &AK80_9).unwrap().temperature, 0.0);
        // Round trip through the emulated drive's encoder.
        let reply = MitReply {
            motor_id: 1,
            position: 0.0,
            velocity: 0.0,
            torque: 0.0,
            temperature: 150.0,
            error: MitErrorCode::None,
        };
        assert_eq!(reply.encode(&AK80_9)[6], 0x96);
    }

    #[test]
    fn error_codes_decode_to_the_documented_meanings() {
        use plexo_hal::JointFlags as F;
        let want = [
            (0, MitErrorCode::None, "no fault", F::NONE),
            (1, MitErrorCode::OverTemperature, "motor over-temperature", F::OVER_TEMPERATURE),
            (2, MitErrorCode::OverCurrent, "over-current", F::POWER),
            (3, MitErrorCode::OverVoltage, "over-voltage", F::POWER),
            (4, MitErrorCode::UnderVoltage, "under-voltage", F::POWER),
            (5, MitErrorCode::Encoder, "encoder fault", F::ENCODER),
            (7, MitErrorCode::Stall, "motor lock-up", F::DRIVE_FAULT),
            (8, MitErrorCode::Unknown(8), "undocumented error code", F::DRIVE_FAULT),
            (255, MitErrorCode::Unknown(255), "undocumented error code", F::DRIVE_FAULT),
        ];
        for (byte, code, meaning, flags) in want {
            let reply = MitReply::decode(&[0x01, 0, 0, 0, 0, 0, 30, byte], &AK80_9).unwrap();
            assert_eq!(reply.error, code, "byte {byte}");
            assert_eq!(code.meaning(), meaning, "byte {byte}");
            assert_eq!(code.flags(), flags, "byte {byte}");
            assert_eq!(code.to_byte(), byte);
            assert_eq!(code.flags().is_fault(), byte != 0, "byte {byte}: every code but 0 faults");
        }
        // 6: the sources disagree (MOSFET over-temperature / phase current unbalance): a drive fault either way.
        let six = MitErrorCode::from_byte(6);
        assert_eq!(six, MitErrorCode::MosfetOverTemperature);
        assert!(six.meaning().contains("MOSFET over-temperature") && six.meaning().contains("phase current unbalance"));
        assert!(six.flags().is_fault());
    }

    #[test]
    fn regression_ak80_9_firmware_v2_velocity_range_differs_from_v1_1() {
        let v1 = AkModel::Ak80_9.ranges_for(MitFirmware::V1_1).unwrap();
        let v2 = AkModel::Ak80_9.ranges_for(MitFirmware::V2_0).unwrap();
        assert_eq!((v1.velocity_max, v2.velocity_max), (50.0, 25.64));
        assert_eq!((v1.torque_max, v2.torque_max), (18.0, 18.0));
        // 20 rad/s packed with the V2.0 table: (20 + 25.64)·4095/51.28 = 3644.6 → 3645 = 0xE3D. A V2.0 motor decodes
        // it as 20.0 rad/s; read with the V1.1 table the same code is 3645·100/4095 − 50 = 39.0 rad/s.
        let cmd = MitCommand { velocity: 20.0, ..MitCommand::hold_free(0.0) };
        let (data, clamped) = cmd.encode(&v2).unwrap();
        assert_eq!(clamped.fields, 0);
        assert_eq!((u16::from(data[2]) << 4) | u16::from(data[3] >> 4), 0xE3D);
        let on_v2 = MitCommand::decode(&data, &v2).unwrap().velocity;
        let on_v1 = MitCommand::decode(&data, &v1).unwrap().velocity;
        assert!((on_v2 - 20.0).abs() <= 51.28 / 4095.0, "{on_v2}");
        assert!((on_v1 - 39.0).abs() < 0.02, "{on_v1}");
        // The same for a reply: the V2.0 table's top velocity code is 25.64 rad/s, not 50.
        let top = [0x01, 0x80, 0x00, 0xFF, 0xF8, 0x00, 30, 0];
        assert!((MitReply::decode(&top, &v2).unwrap().velocity - 25.64).abs() < 1e-9);
        assert!((MitReply::decode(&top, &v1).unwrap().velocity - 50.0).abs() < 1e-9);
    }

    #[test]
    fn every_model_and_firmware_table_encodes_and_decodes_its_own_ranges() {
        // (model, firmware, velocity_max, torque_max): manual V1.0.8 p. 50 for V1.1, DFKI for AK80-9 V2.0.
        let tables = [
            (AkModel::Ak10_9, MitFirmware::V1_1, Some((50.0, 65.0))),
            (AkModel::Ak60_6, MitFirmware::V1_1, Some((45.0, 15.0))),
            (AkModel::Ak70_10, MitFirmware::V1_1, Some((50.0, 25.0))),
            (AkModel::Ak80_9, MitFirmware::V1_1, Some((50.0, 18.0))),
            (AkModel::Ak80_64, MitFirmware::V1_1, Some((8.0, 144.0))),
            (AkModel::Ak80_9, MitFirmware::V2_0, Some((25.64, 18.0))),
            (AkModel::Ak10_9, MitFirmware::V2_0, None),
            (AkModel::Ak60_6, MitFirmware::V2_0, None),
            (AkModel::Ak70_10, MitFirmware::V2_0, None),
            (AkModel::Ak80_64, MitFirmware::V2_0, None),
        ];
        for (model, fw, want) in tables {
            let got = model.ranges_for(fw);
            assert_eq!(got.map(|r| (r.velocity_max, r.torque_max)), want, "{} {}", model.name(), fw.name());
            let Some(r) = got else { continue };
            assert_eq!((r.position_max, r.kp_max, r.kd_max), (12.5, 500.0, 5.0));
            let codec = MitCodec::new(&r);
            // Both ends of every field survive encode → decode exactly; beyond them the value is clamped.
            for sign in [-1.0, 1.0] {
                let cmd = MitCommand {
                    position: sign * r.position_max,
                    velocity: sign * r.velocity_max,
                    kp: if sign > 0.0 { r.kp_max } else { 0.0 },
                    kd: if sign > 0.0 { r.kd_max } else { 0.0 },
                    torque: sign * r.torque_max,
                };
                let same = |a: &MitCommand, b: &MitCommand| {
                    [
                        (a.position, b.position),
                        (a.velocity, b.velocity),
                        (a.kp, b.kp),
                        (a.kd, b.kd),
                        (a.torque, b.torque),
                    ]
                    .iter()
                    .all(|(x, y)| (x - y).abs() < 1e-9)
                };
                let (data, clamped) = codec.encode_command(&cmd).unwrap();
                assert_eq!(clamped.fields, 0);
                let back = codec.decode_command(&data).unwrap();
                assert!(same(&back, &cmd), "{} {}: {back:?} vs {cmd:?}", model.name(), fw.name());
                let beyond = MitCommand { velocity: 2.0 * cmd.velocity, torque: 2.0 * cmd.torque, ..cmd };
                let (data, clamped) = codec.encode_command(&beyond).unwrap();
                assert_eq!(clamped.fields, 2);
                assert!(same(&codec.decode_command(&data).unwrap(), &cmd));
                let reply = MitReply {
                    motor_id: 1,
                    position: cmd.position,
                    velocity: cmd.velocity,
                    torque: cmd.torque,
                    temperature: 40.0,
                    error: MitErrorCode::None,
                };
                let back = codec.decode_reply(&codec.encode_reply(&reply)).unwrap();
                assert!((back.position - cmd.position).abs() < 1e-9 && (back.velocity - cmd.velocity).abs() < 1e-9);
                assert!((back.torque - cmd.torque).abs() < 1e-9 && back.temperature == 40.0);
            }
        }
        assert!(AkModel::Ak80_9.firmware_dependent() && AkModel::Ak60_6.firmware_dependent());
        assert!(![AkModel::Ak10_9, AkModel::Ak70_10, AkModel::Ak80_64].iter().any(|m| m.firmware_dependent()));
    }

    #[test]
    fn codec_matches_the_reference_functions_bit_for_bit() {
        for model in [AkModel::Ak10_9, AkModel::Ak60_6, AkModel::Ak70_10, AkModel::Ak80_9, AkModel::Ak80_64] {
            let r = model.ranges();
            let codec = MitCodec::new(&r);
            for k in 0..500 {
                let x = f64::from(k) / 500.0;
                let cmd = MitCommand {
                    position: (x - 0.5) * 30.0,
                    velocity: (0.5 - x) * 2.2 * r.velocity_max,
                    kp: x * 600.0,
                    kd: x * 4.0,
                    torque: (x - 0.3) * r.torque_max * 1.5,
                };
                let (data, clamped) = codec.encode_command(&cmd).unwrap();
                let (p, c0) = float_to_uint(cmd.position, -12.5, 12.5, 16);
                let (t, c4) = float_to_uint(cmd.torque, -r.torque_max, r.torque_max, 12);
                assert_eq!(((u16::from(data[0]) << 8) | u16::from(data[1])), p);
                assert_eq!(((u16::from(data[6] & 0xF) << 8) | u16::from(data[7])), t);
                assert!(clamped.fields >= u8::from(c0) + u8::from(c4));
                let back = codec.decode_command(&data).unwrap();
                assert_eq!(back.position, uint_to_float(p, -12.5, 12.5, 16));
            }
        }
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
        // A temperature byte above 127 (unsigned, see `regression_a_temperature_byte_above_127_…`) and a fault code.
        let r = MitReply::decode(&[0x02, 0, 0, 0, 0, 0, 0xF6, 0x05], &AK80_9).unwrap();
        assert_eq!(r.temperature, 246.0);
        assert_eq!(r.error, MitErrorCode::Encoder);
        assert!(r.error.flags().contains(plexo_hal::JointFlags::ENCODER));
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
