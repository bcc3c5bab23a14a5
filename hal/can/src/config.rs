//! Configuration of a [`crate::CanRobot`]: buses, joints, protocols. Deserializable with serde (the app loads
//! it from TOML); unknown keys are rejected, and [`CanRobotConfig::validate`] names the key at fault.
//!
//! ```toml
//! control_rate_hz = 500.0
//! [[buses]]
//! name = "can0"
//! bitrate = 1000000
//!
//! [[joints]]
//! name = "elbow_flexion"
//! bus = "can0"
//! node_id = 4
//! protocol = "mit"
//! motor = "AK80-9"
//! limits = { position_min = -0.1, position_max = 2.4, velocity_max = 6.0, torque_max = 12.0 }
//! mit = { drive_timeout_ms = 20, firmware = "V1.1" }
//! ```

use crate::mit::{AkModel, MitFirmware, MitRanges};
use crate::planner::{BusPlan, DEFAULT_LOAD_LIMIT, DriveProtocol};
use crate::timing::Bitrates;
use plexo_hal::HalError;
use plexo_hal::JointInfo;

fn default_missed() -> u32 {
    3
}
fn default_limit() -> f64 {
    DEFAULT_LOAD_LIMIT
}
fn default_reply_timeout() -> u64 {
    500
}
fn default_master_node() -> u8 {
    0x7F
}
fn default_master_heartbeat() -> u16 {
    50
}
fn default_temp_warning() -> f64 {
    60.0
}
fn default_temp_limit() -> f64 {
    80.0
}
fn one() -> f64 {
    1.0
}
fn default_direction() -> i8 {
    1
}

/// The whole CAN robot.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CanRobotConfig {
    /// Control loop rate [Hz]: one `write` and one `read` per period.
    pub control_rate_hz: f64,
    /// How long `read` waits for the replies of the last `write` [µs] (hardware only; a stepped virtual bus
    /// never waits).
    #[serde(default = "default_reply_timeout")]
    pub reply_timeout_us: u64,
    /// Consecutive cycles without a reply before the safe stop (default 3).
    #[serde(default = "default_missed")]
    pub max_missed_cycles: u32,
    /// Planning limit of the worst-case bus load (default 0.70).
    #[serde(default = "default_limit")]
    pub bus_load_limit: f64,
    /// Node id the host uses for its own CANopen heartbeat (default 0x7F).
    #[serde(default = "default_master_node")]
    pub master_node_id: u8,
    /// Host heartbeat period on CANopen buses [ms] (drives consume it with 3× this timeout).
    #[serde(default = "default_master_heartbeat")]
    pub master_heartbeat_ms: u16,
    /// Motor temperature above which a joint gets `WARNING_TEMPERATURE` [°C] (Open-Source Leg SDK case soft
    /// limit, design notes).
    #[serde(default = "default_temp_warning")]
    pub temperature_warning_c: f64,
    /// Motor temperature above which the joint faults [°C] (case hard limit, design notes). Finite, above
    /// `temperature_warning_c` and at most [`MAX_TEMPERATURE_LIMIT_C`] (why: there).
    #[serde(default = "default_temp_limit")]
    pub temperature_limit_c: f64,
    /// The CAN interfaces.
    pub buses: Vec<BusConfig>,
    /// The joints, in robot joint order.
    pub joints: Vec<JointConfig>,
}

/// One CAN interface.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct BusConfig {
    /// Interface name (`can0`); matched against the bus objects handed to `CanRobot::new`.
    pub name: String,
    /// Nominal bitrate [bit/s].
    pub bitrate: u32,
    /// CAN FD data-phase bitrate [bit/s]; present = FD with bit-rate switch. From the nominal bitrate up to
    /// [`MAX_DATA_BITRATE`].
    #[serde(default)]
    pub data_bitrate: Option<u32>,
}

impl BusConfig {
    /// Bitrates of this bus.
    pub fn bitrates(&self) -> Bitrates {
        Bitrates { nominal: self.bitrate, data: self.data_bitrate.unwrap_or(self.bitrate) }
    }
}

/// Joint limits, link side.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkLimits {
    /// Lower position limit [rad].
    pub position_min: f64,
    /// Upper position limit [rad].
    pub position_max: f64,
    /// Velocity limit [rad/s].
    pub velocity_max: f64,
    /// Torque limit [Nm]; commands are clamped to it (and counted).
    pub torque_max: f64,
}

/// Highest CAN FD data-phase bitrate accepted [bit/s]: 8 Mbit/s, the top of CAN FD transceivers with signal
/// improvement (CiA 601-4); ISO 11898-2:2016 transceivers are specified up to 5 Mbit/s.
pub const MAX_DATA_BITRATE: u32 = 8_000_000;

/// Largest MIT drive (CAN) timeout accepted [ms]: a motor whose host stopped talking keeps its last command at
/// most this long. 50 ms = 2.5 × the supervisor's 20 ms watchdog (Franka: 20 missed 1 kHz commands).
pub const MAX_MIT_DRIVE_TIMEOUT_MS: u32 = 50;

/// Largest host heartbeat period on CANopen buses [ms]: the drives' heartbeat consumer (3 × this, 0x1016) with
/// the abort connection option (0x6007) takes the torque off at most 150 ms after the host's last heartbeat.
pub const MAX_MASTER_HEARTBEAT_MS: u16 = 50;

/// Highest `temperature_limit_c` accepted [°C]. The temperature a drive reports is an estimate — a sensor on the
/// driver board or in the end winding, or a thermal model — not the winding hot spot, which it lags under load
/// and may under-read by tens of kelvin. The hot-spot limits of the insulation classes (IEC 60085) are 130 °C
/// for class B and 155 °C for class F; 100 °C keeps at least 30 K between the reported value and the class-B
/// limit (a motor of unknown class is assumed to be class B, the lower of the two common ones), and a
/// housing around such a winding is far above the ≈ 43 °C skin-contact limit of IEC 60601-1, so the motors
/// must not touch the patient whatever the setting. Above this bound a configuration would let a drive go on
/// heating until its own protection (if any) cuts out.
pub const MAX_TEMPERATURE_LIMIT_C: f64 = 100.0;

/// What the third field of an MIT reply / fifth of a command carries on this firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MitTorqueField {
    /// Output torque [Nm] (manual V1.0.8).
    #[default]
    Torque,
    /// Phase current [A]; converted with the joint's `torque_constant`.
    Current,
}

/// MIT-mode options.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct MitOptions {
    /// The drive's CAN timeout [ms], set with the CubeMars tool (the MIT protocol cannot set it). Required and
    /// greater than 0: the factory value 0 means "no timeout", and the motor then keeps its last command when
    /// the link drops (design notes, field failure). The emulated drive enforces it.
    pub drive_timeout_ms: u32,
    /// The drive's firmware version (`"V1.1"`, `"V2.0"`), which selects the model's range table
    /// ([`AkModel::ranges_for`]; the tables differ between versions). Required for AK80-9 and AK60-6 unless
    /// `ranges` is given ([`AkModel::firmware_dependent`]); V1.1 when absent for the other models, whose only
    /// table found is the V1.1 one. Ignored for the ranges when `ranges` is given.
    #[serde(default)]
    pub firmware: Option<MitFirmware>,
    /// Ranges override (a firmware whose table Plexo does not know, or a custom one): must match the table in
    /// the motor's firmware.
    #[serde(default)]
    pub ranges: Option<MitRanges>,
    /// Meaning of the torque field.
    #[serde(default)]
    pub torque_field: MitTorqueField,
    /// CAN id the motor replies with (data[0] carries the motor id); 0 per the Mini Cheetah convention.
    #[serde(default)]
    pub reply_can_id: u16,
}

fn default_counts() -> u32 {
    1 << 17
}
fn default_drive_heartbeat() -> u16 {
    100
}
fn default_max_permille() -> u16 {
    1000
}
fn default_abort_option() -> i16 {
    2
}

/// CiA 402 options.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cia402Options {
    /// Encoder increments per motor revolution (0x6064 / 0x606C scaling).
    #[serde(default = "default_counts")]
    pub encoder_counts_per_rev: u32,
    /// Expected motor rated torque 0x6076 [mNm]; if set, start-up fails when the drive reports another value
    /// (catches a drive reset to factory parameters).
    #[serde(default)]
    pub rated_torque_mnm: Option<u32>,
    /// Largest target torque sent [‰ of rated torque].
    #[serde(default = "default_max_permille")]
    pub max_torque_permille: u16,
    /// Quick stop option code 0x605A written at start-up (0 = disable drive function: torque off at once).
    #[serde(default)]
    pub quick_stop_option: i16,
    /// Fault reaction option code 0x605E written at start-up (0 = disable drive, motor free).
    #[serde(default)]
    pub fault_reaction_option: i16,
    /// Abort connection option code 0x6007 written at start-up (2 = disable voltage on communication loss).
    #[serde(default = "default_abort_option")]
    pub abort_connection_option: i16,
    /// Drive heartbeat producer period 0x1017 [ms], consumed by the host with 3× this timeout.
    #[serde(default = "default_drive_heartbeat")]
    pub heartbeat_ms: u16,
}

impl Default for Cia402Options {
    fn default() -> Self {
        Self {
            encoder_counts_per_rev: default_counts(),
            rated_torque_mnm: None,
            max_torque_permille: default_max_permille(),
            quick_stop_option: 0,
            fault_reaction_option: 0,
            abort_connection_option: default_abort_option(),
            heartbeat_ms: default_drive_heartbeat(),
        }
    }
}

/// One joint.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JointConfig {
    /// Joint name (as in the URDF).
    pub name: String,
    /// Name of the bus the drive is on.
    pub bus: String,
    /// Drive node id (MIT motor id / CANopen node id), 1..=127.
    pub node_id: u8,
    /// Drive protocol.
    pub protocol: DriveProtocol,
    /// Motor model (`AK80-9`, …; any name for CiA 402 drives).
    pub motor: String,
    /// Transmission ratio between the drive's output and the joint (link angle = drive angle / ratio) [-].
    #[serde(default = "one")]
    pub gear_ratio: f64,
    /// +1 or −1: sign between drive and joint positive directions.
    #[serde(default = "default_direction")]
    pub direction: i8,
    /// Drive reading (after ratio and direction) at the joint's zero pose [rad].
    #[serde(default)]
    pub zero_offset: f64,
    /// Torque constant at the drive output [Nm/A] (used where a drive reports current).
    #[serde(default = "one")]
    pub torque_constant: f64,
    /// Joint limits.
    pub limits: LinkLimits,
    /// MIT options (required for `protocol = "mit"`).
    #[serde(default)]
    pub mit: Option<MitOptions>,
    /// CiA 402 options (defaults if absent).
    #[serde(default)]
    pub cia402: Option<Cia402Options>,
}

/// Mapping between drive-side and link-side quantities of one joint:
/// `q = direction · p_drive / ratio − zero_offset`, `τ_link = direction · ratio · τ_drive`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct JointMapping {
    /// Transmission ratio [-].
    pub ratio: f64,
    /// ±1.
    pub direction: f64,
    /// Zero offset [rad].
    pub zero_offset: f64,
}

impl JointMapping {
    /// Link position [rad] from drive position [rad].
    pub fn link_position(&self, drive: f64) -> f64 {
        self.direction * drive / self.ratio - self.zero_offset
    }
    /// Drive position [rad] for a link position [rad].
    pub fn drive_position(&self, link: f64) -> f64 {
        self.direction * (link + self.zero_offset) * self.ratio
    }
    /// Link velocity [rad/s] from drive velocity [rad/s].
    pub fn link_velocity(&self, drive: f64) -> f64 {
        self.direction * drive / self.ratio
    }
    /// Drive velocity [rad/s] for a link velocity [rad/s].
    pub fn drive_velocity(&self, link: f64) -> f64 {
        self.direction * link * self.ratio
    }
    /// Link torque [Nm] from drive torque [Nm].
    pub fn link_torque(&self, drive: f64) -> f64 {
        self.direction * drive * self.ratio
    }
    /// Drive torque [Nm] for a link torque [Nm].
    pub fn drive_torque(&self, link: f64) -> f64 {
        self.direction * link / self.ratio
    }
    /// Drive stiffness [Nm/rad] for a link stiffness [Nm/rad] (÷ ratio²); same for damping.
    pub fn drive_gain(&self, link: f64) -> f64 {
        link / (self.ratio * self.ratio)
    }
}

impl JointConfig {
    /// The drive ↔ link mapping.
    pub fn mapping(&self) -> JointMapping {
        JointMapping { ratio: self.gear_ratio, direction: f64::from(self.direction), zero_offset: self.zero_offset }
    }

    /// MIT ranges: the override if given, else the model's table for the configured firmware; `None` if neither
    /// gives one (see [`JointConfig::mit_table`] for why).
    pub fn mit_ranges(&self) -> Option<MitRanges> {
        self.mit_table().ok()
    }

    /// MIT ranges, or the key at fault and why: the override `mit.ranges` if given; else the model's table
    /// ([`AkModel::ranges_for`]) for `mit.firmware` — which a firmware-dependent model (AK80-9, AK60-6) must
    /// name, and V1.1 otherwise when absent; a model without a table or a firmware without one is refused.
    pub fn mit_table(&self) -> Result<MitRanges, (&'static str, String)> {
        let options = self.mit;
        if let Some(r) = options.and_then(|m| m.ranges) {
            return Ok(r);
        }
        let model: AkModel = serde::Deserialize::deserialize(serde::de::value::StrDeserializer::<
            serde::de::value::Error,
        >::new(&self.motor))
        .map_err(|_| {
            (
                "motor",
                format!(
                    "{:?} has no MIT range table (AK10-9, AK60-6, AK70-10, AK80-9, AK80-64); give mit.ranges",
                    self.motor
                ),
            )
        })?;
        let firmware = match options.and_then(|m| m.firmware) {
            Some(f) => f,
            None if model.firmware_dependent() => {
                let v1 = model.ranges();
                let v2 = model.ranges_for(MitFirmware::V2_0).map_or_else(
                    || "±50 rad/s in another source, firmware not named".to_owned(),
                    |r| format!("±{} rad/s on V2.0", r.velocity_max),
                );
                return Err((
                    "mit.firmware",
                    format!(
                        "required for {}: its MIT velocity range differs between firmware versions (±{} rad/s on                          V1.1, {v2}); set mit.firmware = \"V1.1\" or \"V2.0\" (the version the CubeMars tool shows),                          or give mit.ranges",
                        model.name(),
                        v1.velocity_max
                    ),
                ));
            }
            None => MitFirmware::V1_1,
        };
        model.ranges_for(firmware).ok_or_else(|| {
            (
                "mit.firmware",
                format!(
                    "no MIT range table for {} on firmware {} is published in the sources Plexo knows (only V1.1;                      V2.0 for AK80-9): give mit.ranges from CubeMars' documentation for that firmware",
                    model.name(),
                    firmware.name()
                ),
            )
        })
    }

    /// The joint description for the runtime.
    pub fn info(&self) -> JointInfo {
        JointInfo {
            name: self.name.clone(),
            position_min: self.limits.position_min,
            position_max: self.limits.position_max,
            velocity_max: self.limits.velocity_max,
            torque_max: self.limits.torque_max,
        }
    }
}

impl CanRobotConfig {
    /// Parses a TOML document (`source` names the file in errors). Not real-time safe.
    pub fn from_toml(text: &str, source: &str) -> Result<Self, HalError> {
        let config: Self =
            toml::from_str(text).map_err(|e| HalError::Config { key: source.to_owned(), reason: e.to_string() })?;
        config.validate()?;
        Ok(config)
    }

    /// Control period [s].
    pub fn period(&self) -> core::time::Duration {
        core::time::Duration::from_secs_f64(1.0 / self.control_rate_hz)
    }

    /// The planner's view of the buses: per bus its bitrates, protocol and joints, and on CiA 402 buses the
    /// host heartbeat period and each drive's heartbeat producer period (the acyclic traffic it plans for).
    pub fn bus_plans(&self) -> Vec<BusPlan> {
        self.buses
            .iter()
            .map(|b| {
                let joints: Vec<&JointConfig> = self.joints.iter().filter(|j| j.bus == b.name).collect();
                let protocol = joints.first().map_or(DriveProtocol::Mit, |j| j.protocol);
                let canopen = protocol == DriveProtocol::Cia402;
                let ms = |ms: u16| core::time::Duration::from_millis(u64::from(ms));
                BusPlan {
                    name: b.name.clone(),
                    bitrates: b.bitrates(),
                    fd_brs: b.data_bitrate.is_some(),
                    protocol,
                    joints: joints.len(),
                    master_heartbeat: canopen.then(|| ms(self.master_heartbeat_ms)),
                    drive_heartbeats: if canopen {
                        joints.iter().map(|j| ms(j.cia402.unwrap_or_default().heartbeat_ms)).collect()
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect()
    }

    /// Checks every value; the error names the key (`joints[2].node_id`) and what is allowed. Includes the
    /// bus-load check against `bus_load_limit`. Not real-time safe.
    pub fn validate(&self) -> Result<(), HalError> {
        let cfg = |key: String, reason: String| HalError::Config { key, reason };
        if !(self.control_rate_hz.is_finite() && self.control_rate_hz > 0.0 && self.control_rate_hz <= 10_000.0) {
            return Err(cfg("control_rate_hz".into(), format!("{} must be in (0, 10000]", self.control_rate_hz)));
        }
        // Both bounds follow from the control period: `read` waits for the replies within the cycle it serves (a
        // longer wait overruns every cycle with a late reply and delays the stop), and the host must stop on a
        // silent bus within the time the drives themselves would keep torque ([`MAX_MIT_DRIVE_TIMEOUT_MS`]).
        let period_us = 1e6 / self.control_rate_hz;
        if self.reply_timeout_us == 0 || self.reply_timeout_us as f64 > period_us {
            return Err(cfg(
                "reply_timeout_us".into(),
                format!(
                    "{} µs must be in 1..={} µs (one control period at {} Hz: the replies are awaited within the \
                     cycle they serve)",
                    self.reply_timeout_us,
                    period_us.floor(),
                    self.control_rate_hz
                ),
            ));
        }
        let max_missed = ((f64::from(MAX_MIT_DRIVE_TIMEOUT_MS) * 1e3 / period_us).floor() as u32).max(1);
        if self.max_missed_cycles == 0 || self.max_missed_cycles > max_missed {
            return Err(cfg(
                "max_missed_cycles".into(),
                format!(
                    "{} must be in 1..={max_missed}: at {} Hz more missed cycles leave a silent bus unnoticed for \
                     longer than {MAX_MIT_DRIVE_TIMEOUT_MS} ms, the longest a drive may keep torque without the host",
                    self.max_missed_cycles, self.control_rate_hz
                ),
            ));
        }
        if !(1..=127).contains(&self.master_node_id) {
            return Err(cfg("master_node_id".into(), format!("{} must be 1..=127", self.master_node_id)));
        }
        if !(1..=MAX_MASTER_HEARTBEAT_MS).contains(&self.master_heartbeat_ms) {
            return Err(cfg(
                "master_heartbeat_ms".into(),
                format!(
                    "{} must be in 1..={MAX_MASTER_HEARTBEAT_MS}: CiA 402 drives take the torque off 3 heartbeat \
                     periods after the host's last one (at most 150 ms)",
                    self.master_heartbeat_ms
                ),
            ));
        }
        if !(self.temperature_limit_c.is_finite() && self.temperature_limit_c <= MAX_TEMPERATURE_LIMIT_C) {
            return Err(cfg(
                "temperature_limit_c".into(),
                format!(
                    "{} °C must be at most {MAX_TEMPERATURE_LIMIT_C} °C: the reported temperature is a winding or \
                     driver estimate, and 100 °C keeps ≥ 30 K to the class-B insulation limit of 130 °C",
                    self.temperature_limit_c
                ),
            ));
        }
        if self.temperature_warning_c.partial_cmp(&self.temperature_limit_c) != Some(core::cmp::Ordering::Less) {
            return Err(cfg("temperature_warning_c".into(), "must be below temperature_limit_c".into()));
        }
        if self.joints.is_empty() || self.joints.len() > plexo_hal::MAX_JOINTS {
            return Err(cfg(
                "joints".into(),
                format!("{} joints, allowed 1..={}", self.joints.len(), plexo_hal::MAX_JOINTS),
            ));
        }
        for (b, bus) in self.buses.iter().enumerate() {
            if bus.bitrate == 0 || bus.bitrate > 1_000_000 {
                return Err(cfg(format!("buses[{b}].bitrate"), format!("{} must be in 1..=1000000", bus.bitrate)));
            }
            if let Some(data) = bus.data_bitrate
                && !(bus.bitrate..=MAX_DATA_BITRATE).contains(&data)
            {
                return Err(cfg(
                    format!("buses[{b}].data_bitrate"),
                    format!(
                        "{data} must be in {}..={MAX_DATA_BITRATE} (the nominal bitrate up to what CAN FD \
                         transceivers support)",
                        bus.bitrate
                    ),
                ));
            }
            if self.buses[..b].iter().any(|o| o.name == bus.name) {
                return Err(cfg(format!("buses[{b}].name"), format!("duplicate bus {:?}", bus.name)));
            }
        }
        for (i, j) in self.joints.iter().enumerate() {
            let key = |k: &str| format!("joints[{i}].{k}");
            if self.joints[..i].iter().any(|o| o.name == j.name) {
                return Err(cfg(key("name"), format!("duplicate joint {:?}", j.name)));
            }
            if !self.buses.iter().any(|b| b.name == j.bus) {
                return Err(cfg(key("bus"), format!("no bus named {:?} in [[buses]]", j.bus)));
            }
            if !(1..=127).contains(&j.node_id) || j.node_id == self.master_node_id {
                return Err(cfg(key("node_id"), format!("{} must be 1..=127 and not the master id", j.node_id)));
            }
            if let Some(o) = self.joints[..i].iter().find(|o| o.bus == j.bus && o.node_id == j.node_id) {
                return Err(cfg(key("node_id"), format!("{} already used by {:?} on {}", j.node_id, o.name, j.bus)));
            }
            if let Some(o) = self.joints[..i].iter().find(|o| o.bus == j.bus && o.protocol != j.protocol) {
                return Err(cfg(
                    key("protocol"),
                    format!("bus {} already carries {} ({:?}); one protocol per bus", j.bus, o.protocol.name(), o.name),
                ));
            }
            if !(j.gear_ratio.is_finite() && j.gear_ratio > 0.0) {
                return Err(cfg(key("gear_ratio"), format!("{} must be finite and > 0", j.gear_ratio)));
            }
            if j.direction != 1 && j.direction != -1 {
                return Err(cfg(key("direction"), format!("{} must be 1 or -1", j.direction)));
            }
            if !(j.zero_offset.is_finite() && j.torque_constant.is_finite() && j.torque_constant > 0.0) {
                return Err(cfg(key("torque_constant"), "zero_offset finite and torque_constant > 0".into()));
            }
            let l = j.limits;
            let ok = [l.position_min, l.position_max, l.velocity_max, l.torque_max].iter().all(|v| v.is_finite())
                && l.position_min < l.position_max
                && l.velocity_max > 0.0
                && l.torque_max > 0.0;
            if !ok {
                return Err(cfg(key("limits"), "finite, position_min < position_max, velocity/torque max > 0".into()));
            }
            match j.protocol {
                DriveProtocol::Mit => {
                    let Some(m) = j.mit else {
                        return Err(cfg(key("mit"), "required for protocol = \"mit\" (drive_timeout_ms)".into()));
                    };
                    if m.drive_timeout_ms == 0 {
                        return Err(cfg(
                            key("mit.drive_timeout_ms"),
                            "0 means no drive timeout: the motor would keep its last command when the link drops; \
                             set the CAN timeout in the CubeMars tool and enter it here"
                                .into(),
                        ));
                    }
                    if m.drive_timeout_ms > MAX_MIT_DRIVE_TIMEOUT_MS {
                        return Err(cfg(
                            key("mit.drive_timeout_ms"),
                            format!(
                                "{} ms: a motor whose host stopped talking would keep its last command that long; \
                                 allowed 1..={MAX_MIT_DRIVE_TIMEOUT_MS} ms (set the CAN timeout in the CubeMars tool \
                                 and enter it here)",
                                m.drive_timeout_ms
                            ),
                        ));
                    }
                    let r = j.mit_table().map_err(|(k, reason)| cfg(key(k), reason))?;
                    if ![r.position_max, r.velocity_max, r.torque_max, r.kp_max, r.kd_max]
                        .iter()
                        .all(|v| v.is_finite() && *v > 0.0)
                    {
                        return Err(cfg(key("mit.ranges"), "every range must be finite and > 0".into()));
                    }
                    if m.reply_can_id > 0x7FF {
                        return Err(cfg(key("mit.reply_can_id"), "must be a standard id ≤ 0x7FF".into()));
                    }
                }
                DriveProtocol::Cia402 => {
                    let o = j.cia402.unwrap_or_default();
                    if o.encoder_counts_per_rev == 0 || o.heartbeat_ms == 0 || o.max_torque_permille == 0 {
                        return Err(cfg(
                            key("cia402"),
                            "encoder_counts_per_rev, heartbeat_ms and max_torque_permille must be > 0".into(),
                        ));
                    }
                    // 0x6007: 0 = no reaction, negative = manufacturer-specific (unknown): either could leave the
                    // drive enabled when the host stops talking. 1 = fault (reaction 0x605E), 2 = disable voltage,
                    // 3 = quick stop (0x605A).
                    if !(1..=3).contains(&o.abort_connection_option) {
                        return Err(cfg(
                            key("cia402.abort_connection_option"),
                            format!(
                                "{} must be 1 (fault), 2 (disable voltage) or 3 (quick stop): with 0 or a \
                                 manufacturer code the drive may stay enabled when the host stops talking",
                                o.abort_connection_option
                            ),
                        ));
                    }
                }
            }
        }
        crate::planner::check_bus_load(&self.bus_plans(), self.control_rate_hz, self.bus_load_limit)?;
        Ok(())
    }

    /// Longest time every drive keeps torque after the host's last frame: the largest MIT drive timeout, and
    /// for CiA 402 drives their heartbeat consumer time 3 × `master_heartbeat_ms` (0x1016; 0x6007 then takes
    /// the torque off). At most 150 ms for a validated configuration ([`MAX_MIT_DRIVE_TIMEOUT_MS`],
    /// [`MAX_MASTER_HEARTBEAT_MS`]). CiA 402 drives that supervise SYNC (0x1006) react sooner.
    pub fn host_loss_torque_off_bound(&self) -> core::time::Duration {
        let ms = self
            .joints
            .iter()
            .map(|j| match j.protocol {
                DriveProtocol::Mit => j.mit.map_or(0, |m| m.drive_timeout_ms),
                DriveProtocol::Cia402 => 3 * u32::from(self.master_heartbeat_ms),
            })
            .max()
            .unwrap_or(0);
        core::time::Duration::from_millis(u64::from(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const EXAMPLE: &str = r#"
control_rate_hz = 500.0
[[buses]]
name = "can0"
bitrate = 1000000
[[buses]]
name = "can1"
bitrate = 1000000

[[joints]]
name = "shoulder_abduction"
bus = "can0"
node_id = 1
protocol = "mit"
motor = "AK80-9"
direction = -1
zero_offset = 0.1
limits = { position_min = -0.5, position_max = 2.0, velocity_max = 6.0, torque_max = 15.0 }
mit = { drive_timeout_ms = 20, firmware = "V1.1" }

[[joints]]
name = "elbow_flexion"
bus = "can1"
node_id = 5
protocol = "cia402"
motor = "generic"
gear_ratio = 50.0
limits = { position_min = -0.1, position_max = 2.4, velocity_max = 6.0, torque_max = 12.0 }
cia402 = { rated_torque_mnm = 320, heartbeat_ms = 100 }
"#;

    #[test]
    fn example_toml_loads() {
        let c = CanRobotConfig::from_toml(EXAMPLE, "robot.toml").unwrap();
        assert_eq!(c.joints.len(), 2);
        assert_eq!(c.max_missed_cycles, 3);
        assert_eq!(c.joints[0].mit_ranges(), Some(AkModel::Ak80_9.ranges()));
        assert_eq!(c.joints[1].cia402.unwrap().rated_torque_mnm, Some(320));
        let m = c.joints[0].mapping();
        assert!((m.link_position(m.drive_position(0.7)) - 0.7).abs() < 1e-12);
        assert_eq!(m.link_torque(2.0), -2.0);
    }

    #[test]
    fn unknown_keys_are_rejected_with_the_key_name() {
        let bad = EXAMPLE.replace("gear_ratio = 50.0", "gear_ratio = 50.0\ngearratio = 3");
        let e = CanRobotConfig::from_toml(&bad, "robot.toml").unwrap_err().to_string();
        assert!(e.contains("robot.toml") && e.contains("gearratio"), "{e}");
    }

    #[test]
    fn drive_timeouts_that_leave_torque_on_too_long_are_rejected() {
        // Issue 13 §1/§3: `drive_timeout_ms = 60000` was accepted (a motor holding its last command for a minute).
        let bad = EXAMPLE.replace("drive_timeout_ms = 20", "drive_timeout_ms = 60000");
        let e = CanRobotConfig::from_toml(&bad, "robot.toml").unwrap_err().to_string();
        assert!(e.contains("joints[0].mit.drive_timeout_ms") && e.contains("1..=50"), "{e}");
        let edge = EXAMPLE.replace("drive_timeout_ms = 20", "drive_timeout_ms = 50");
        assert!(CanRobotConfig::from_toml(&edge, "robot.toml").is_ok());
        let slow = format!("master_heartbeat_ms = 51\n{EXAMPLE}");
        let e = CanRobotConfig::from_toml(&slow, "robot.toml").unwrap_err().to_string();
        assert!(e.contains("master_heartbeat_ms") && e.contains("1..=50"), "{e}");
        let off = EXAMPLE.replace("heartbeat_ms = 100 }", "heartbeat_ms = 100, abort_connection_option = 0 }");
        let e = CanRobotConfig::from_toml(&off, "robot.toml").unwrap_err().to_string();
        assert!(e.contains("joints[1].cia402.abort_connection_option"), "{e}");
        let c = CanRobotConfig::from_toml(EXAMPLE, "robot.toml").unwrap();
        assert_eq!(c.host_loss_torque_off_bound(), core::time::Duration::from_millis(150), "3 × 50 ms heartbeat");
    }

    #[test]
    fn mit_can_timeout_zero_is_rejected() {
        let bad = EXAMPLE.replace("drive_timeout_ms = 20", "drive_timeout_ms = 0");
        let e = CanRobotConfig::from_toml(&bad, "robot.toml").unwrap_err().to_string();
        assert!(e.contains("joints[0].mit.drive_timeout_ms"), "{e}");
    }

    #[test]
    fn reply_timeout_and_missed_cycles_cannot_leave_a_silent_bus_unnoticed() {
        // Regression (issue 13 §3): `reply_timeout_us` was not checked (60 s passed `check`) and 100 missed cycles
        // were accepted (200 ms of silence at 500 Hz before the stop).
        let with = |line: &str| EXAMPLE.replace("control_rate_hz = 500.0", &format!("control_rate_hz = 500.0\n{line}"));
        for (line, key) in [
            ("reply_timeout_us = 60000000", "reply_timeout_us"),
            ("reply_timeout_us = 2001", "reply_timeout_us"),
            ("reply_timeout_us = 0", "reply_timeout_us"),
            ("max_missed_cycles = 100", "max_missed_cycles"),
            ("max_missed_cycles = 26", "max_missed_cycles"),
        ] {
            let e = CanRobotConfig::from_toml(&with(line), "r.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{line}: {e}");
        }
        // The edges: one full period of 2 ms, and 25 cycles = 50 ms at 500 Hz.
        for line in ["reply_timeout_us = 2000", "max_missed_cycles = 25"] {
            CanRobotConfig::from_toml(&with(line), "r.toml").unwrap_or_else(|e| panic!("{line}: {e}"));
        }
    }

    #[test]
    fn regression_an_ak80_9_without_its_firmware_version_was_read_with_the_v1_1_table() {
        // Before, every AK80-9 got the manual's (V1.1) ±50 rad/s table: on V2.0 firmware (±25.64 rad/s) every
        // velocity was read and commanded at about twice its value.
        for model in ["AK80-9", "AK60-6"] {
            let toml = EXAMPLE
                .replace("motor = \"AK80-9\"", &format!("motor = \"{model}\""))
                .replace(", firmware = \"V1.1\"", "");
            let e = CanRobotConfig::from_toml(&toml, "r.toml").unwrap_err();
            let text = e.to_string();
            assert!(text.contains("joints[0].mit.firmware") && text.contains(model), "{text}");
            assert_eq!(plexo_hal::RobotError::kind(&e), plexo_hal::ErrorKind::Configuration);
            // Explicit ranges do without the version.
            let ranged = toml.replace(
                "mit = { drive_timeout_ms = 20 }",
                "mit = { drive_timeout_ms = 20, ranges = { position_max = 12.5, velocity_max = 30.0, torque_max = 18.0, kp_max = 500.0, kd_max = 5.0 } }",
            );
            let c = CanRobotConfig::from_toml(&ranged, "r.toml").unwrap();
            assert_eq!(c.joints[0].mit_ranges().unwrap().velocity_max, 30.0);
        }
        // The firmware selects the table.
        let v2 = EXAMPLE.replace("firmware = \"V1.1\"", "firmware = \"V2.0\"");
        let c = CanRobotConfig::from_toml(&v2, "r.toml").unwrap();
        assert_eq!(c.joints[0].mit_ranges(), AkModel::Ak80_9.ranges_for(MitFirmware::V2_0));
        assert_eq!(c.joints[0].mit_ranges().unwrap().velocity_max, 25.64);
        // Models with one known table default to it (the plexo-arm4 hardware configuration names none).
        let ak80_64 = EXAMPLE.replace("motor = \"AK80-9\"", "motor = \"AK80-64\"").replace(", firmware = \"V1.1\"", "");
        let c = CanRobotConfig::from_toml(&ak80_64, "r.toml").unwrap();
        assert_eq!(c.joints[0].mit_ranges(), Some(AkModel::Ak80_64.ranges()));
    }

    #[test]
    fn a_firmware_without_a_published_table_is_refused_naming_mit_firmware() {
        for model in ["AK80-64", "AK70-10", "AK10-9", "AK60-6"] {
            let toml = EXAMPLE
                .replace("motor = \"AK80-9\"", &format!("motor = \"{model}\""))
                .replace("firmware = \"V1.1\"", "firmware = \"V2.0\"");
            let text = CanRobotConfig::from_toml(&toml, "r.toml").unwrap_err().to_string();
            assert!(text.contains("joints[0].mit.firmware") && text.contains(model) && text.contains("V2.0"), "{text}");
        }
        // An unknown version is a parse error naming the key.
        let toml = EXAMPLE.replace("firmware = \"V1.1\"", "firmware = \"V3\"");
        let text = CanRobotConfig::from_toml(&toml, "r.toml").unwrap_err().to_string();
        assert!(text.contains("firmware") && text.contains("V3"), "{text}");
    }

    #[test]
    fn bad_values_name_their_key() {
        for (from, to, key) in [
            ("node_id = 5", "node_id = 0", "joints[1].node_id"),
            ("bus = \"can1\"", "bus = \"can9\"", "joints[1].bus"),
            ("bus = \"can1\"", "bus = \"can0\"", "joints[1].protocol"),
            ("direction = -1", "direction = 2", "joints[0].direction"),
            ("motor = \"AK80-9\"", "motor = \"AK99-1\"", "joints[0].motor"),
            ("gear_ratio = 50.0", "gear_ratio = -1.0", "joints[1].gear_ratio"),
        ] {
            let e = CanRobotConfig::from_toml(&EXAMPLE.replace(from, to), "r.toml").unwrap_err().to_string();
            assert!(e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn a_temperature_limit_above_the_insulation_margin_is_refused_naming_the_key() {
        // Regression (clinic hardening): `temperature_limit_c = 500` passed validation (a drive would have been
        // driven until its own protection, if any, cut out).
        let with = |line: &str| format!("{line}\n{EXAMPLE}");
        for value in ["500.0", "100.5", "inf", "nan"] {
            let e = CanRobotConfig::from_toml(&with(&format!("temperature_limit_c = {value}")), "r.toml").unwrap_err();
            let text = e.to_string();
            assert!(text.contains("temperature_limit_c") && text.contains("100"), "{value}: {text}");
            assert_eq!(plexo_hal::RobotError::kind(&e), plexo_hal::ErrorKind::Configuration);
        }
        // The bound itself passes; the warning must still be below the limit.
        let c = CanRobotConfig::from_toml(&with("temperature_limit_c = 100.0"), "r.toml").unwrap();
        assert_eq!(c.temperature_limit_c, MAX_TEMPERATURE_LIMIT_C);
        let e = CanRobotConfig::from_toml(&with("temperature_limit_c = 90.0\ntemperature_warning_c = 95.0"), "r.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("temperature_warning_c"), "{e}");
    }

    #[test]
    fn can_fd_data_bitrate_is_validated() {
        // Regression (issue 13 §5): a data bitrate of 100 Mbit/s was accepted (and planned with).
        let fd = |rate: u32| {
            EXAMPLE.replacen(
                "name = \"can1\"\nbitrate = 1000000",
                &format!("name = \"can1\"\nbitrate = 1000000\ndata_bitrate = {rate}"),
                1,
            )
        };
        for rate in [100_000_000, 8_000_001, 500_000] {
            let e = CanRobotConfig::from_toml(&fd(rate), "r.toml").unwrap_err();
            assert!(e.to_string().contains("buses[1].data_bitrate"), "{rate}: {e}");
            assert_eq!(plexo_hal::RobotError::kind(&e), plexo_hal::ErrorKind::Configuration);
        }
        for rate in [1_000_000, 2_000_000, 5_000_000, 8_000_000] {
            let c = CanRobotConfig::from_toml(&fd(rate), "r.toml").unwrap();
            assert_eq!(c.buses[1].data_bitrate, Some(rate));
        }
    }

    #[test]
    fn overloaded_bus_is_refused_at_load() {
        let mut c = CanRobotConfig::from_toml(EXAMPLE, "r.toml").unwrap();
        c.control_rate_hz = 1000.0;
        for n in 2..=4 {
            let mut j = c.joints[0].clone();
            j.name = format!("j{n}");
            j.node_id = n;
            c.joints.push(j);
        }
        let e = c.validate().unwrap_err();
        assert!(matches!(e, HalError::BusOverload { .. }), "{e}");
    }
}
