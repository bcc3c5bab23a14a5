//! `plexo replay <file.rrd | candump.log>`: look back at a session.
//!
//! - A Rerun recording: lists what it holds (entity paths, rows, time range) and, with `--spawn`, opens it in a
//!   Rerun viewer listening on loopback only.
//! - A candump log (from `candump -l`, or saved by the emulated bus): frame statistics per CAN id and, with the
//!   hardware configuration, the drives' replies decoded to link-side joint positions, velocities and torques
//!   (MIT replies, CiA 402 TPDO1); `--save` writes them to a .rrd as `joints/<joint>/{q, qd, tau}` over the
//!   `can_time` timeline.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use clap::Args;
use plexo_can::CanId;
use plexo_can::DriveProtocol;
use plexo_can::candump::LogRecord;

use crate::AppError;
use crate::hardware::HardwareConfig;
use crate::telemetry::entities;

/// Options of `plexo replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// A Rerun recording (.rrd) or a candump log (.log).
    pub file: PathBuf,
    /// Hardware configuration to decode a candump log's drive replies per joint.
    #[arg(long)]
    pub hardware: Option<PathBuf>,
    /// Write the decoded joint series of a candump log to this .rrd.
    #[arg(long)]
    pub save: Option<PathBuf>,
    /// Open the recording in a Rerun viewer (listening on 127.0.0.1 only).
    #[arg(long)]
    pub spawn: bool,
}

/// Runs `plexo replay`.
pub fn run(args: &ReplayArgs) -> Result<(), AppError> {
    let inputs: Vec<(&str, &Path)> = [("FILE", Some(args.file.as_path())), ("--hardware", args.hardware.as_deref())]
        .into_iter()
        .filter_map(|(role, p)| p.map(|p| (role, p)))
        .collect();
    let outputs: Vec<(&str, &Path)> = args.save.as_deref().map(|p| ("--save", p)).into_iter().collect();
    crate::files::check_distinct(&inputs, &outputs)?;
    crate::files::check_input(&args.file, crate::files::MAX_LOG_BYTES)?;
    // By content, not only by name: a recording cut by `kill -9` is left under its temporary name
    // (`.<name>.rrd.partial-<pid>`).
    let is_rrd = args.file.extension().is_some_and(|e| e == "rrd") || starts_like_rrd(&args.file);
    if is_rrd {
        let summary = read_rrd(&args.file)?;
        print!("{}", summary.render());
        if args.spawn {
            let url = crate::telemetry::live::spawn_viewer(Some(&args.file)).map_err(AppError::Telemetry)?;
            println!("opened in the viewer at {url}");
        }
        // A cut recording is shown (what it holds is real) but the command fails, so that no script takes it
        // for a whole session.
        return match summary.truncation() {
            Some(reason) => {
                Err(AppError::Config { file: args.file.display().to_string(), key: "(rrd)".into(), reason })
            }
            None => Ok(()),
        };
    }
    let text = crate::files::read_input(&args.file, crate::files::MAX_LOG_BYTES)?;
    let records = plexo_can::candump::parse_log(&text).map_err(|e| AppError::Config {
        file: args.file.display().to_string(),
        key: "(candump line)".into(),
        reason: e.to_string(),
    })?;
    print!("{}", frame_statistics(&records));
    if let Some(hw) = &args.hardware {
        let hw = HardwareConfig::from_file(hw)?;
        let series = decode_joints(&hw, &records);
        for s in &series {
            let (lo, hi) = s.q.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
            println!(
                "joint {:<20} {:>7} replies, q in [{:.1}, {:.1}] deg",
                s.joint,
                s.time.len(),
                lo.to_degrees(),
                hi.to_degrees()
            );
        }
        if let Some(out) = &args.save {
            save_series(out, &args.file, &series)?;
            println!("decoded joint series saved to {}", out.display());
        }
    } else if args.save.is_some() {
        return Err(AppError::Config {
            file: args.file.display().to_string(),
            key: "--save".into(),
            reason: "decoding a candump log needs --hardware <config.toml> (node ids, protocols, ratios)".into(),
        });
    }
    Ok(())
}

/// What a recording holds of one entity.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct EntityStats {
    /// Chunks.
    pub chunks: usize,
    /// Rows (one per logged time point).
    pub rows: usize,
    /// Only static (timeless) data.
    pub is_static: bool,
    /// Scalar values of a time series, over all rows (rows × instances per row).
    pub scalars: usize,
    /// Rows of its temporal chunks (the static style excluded).
    pub temporal_rows: usize,
    /// First and last session time of its rows (the `sim_time` timeline) [s]; `None`: static or other timelines.
    pub time_range: Option<(f64, f64)>,
    /// Bytes of its chunks as the file stores them (encoded and compressed as Rerun writes them).
    pub bytes: u64,
}

/// One view of the blueprint sent with a recording, as the file holds it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BlueprintView {
    /// Its entity queries (e.g. `/joints/torque`, `/session/blocks/**`).
    pub contents: Vec<String>,
    /// Per entity with a visible-series override (`SeriesLines:visible_series`): which of its instances the
    /// view draws.
    pub visible_series: BTreeMap<String, Vec<bool>>,
}

/// What a recording holds.
#[derive(Debug, Default)]
pub struct RrdSummary {
    /// Entity path of the recording's data (the blueprint excluded) → what it holds.
    pub entities: BTreeMap<String, EntityStats>,
    /// Timeline names seen in the recording's data.
    pub timelines: Vec<String>,
    /// Recording (application) ids seen.
    pub recordings: Vec<String>,
    /// The recording's name (its `RecordingInfo`), if it has one.
    pub name: Option<String>,
    /// The recording's text properties, `<group>/<field>` → value (e.g. `session/robot`).
    pub properties: BTreeMap<String, String>,
    /// Display names of the views of the blueprint sent with the recording (none: no blueprint).
    pub blueprint_views: Vec<String>,
    /// The views of the blueprint by display name: what each one queries and shows.
    pub blueprint: BTreeMap<String, BlueprintView>,
    /// The blueprint was activated (the viewer uses it once it has arrived whole).
    pub blueprint_activated: bool,
    /// Messages decoded.
    pub messages: usize,
    /// The file ends with Rerun's stream footer, which the writer appends when it closes the recording: without
    /// it the recording was cut (the process killed, the disk full) and holds only the start of the session.
    pub complete: bool,
    /// Last session time in the recording (the `sim_time` timeline) [s].
    pub last_time: Option<f64>,
    /// Last control tick in the recording (the `tick` timeline of recordings written before issue 14).
    pub last_tick: Option<i64>,
    /// Size of the file [bytes].
    pub bytes: u64,
    /// Trials the recording holds (points of its per-trial series; `None`: a recording without them).
    pub trials: Option<usize>,
    /// Legend names of the time series, per entity (its static `SeriesLines`/`SeriesPoints` names).
    pub series_names: BTreeMap<String, Vec<String>>,
    /// Single-precision values of the static components, per `(entity, component)` (e.g.
    /// `Capsules3D:lengths`): the geometry of the 3D view.
    pub static_values: BTreeMap<(String, String), Vec<f32>>,
    /// Static components per entity (e.g. `Asset3D:blob`).
    pub static_components: BTreeMap<String, Vec<String>>,
}

impl RrdSummary {
    /// The listing printed by `plexo replay`.
    pub fn render(&self) -> String {
        let mut s = format!(
            "recording {}{} — {} messages, {:.1} MB, timelines {}\n",
            self.recordings.join(", "),
            self.name.as_deref().map(|n| format!(" '{n}'")).unwrap_or_default(),
            self.messages,
            self.bytes as f64 / 1e6,
            self.timelines.join(", ")
        );
        for (key, value) in &self.properties {
            s.push_str(&format!("  {key}: {value}\n"));
        }
        s.push_str(&match self.blueprint_views.len() {
            0 => "no blueprint (the viewer invents a layout)\n".to_owned(),
            n => format!("blueprint: {n} views{}\n", if self.blueprint_activated { "" } else { " (not activated)" }),
        });
        s.push_str(&format!("{:<45} {:>7} {:>9} {:>9} {:>8}\n", "entity", "chunks", "rows", "MB", "per row"));
        for (path, e) in &self.entities {
            let kind = if e.is_static { "  (static)" } else { "" };
            // A time series' scalars per row (a grouped entity holds several quantities and joints per row).
            let per_row = match (e.scalars, e.temporal_rows) {
                (0, _) | (_, 0) => String::new(),
                (n, rows) if n % rows == 0 => format!("{}", n / rows),
                (n, rows) => format!("{:.1}", n as f64 / rows as f64),
            };
            s.push_str(&format!(
                "{path:<45} {:>7} {:>9} {:>9.2} {per_row:>8}{kind}\n",
                e.chunks,
                e.rows,
                e.bytes as f64 / 1e6
            ));
        }
        if let Some(n) = self.trials {
            s.push_str(&format!("trials recorded: {n}\n"));
        }
        if let Some(t) = self.last_time {
            let tick = self.last_tick.map(|k| format!(" (last tick {k})")).unwrap_or_default();
            s.push_str(&format!("session time recorded: 0 to {t:.3} s{tick}\n"));
        }
        if let Some(warning) = self.truncation() {
            s.push_str(&format!("WARNING: {warning}\n"));
        }
        s
    }

    /// Why the recording is incomplete, with how much of the session it holds (`None`: complete).
    pub fn truncation(&self) -> Option<String> {
        (!self.complete).then(|| {
            format!(
                "the recording is TRUNCATED ({} bytes, no end-of-stream footer: the writing process was killed or \
                 the disk filled); it holds {} of the session and the rest is missing",
                self.bytes,
                match (self.last_time, self.last_tick) {
                    (Some(t), Some(k)) => format!("the first {t:.3} s (ticks 0 to {k}, {} messages)", self.messages),
                    (Some(t), None) => format!("the first {t:.3} s ({} messages)", self.messages),
                    _ => format!("no time series ({} messages)", self.messages),
                }
            )
        })
    }
}

/// True if `path` starts with Rerun's stream header (`RRF2`).
fn starts_like_rrd(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 4];
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head == re_log_encoding::RRD_FOURCC
}

/// True if `path` ends with the 12 fixed bytes of Rerun's stream footer (`RRF2` `FOOT` and the footer count),
/// which the encoder writes when the recording is closed.
fn has_stream_footer(path: &Path) -> Result<bool, AppError> {
    use std::io::{Read, Seek, SeekFrom};
    let io = |e| AppError::Io { path: path.display().to_string(), source: e };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    if len < 12 {
        return Ok(false);
    }
    let mut tail = [0u8; 12];
    file.seek(SeekFrom::End(-12)).map_err(io)?;
    file.read_exact(&mut tail).map_err(io)?;
    Ok(tail[..4] == re_log_encoding::RRD_FOURCC && &tail[4..8] == b"FOOT")
}

/// The first text of `component` in `chunk`, if it holds one.
fn first_text(chunk: &re_chunk::Chunk, component: re_chunk::ComponentIdentifier) -> Option<String> {
    chunk.iter_slices::<String>(component).flatten().next().map(|s| s.to_string())
}

/// Decodes a .rrd file: every entity path with its chunk and row counts, the recording's name and properties,
/// the blueprint's views. Errors name the file.
pub fn read_rrd(path: &Path) -> Result<RrdSummary, AppError> {
    use rerun::external::re_log_types::{LogMsg, StoreKind};
    let err = |reason: String| AppError::Config { file: path.display().to_string(), key: "(rrd)".into(), reason };
    let file = std::fs::File::open(path).map_err(|e| AppError::Io { path: path.display().to_string(), source: e })?;
    let decoder = re_log_encoding::DecoderApp::decode_eager(BufReader::new(file))
        .map_err(|e| err(format!("not a Rerun recording: {e}")))?;
    let mut summary = RrdSummary {
        complete: has_stream_footer(path)?,
        bytes: std::fs::metadata(path).map_err(|e| AppError::Io { path: path.display().to_string(), source: e })?.len(),
        ..RrdSummary::default()
    };
    // Each message re-encoded as the file sink encodes it: its size in the file, per entity.
    let mut encoder = re_log_encoding::Encoder::new_eager(
        re_log_encoding::CrateVersion::LOCAL,
        re_log_encoding::EncodingOptions::PROTOBUF_COMPRESSED,
        std::io::sink(),
    )
    .map_err(|e| err(format!("cannot measure the recording: {e}")))?;
    let view_name: re_chunk::ComponentIdentifier = "ViewBlueprint:display_name".into();
    let recording_name: re_chunk::ComponentIdentifier = "RecordingInfo:name".into();
    let scalars: re_chunk::ComponentIdentifier = "Scalars:scalars".into();
    // View id → (display name, contents and overrides), named at the end.
    let mut views: BTreeMap<String, (Option<String>, BlueprintView)> = BTreeMap::new();
    for msg in decoder {
        let msg = msg.map_err(|e| err(format!("corrupt recording: {e}")))?;
        summary.messages += 1;
        let bytes = encoder.append(&msg).map_err(|e| err(format!("cannot measure the recording: {e}")))?;
        match msg {
            LogMsg::SetStoreInfo(info) => {
                if info.info.store_id.kind() == StoreKind::Recording {
                    let id = format!("{}", info.info.store_id.application_id());
                    if !summary.recordings.contains(&id) {
                        summary.recordings.push(id);
                    }
                }
            }
            LogMsg::ArrowMsg(store, arrow) => {
                let chunk = re_chunk::Chunk::from_arrow_msg(&arrow).map_err(|e| err(format!("bad chunk: {e}")))?;
                let entity = chunk.entity_path().to_string();
                if store.kind() == StoreKind::Blueprint {
                    if let Some(name) = first_text(&chunk, view_name) {
                        summary.blueprint_views.push(name.clone());
                        if let Some(id) = entity.strip_prefix("/view/") {
                            views.entry(id.to_owned()).or_default().0 = Some(name);
                        }
                    }
                    read_blueprint_view(&chunk, &entity, &mut views);
                    continue;
                }
                if chunk.is_static() {
                    read_static(&chunk, &entity, &mut summary);
                }
                if entity == "/__properties" {
                    summary.name = first_text(&chunk, recording_name).or(summary.name.take());
                } else if let Some(group) = entity.strip_prefix("/__properties/") {
                    for descriptor in chunk.component_descriptors() {
                        if let Some(text) = first_text(&chunk, descriptor.component) {
                            summary.properties.insert(format!("{group}/{}", descriptor.component), text);
                        }
                    }
                }
                let entry =
                    summary.entities.entry(entity).or_insert(EntityStats { is_static: true, ..EntityStats::default() });
                entry.chunks += 1;
                entry.rows += chunk.num_rows();
                if !chunk.is_static() {
                    entry.temporal_rows += chunk.num_rows();
                }
                entry.is_static &= chunk.is_static();
                entry.scalars += chunk.raw_component_array(scalars).map_or(0, |values| values.len());
                entry.bytes += bytes;
                for (name, column) in chunk.timelines() {
                    let max = column.time_range().max().as_i64();
                    if name.as_str() == crate::telemetry::entities::SIM_TIME {
                        // A duration timeline counts nanoseconds.
                        let t = max as f64 * 1e-9;
                        let first = column.time_range().min().as_i64() as f64 * 1e-9;
                        entry.time_range = Some(entry.time_range.map_or((first, t), |(a, b)| (a.min(first), b.max(t))));
                        summary.last_time = Some(summary.last_time.map_or(t, |l: f64| l.max(t)));
                    } else if name.as_str() == crate::telemetry::entities::TICK {
                        summary.last_tick = Some(summary.last_tick.map_or(max, |l| l.max(max)));
                    }
                    let name = name.to_string();
                    if !summary.timelines.contains(&name) {
                        summary.timelines.push(name);
                    }
                }
            }
            LogMsg::BlueprintActivationCommand(cmd) => {
                summary.blueprint_activated |= cmd.make_active || cmd.make_default
            }
        }
    }
    summary.blueprint = views.into_iter().map(|(id, (name, view))| (name.unwrap_or(id), view)).collect();
    let trial_points = format!("/{}", crate::telemetry::entities::TRIAL_SUCCESS);
    summary.trials = summary.entities.get(&trial_points).map(|e| e.scalars);
    Ok(summary)
}

/// Collects what a blueprint chunk of `entity` says of a view: its queries (`/view/<id>/ViewContents`) or an
/// entity's visible series (`/view/<id>/ViewContents/overrides/<entity>/visualizers/<visualizer>`).
fn read_blueprint_view(
    chunk: &re_chunk::Chunk,
    entity: &str,
    views: &mut BTreeMap<String, (Option<String>, BlueprintView)>,
) {
    let Some((id, rest)) = entity.strip_prefix("/view/").and_then(|e| e.split_once('/')) else { return };
    if rest == "ViewContents" {
        let queries = chunk.iter_slices::<String>("ViewContents:query".into()).flatten().map(|q| q.to_string());
        views.entry(id.to_owned()).or_default().1.contents.extend(queries);
    } else if let Some(overridden) = rest.strip_prefix("ViewContents/overrides/") {
        let Some((overridden, _)) = overridden.rsplit_once("/visualizers") else { return };
        let visible: Vec<bool> = chunk
            .iter_slices::<bool>("SeriesLines:visible_series".into())
            .flat_map(|b| b.iter().collect::<Vec<_>>())
            .collect();
        if !visible.is_empty() {
            views.entry(id.to_owned()).or_default().1.visible_series.insert(format!("/{overridden}"), visible);
        }
    }
}

/// Collects what a static chunk of `entity` holds: its components, series names and single-precision values.
fn read_static(chunk: &re_chunk::Chunk, entity: &str, summary: &mut RrdSummary) {
    use re_chunk::external::arrow::array::AsArray as _;
    use re_chunk::external::arrow::datatypes::{DataType, Float32Type};
    for descriptor in chunk.component_descriptors() {
        let component = descriptor.component.to_string();
        let components = summary.static_components.entry(entity.to_owned()).or_default();
        if !components.contains(&component) {
            components.push(component.clone());
        }
        if component.ends_with(":names") && component.starts_with("Series") {
            let names: Vec<String> =
                chunk.iter_slices::<String>(descriptor.component).flatten().map(|s| s.to_string()).collect();
            summary.series_names.insert(entity.to_owned(), names);
        }
        let Some(values) = chunk.raw_component_array(descriptor.component) else { continue };
        // Scalars (lengths, radii) or fixed-size vectors of them (translations, scales), flattened.
        let values = match values.data_type() {
            DataType::FixedSizeList(_, _) => values.as_fixed_size_list().values(),
            _ => values,
        };
        if values.data_type() == &DataType::Float32 {
            let floats = values.as_primitive::<Float32Type>();
            summary
                .static_values
                .insert((entity.to_owned(), component), floats.iter().map(|v| v.unwrap_or(f32::NAN)).collect());
        }
    }
}

/// Frames per interface and CAN id, with rates.
pub fn frame_statistics(records: &[LogRecord]) -> String {
    let mut per_id: BTreeMap<(String, String), (usize, f64, f64)> = BTreeMap::new();
    for r in records {
        let id = match r.frame.id() {
            CanId::Standard(id) => format!("{id:03X}"),
            CanId::Extended(id) => format!("{id:08X}"),
        };
        let t = r.time.as_secs_f64();
        let e = per_id.entry((r.ifname.clone(), id)).or_insert((0, t, t));
        e.0 += 1;
        e.1 = e.1.min(t);
        e.2 = e.2.max(t);
    }
    let span =
        records.last().map_or(0.0, |r| r.time.as_secs_f64()) - records.first().map_or(0.0, |r| r.time.as_secs_f64());
    let mut s = format!(
        "{} frames over {:.3} s\n{:<8} {:>9} {:>8} {:>10}\n",
        records.len(),
        span,
        "iface",
        "id",
        "frames",
        "rate[Hz]"
    );
    for ((iface, id), (n, t0, t1)) in &per_id {
        let rate = if t1 > t0 { (*n as f64 - 1.0) / (t1 - t0) } else { 0.0 };
        s.push_str(&format!("{iface:<8} {id:>9} {n:>8} {rate:>10.1}\n"));
    }
    s
}

/// Decoded replies of one joint (link side).
#[derive(Debug, Default, Clone)]
pub struct JointSeries {
    /// Joint name.
    pub joint: String,
    /// Log time of each reply [s].
    pub time: Vec<f64>,
    /// Position [rad].
    pub q: Vec<f64>,
    /// Velocity [rad/s] (MIT replies; NaN where not in the frame).
    pub qd: Vec<f64>,
    /// Torque [Nm] (MIT replies; NaN where not in the frame).
    pub tau: Vec<f64>,
}

/// Decodes MIT replies and CiA 402 TPDO1 frames per joint: a frame is a joint's when it came on the joint's bus
/// (the interface name as in the configuration) from its node; MIT torque fields are read as `torque_field` says.
pub fn decode_joints(hw: &HardwareConfig, records: &[LogRecord]) -> Vec<JointSeries> {
    let mut out: Vec<JointSeries> =
        hw.can.joints.iter().map(|j| JointSeries { joint: j.name.clone(), ..Default::default() }).collect();
    for r in records {
        for (k, j) in hw.can.joints.iter().enumerate() {
            // A frame belongs to a joint by interface AND node: two buses may use the same node ids.
            if r.ifname != j.bus {
                continue;
            }
            let map = j.mapping();
            let t = r.time.as_secs_f64();
            match j.protocol {
                DriveProtocol::Mit => {
                    let reply_id = j.mit.map_or(0, |m| m.reply_can_id);
                    let (Some(ranges), CanId::Standard(id)) = (j.mit_ranges(), r.frame.id()) else { continue };
                    let data = r.frame.data();
                    if id != reply_id || data.first() != Some(&j.node_id) {
                        continue;
                    }
                    if let Some(reply) = plexo_can::mit::MitReply::decode(data, &ranges) {
                        // As the live driver: a drive that reports current [A] is scaled by the torque constant.
                        let drive_torque = match j.mit.map(|m| m.torque_field).unwrap_or_default() {
                            plexo_can::MitTorqueField::Torque => reply.torque,
                            plexo_can::MitTorqueField::Current => reply.torque * j.torque_constant,
                        };
                        let s = &mut out[k];
                        s.time.push(t);
                        s.q.push(map.link_position(reply.position));
                        s.qd.push(map.link_velocity(reply.velocity));
                        s.tau.push(map.link_torque(drive_torque));
                    }
                }
                DriveProtocol::Cia402 => {
                    if let Some(pdo) = plexo_can::canopen::Tpdo1::decode(&r.frame, j.node_id) {
                        let counts = j.cia402.unwrap_or_default().encoder_counts_per_rev.max(1);
                        let drive = f64::from(pdo.position) / f64::from(counts) * std::f64::consts::TAU;
                        let s = &mut out[k];
                        s.time.push(t);
                        s.q.push(map.link_position(drive));
                        s.qd.push(f64::NAN);
                        s.tau.push(f64::NAN);
                    }
                }
            }
        }
    }
    out
}

fn save_series(out: &Path, source: &Path, series: &[JointSeries]) -> Result<(), AppError> {
    let rr = |e: &dyn std::fmt::Display| AppError::Telemetry(format!("{}: {e}", out.display()));
    let rec = rerun::RecordingStreamBuilder::new("plexo-replay")
        .recording_id(source.display().to_string())
        .save(crate::files::partial_path(out))
        .map_err(|e| rr(&e))?;
    for s in series {
        for (name, values) in entities::REPLAY_SERIES.into_iter().zip([&s.q, &s.qd, &s.tau]) {
            let idx = [rerun::TimeColumn::new_duration_secs(entities::CAN_TIME, s.time.iter().copied())];
            let column = rerun::Scalars::new(values.iter().copied()).columns_of_unit_batches().map_err(|e| rr(&e))?;
            rec.send_columns(entities::joint_series(&s.joint, name), idx, column).map_err(|e| rr(&e))?;
        }
    }
    rec.flush_blocking().map_err(|e| rr(&e))?;
    drop(rec);
    crate::files::commit(&crate::files::partial_path(out), out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexo_can::CanFrame;

    #[test]
    fn replies_are_attributed_by_interface_and_node_and_current_is_scaled_to_torque() {
        // Issue 13 §5: MIT replies of both buses were merged into every joint (twice the real count) and
        // `torque_field = "current"` was ignored.
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs/plexo-arm4-hardware.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace("node_id = 3", "node_id = 1")
            .replace("node_id = 4", "node_id = 2");
        let mut hw = HardwareConfig::from_toml(&text, &path).unwrap();
        let elbow = 3;
        assert_eq!((hw.can.joints[elbow].bus.as_str(), hw.can.joints[elbow].node_id), ("can1", 2));
        hw.can.joints[elbow].mit.as_mut().unwrap().torque_field = plexo_can::MitTorqueField::Current;
        hw.can.joints[elbow].torque_constant = 2.0;
        let reply = |node: u8| CanFrame::standard(0x000, &[node, 0x90, 0x00, 0x80, 0x0C, 0x00, 40, 0]).unwrap();
        let record = |ms: u64, ifname: &str, node: u8| LogRecord {
            time: std::time::Duration::from_millis(ms),
            ifname: ifname.into(),
            frame: reply(node),
        };
        // Each node id answers on both buses, 3 times on can0 and 2 times on can1.
        let mut records = Vec::new();
        for k in 0..3 {
            records.push(record(k, "can0", 1));
            records.push(record(k, "can0", 2));
            if k < 2 {
                records.push(record(k, "can1", 1));
                records.push(record(k, "can1", 2));
            }
        }
        let series = decode_joints(&hw, &records);
        let counts: Vec<usize> = series.iter().map(|s| s.time.len()).collect();
        assert_eq!(counts, vec![3, 3, 2, 2], "one reply per cycle on the joint's own bus");
        let j = &hw.can.joints[elbow];
        let decoded = plexo_can::mit::MitReply::decode(reply(2).data(), &j.mit_ranges().unwrap()).unwrap();
        let expected = j.mapping().link_torque(decoded.torque * 2.0);
        assert!(decoded.torque.abs() > 0.1, "the test needs a non-zero torque field");
        assert!((series[elbow].tau[0] - expected).abs() < 1e-9, "{} vs {expected}", series[elbow].tau[0]);
    }
}
