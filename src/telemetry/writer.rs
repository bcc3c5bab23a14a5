//! The Rerun writer: the last stage of the telemetry pipeline, on its own thread. It names the recording, logs
//! its properties and its blueprint ([`super::layout`]), computes link poses by forward kinematics on its own
//! `Model`/`Data`, batches the time series at the telemetry rate and sends them to Rerun in columns (one entity
//! per quantity with one instance per joint, one chunk per entity and second of session, the session time as the
//! only timeline), and logs events as text. Paths: [`super::entities`].
//!
//! Size (issue 14): the recording's bytes are mostly per-row overhead (row id, time, list offset), so the joint
//! series share rows (4 joints per row instead of 4 entities) and carry one timeline; see BENCHMARKS.md.

use std::path::PathBuf;
use std::sync::Arc;

use crossbeam::channel::Receiver;
use plexo_controller::{SafetyOutcome, StopReason};
use plexo_kinematics::{Data, FrameId, Model};
use rerun::blueprint::BlueprintActivation;

use super::config::{TelemetryConfig, TelemetryReport};
use super::entities;
use super::live::{LIVE_QUEUE_MESSAGES, LiveSink, LiveStatus};
use super::messages::{Event, Message, Sample};
use crate::AppError;

/// The recording stream and the live viewers' status ([`super::live`]: one per live sink, with its address).
pub(super) type OpenStream = (rerun::RecordingStream, Vec<(String, Arc<LiveStatus>)>);

/// Opens the Rerun recording stream on the configured sinks (a disabled stream without any). The file sink is
/// written directly; each viewer (`--spawn`, `--connect`) sits behind a [`LiveSink`] so that it can never hold
/// the file up. A viewer that cannot be spawned costs the live stream only (one WARN). Not real-time safe.
pub(super) fn open_stream(config: &TelemetryConfig) -> Result<OpenStream, AppError> {
    let err = |what: &str, e: &dyn std::fmt::Display| AppError::Telemetry(format!("{what}: {e}"));
    let builder = rerun::RecordingStreamBuilder::new("plexo")
        .recording_id(config.session_name.clone())
        .recording_name(config.session_name.clone());
    let mut viewers: Vec<String> = Vec::new();
    if config.sinks.spawn {
        match super::live::spawn_viewer(None) {
            Ok(url) => viewers.push(url),
            Err(why) => tracing::warn!(
                "--spawn: {why}; the session goes on without a live viewer (the recording file is not affected)"
            ),
        }
    }
    if let Some(url) = &config.sinks.connect {
        // A malformed address is the user's error, refused before the session starts.
        url.parse::<rerun::external::re_uri::ProxyUri>().map_err(|e| err(&format!("--connect {url}"), &e))?;
        viewers.push(url.clone());
    }
    if config.sinks.save.is_none() && viewers.is_empty() {
        // No sink: record nothing, but keep the same code path.
        return Ok((rerun::RecordingStream::disabled(), Vec::new()));
    }
    let rec = builder.buffered().map_err(|e| err("cannot create the recording", &e))?;
    let mut sinks: Vec<Box<dyn rerun::sink::LogSink>> = Vec::new();
    if let Some(path) = &config.sinks.save {
        // Written beside the target and renamed over it when complete (crate::files).
        crate::files::create_parent(path)?;
        let partial = crate::files::partial_path(path);
        let sink = rerun::sink::FileSink::new(&partial)
            .map_err(|e| err(&format!("cannot write {}", partial.display()), &e))?;
        sinks.push(Box::new(sink));
    }
    let mut live = Vec::new();
    for url in viewers {
        let uri = url.parse::<rerun::external::re_uri::ProxyUri>().map_err(|e| err(&format!("viewer {url}"), &e))?;
        let status = Arc::new(LiveStatus::default());
        let sink = LiveSink::new(rerun::sink::GrpcSink::new(uri), url.clone(), LIVE_QUEUE_MESSAGES, status.clone())
            .map_err(|e| err("cannot start the live viewer's thread", &e))?;
        sinks.push(Box::new(sink));
        live.push((url, status));
    }
    rec.set_sinks(sinks);
    Ok((rec, live))
}

/// The joint quantities every sample carries, in the order of [`Batch::joints`]: measured and reference
/// position (stored in degrees), commanded and estimated patient torque [Nm], stiffness [Nm/rad].
const QUANTITIES: [&str; 5] =
    [entities::Q, entities::Q_REF, entities::TAU_CMD, entities::TAU_PATIENT_EST, entities::STIFFNESS];
/// Session time covered by one chunk of time series with a live viewer [s]: its plots advance in steps of this.
const LIVE_BATCH_SECONDS: f64 = 1.0;
/// Session time covered by one chunk of time series in a recording without a live viewer [s]: each chunk costs
/// ≈ 1.2 kB (schema, metadata, measured), 5 MB per default session at one chunk per second and entity.
const FILE_BATCH_SECONDS: f64 = 5.0;

/// Time-series columns batched before sending: one chunk per quantity and batch, one row per logged sample, one
/// instance per joint (joint-major within a row).
struct Batch {
    dof: usize,
    /// Rows per batch.
    capacity: usize,
    times: Vec<f64>,
    joints: [Vec<f64>; QUANTITIES.len()],
    true_times: Vec<f64>,
    true_torque: Vec<f64>,
    assistance: Vec<f64>,
    effort_share: Vec<f64>,
}

impl Batch {
    fn new(dof: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            dof,
            capacity,
            times: Vec::with_capacity(capacity),
            joints: std::array::from_fn(|_| Vec::with_capacity(capacity * dof)),
            true_times: Vec::with_capacity(capacity),
            true_torque: Vec::with_capacity(capacity * dof),
            assistance: Vec::with_capacity(capacity),
            effort_share: Vec::with_capacity(capacity),
        }
    }

    fn push(&mut self, s: &Sample) {
        self.times.push(s.time);
        let n = self.dof;
        // Exactly `dof` values per row (NaN where a sample would hold fewer), so that rows stay aligned.
        fn row(v: &[f64], n: usize) -> impl Iterator<Item = f64> + '_ {
            v.iter().copied().chain(std::iter::repeat(f64::NAN)).take(n)
        }
        let values = [&s.q[..], &s.q_ref[..], &s.tau_cmd[..], &s.tau_patient_est[..], &s.stiffness[..]];
        for (k, (column, values)) in self.joints.iter_mut().zip(values).enumerate() {
            let degrees = k < 2; // q, q_ref
            column.extend(row(values, n).map(|v| if degrees { v.to_degrees() } else { v }));
        }
        if let Some(t) = &s.tau_patient_true {
            self.true_times.push(s.time);
            self.true_torque.extend(row(t, n));
        }
        self.assistance.push(s.assistance);
        self.effort_share.push(s.patient_effort_share);
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    fn clear(&mut self) {
        self.times.clear();
        self.joints.iter_mut().for_each(Vec::clear);
        self.true_times.clear();
        self.true_torque.clear();
        self.assistance.clear();
        self.effort_share.clear();
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    rec: rerun::RecordingStream,
    model: Model,
    data: Data,
    links: Vec<(String, FrameId)>,
    handle: Option<FrameId>,
    block_names: Vec<String>,
    block_targets: Vec<Vec<[f64; 3]>>,
    pose_every: u64,
    /// Every how many ticks a sample becomes a time-series row.
    series_every: u64,
    batch: Batch,
    hand_path: Vec<[f32; 3]>,
    report: TelemetryReport,
    save: Option<PathBuf>,
}

fn rr_err(e: impl std::fmt::Display) -> AppError {
    AppError::Telemetry(e.to_string())
}

/// Every how many ticks of a loop with `period` [s] a time series at `rate` [Hz] takes a sample: the nearest
/// whole number, at least 1 (every tick at or above the loop's rate; also for a rate that is not a positive
/// finite number, which the command line refuses).
pub(super) fn series_every(period: f64, rate: f64) -> u64 {
    let every = 1.0 / (period * rate);
    if every.is_finite() && every > 1.0 { every.round() as u64 } else { 1 }
}

impl Writer {
    pub(super) fn new(config: &TelemetryConfig, rec: rerun::RecordingStream) -> Result<Self, AppError> {
        let data = Data::new(&config.model);
        let urdf = urdf_rs::read_from_string(&config.urdf).map_err(|e| AppError::Telemetry(format!("urdf: {e}")))?;
        let joint_names = config.model.joints().iter().map(|j| j.name.clone()).collect::<Vec<_>>();
        let mut links = Vec::new();
        if rec.is_enabled() {
            // Every row carries the session time only: no wall-clock `log_time` column.
            rec.set_log_time_enabled(false);
            log_recording_info(&rec, config)?;
            super::layout::blueprint(&joint_names).send(&rec, BlueprintActivation::default()).map_err(rr_err)?;
            log_series_styles(&rec, &joint_names)?;
            rec.log_static(entities::WORLD, &rerun::ViewCoordinates::RIGHT_HAND_Z_UP()).map_err(rr_err)?;
        }
        for link in &urdf.links {
            let Some(frame) = config.model.frame_id(&link.name) else { continue };
            if rec.is_enabled() {
                log_link_geometry(&rec, &link.name, &link.visual)?;
            }
            links.push((link.name.clone(), frame));
        }
        let handle = config.model.frame_id(&config.handle_frame);
        let dof = config.model.nv();
        let series_every = series_every(config.period, config.telemetry_rate);
        let series_rate = 1.0 / (config.period * series_every as f64);
        let live = config.sinks.spawn || config.sinks.connect.is_some();
        let rows = (if live { LIVE_BATCH_SECONDS } else { FILE_BATCH_SECONDS } * series_rate).round() as usize;
        Ok(Self {
            rec,
            data,
            links,
            handle,
            block_names: config.blocks.iter().map(|b| b.name.clone()).collect(),
            block_targets: config.blocks.iter().map(|b| b.targets.clone()).collect(),
            pose_every: config.pose_every.max(1),
            series_every,
            batch: Batch::new(dof, rows),
            hand_path: Vec::new(),
            report: TelemetryReport { series_rate, ..TelemetryReport::default() },
            save: config.sinks.save.clone(),
            model: config.model.clone(),
        })
    }

    /// Logs every message until the analysis ends, then flushes the sinks. Not real-time safe.
    pub(super) fn run(mut self, rx: &Receiver<Message>) -> Result<TelemetryReport, AppError> {
        let mut busy = std::time::Duration::ZERO;
        // The analysis holds the only sender: the channel disconnects once it has ended and all is received.
        while let Ok(message) = rx.recv() {
            let start = std::time::Instant::now();
            match message {
                Message::Sample(s) => self.on_sample(&s)?,
                Message::Event(e) => self.on_event(&e)?,
            }
            busy += start.elapsed();
        }
        let start = std::time::Instant::now();
        if self.rec.is_enabled() {
            self.flush_batch()?;
            self.rec.flush_blocking().map_err(rr_err)?;
        }
        let (mut report, save) = (std::mem::take(&mut self.report), self.save.take());
        // Dropping the stream closes the file sink; then the complete recording replaces the target.
        drop(self);
        if let Some(path) = &save {
            crate::files::commit(&crate::files::partial_path(path), path)?;
        }
        report.write_seconds = (busy + start.elapsed()).as_secs_f64();
        report.saved_to = save;
        Ok(report)
    }

    fn set_time(&self, time: f64) {
        self.rec.set_duration_secs(entities::SIM_TIME, time);
    }

    fn on_sample(&mut self, s: &Sample) -> Result<(), AppError> {
        self.report.samples += 1;
        if !self.rec.is_enabled() {
            return Ok(()); // no sink: count only (a disabled stream warns on every kind of call)
        }
        if s.tick.is_multiple_of(self.series_every) {
            self.batch.push(s);
            self.report.series_rows += 1;
            if self.batch.is_full() {
                self.flush_batch()?;
            }
        }
        if s.tick.is_multiple_of(self.pose_every) && s.q.len() == self.model.nv() {
            self.set_time(s.time);
            plexo_kinematics::forward_kinematics(&self.model, &mut self.data, &s.q);
            for (name, frame) in &self.links {
                let world_T_link = &self.data.world_T_frame[frame.0];
                self.rec.log(entities::robot_link(name), &to_rr_transform(world_T_link)).map_err(rr_err)?;
            }
            if let Some(handle) = self.handle {
                let p = self.data.world_T_frame[handle.0].translation.vector;
                let p = [p.x as f32, p.y as f32, p.z as f32];
                self.hand_path.push(p);
                self.rec
                    .log(entities::HAND, &rerun::Points3D::new([p]).with_radii([0.012]).with_colors([[40, 120, 255]]))
                    .map_err(rr_err)?;
            }
            if let Some(t) = s.target {
                self.rec
                    .log(
                        entities::TARGET,
                        &rerun::Points3D::new([[t[0] as f32, t[1] as f32, t[2] as f32]])
                            .with_radii([0.02])
                            .with_colors([[255, 160, 0]]),
                    )
                    .map_err(rr_err)?;
            }
        }
        Ok(())
    }

    /// Sends the batched time series: one chunk per entity, `dof` scalars per row, the session time as the only
    /// timeline.
    fn flush_batch(&mut self) -> Result<(), AppError> {
        let b = &self.batch;
        if b.len() == 0 {
            return Ok(());
        }
        let send = |path: &str, times: &[f64], values: &[f64], per_row: usize| -> Result<(), AppError> {
            let index = [rerun::TimeColumn::new_duration_secs(entities::SIM_TIME, times.iter().copied())];
            let column = rerun::Scalars::new(values.iter().copied())
                .columns(std::iter::repeat_n(per_row, times.len()))
                .map_err(rr_err)?;
            self.rec.send_columns(path, index, column).map_err(rr_err)
        };
        for (quantity, values) in QUANTITIES.iter().zip(&b.joints) {
            send(&entities::joints(quantity), &b.times, values, b.dof)?;
        }
        if !b.true_times.is_empty() {
            send(&entities::joints(entities::TAU_PATIENT_TRUE), &b.true_times, &b.true_torque, b.dof)?;
        }
        send(entities::ASSISTANCE, &b.times, &b.assistance, 1)?;
        send(entities::PATIENT_EFFORT_SHARE, &b.times, &b.effort_share, 1)?;
        self.batch.clear();
        Ok(())
    }

    fn block_name(&self, block: usize) -> &str {
        self.block_names.get(block).map(String::as_str).unwrap_or("?")
    }

    fn on_event(&mut self, e: &Event) -> Result<(), AppError> {
        self.report.events += 1;
        if !self.rec.is_enabled() {
            return Ok(());
        }
        let (text, level, time) = match *e {
            Event::BlockStart { block, time, .. } => {
                self.set_time(time);
                let name = self.block_name(block).to_owned();
                tracing::info!(block, name, "block starts");
                self.rec
                    .log(entities::ANNOTATIONS, &rerun::TextLog::new(format!("block {block} '{name}' starts")))
                    .map_err(rr_err)?;
                self.log_targets(block, 0)?;
                (format!("block {block} '{name}' starts"), rerun::TextLogLevel::INFO, time)
            }
            Event::TrialStart { block, trial, target, time, .. } => {
                self.hand_path.clear();
                self.set_time(time);
                self.log_targets(block, trial + 1)?;
                (
                    format!(
                        "block {block} '{}' trial {trial} starts: target ({:.3}, {:.3}, {:.3}) m",
                        self.block_name(block),
                        target[0],
                        target[1],
                        target[2]
                    ),
                    rerun::TextLogLevel::DEBUG,
                    time,
                )
            }
            Event::TrialEnd { block, trial, success, final_error_m, duration, peaks, sparc, time, .. } => {
                self.set_time(time);
                if self.hand_path.len() >= 2 {
                    let color = if success { [60, 200, 90] } else { [220, 60, 60] };
                    self.rec
                        .log(
                            entities::HAND_PATH,
                            &rerun::LineStrips3D::new([self.hand_path.clone()])
                                .with_colors([color])
                                .with_radii([0.003]),
                        )
                        .map_err(rr_err)?;
                }
                self.rec.log(entities::TARGET, &rerun::Clear::flat()).map_err(rr_err)?;
                // One point per trial on the session's plots: outcome, final error, smoothness.
                let per_trial = [f64::from(u8::from(success)), final_error_m * 1000.0, sparc];
                for ((path, _), value) in entities::TRIAL_SERIES.iter().zip(per_trial) {
                    self.rec.log(*path, &rerun::Scalars::single(value)).map_err(rr_err)?;
                }
                tracing::debug!(
                    block,
                    trial,
                    success,
                    final_error_mm = final_error_m * 1000.0,
                    duration,
                    peaks,
                    sparc,
                    "trial ends"
                );
                (
                    format!(
                        "block {block} trial {trial} {}: final error {:.1} mm after {duration:.2} s, {peaks} speed peak(s), SPARC {sparc:.2}",
                        if success { "reached" } else { "timed out" },
                        final_error_m * 1000.0
                    ),
                    if success { rerun::TextLogLevel::INFO } else { rerun::TextLogLevel::WARN },
                    time,
                )
            }
            Event::BlockEnd { block, trials, successes, time, .. } => {
                self.set_time(time);
                let name = self.block_name(block).to_owned();
                let text = format!("block {block} '{name}' ends: {successes}/{trials} reached");
                tracing::info!(block, name, trials, successes, "block ends");
                self.rec.log(entities::ANNOTATIONS, &rerun::TextLog::new(text.clone())).map_err(rr_err)?;
                self.rec.log(entities::TARGETS, &rerun::Clear::flat()).map_err(rr_err)?;
                (text, rerun::TextLogLevel::INFO, time)
            }
            Event::Safety { outcome, time, .. } => {
                let level = match outcome {
                    SafetyOutcome::Disabled | SafetyOutcome::Enabling { .. } | SafetyOutcome::Active { .. } => {
                        tracing::info!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::INFO
                    }
                    SafetyOutcome::CompliantRelease { .. } => {
                        tracing::warn!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::WARN
                    }
                    SafetyOutcome::SafeStop { reason: StopReason::OperatorStop, .. } => {
                        tracing::info!(?outcome, "safety supervisor: controlled stop");
                        rerun::TextLogLevel::INFO
                    }
                    SafetyOutcome::SafeStop { .. } | SafetyOutcome::Fault { .. } => {
                        tracing::error!(?outcome, "safety supervisor");
                        rerun::TextLogLevel::ERROR
                    }
                };
                (format!("safety: {outcome:?}"), level, time)
            }
        };
        self.set_time(time);
        self.rec.log(entities::EVENTS, &rerun::TextLog::new(text).with_level(level)).map_err(rr_err)?;
        Ok(())
    }

    /// Logs the targets of `block` from trial `from` on as `world/targets` (the upcoming ones).
    fn log_targets(&self, block: usize, from: usize) -> Result<(), AppError> {
        let Some(targets) = self.block_targets.get(block) else { return Ok(()) };
        let upcoming: Vec<[f32; 3]> =
            targets.iter().skip(from).take(8).map(|t| [t[0] as f32, t[1] as f32, t[2] as f32]).collect();
        self.rec
            .log(entities::TARGETS, &rerun::Points3D::new(upcoming).with_radii([0.012]).with_colors([[120, 120, 140]]))
            .map_err(rr_err)
    }
}

/// Property group of a session recording (`__properties/session` in the recording).
pub const SESSION_PROPERTIES: &str = "session";

/// Logs the recording's properties: robot, protocol, patient (pseudonymous id), controller, seed, software
/// version, control and time-series rates.
fn log_recording_info(rec: &rerun::RecordingStream, config: &TelemetryConfig) -> Result<(), AppError> {
    use rerun::components::Text;
    let info = &config.info;
    let seed = info.seed.map_or_else(|| "none (hardware)".to_owned(), |s| s.to_string());
    let rate = 1.0 / (config.period * series_every(config.period, config.telemetry_rate) as f64);
    let fields = [
        ("robot", info.robot.clone()),
        ("protocol", info.protocol.clone()),
        ("patient", info.patient.clone()),
        ("controller", info.controller.clone()),
        ("seed", seed),
        ("software", format!("plexo {}", env!("CARGO_PKG_VERSION"))),
        ("control_rate_hz", format!("{:.0}", 1.0 / config.period)),
        ("telemetry_rate_hz", format!("{rate:.0}")),
    ];
    let values = fields
        .into_iter()
        .fold(rerun::AnyValues::default(), |v, (field, text)| v.with_component::<Text>(field, [text]));
    rec.send_property(SESSION_PROPERTIES, &values).map_err(rr_err)?;
    // Also in the data stream, so that the file carries it whichever way the viewer reads the store info.
    rec.send_recording_name(config.session_name.clone()).map_err(rr_err)
}

/// Logs the static style of every time series: each instance named with its joint, quantity and unit.
fn log_series_styles(rec: &rerun::RecordingStream, joints: &[String]) -> Result<(), AppError> {
    for series in entities::JOINT_SERIES {
        let unit = entities::series_unit(series);
        let names = joints.iter().map(|j| format!("{j} {series} [{unit}]"));
        let lines = rerun::SeriesLines::new()
            .with_names(names)
            .with_colors(std::iter::repeat_n(super::layout::series_color(series), joints.len()));
        rec.log_static(entities::joints(series), &lines).map_err(rr_err)?;
    }
    for (path, name) in
        [(entities::ASSISTANCE, "assistance [Nm]"), (entities::PATIENT_EFFORT_SHARE, "patient effort share [0-1]")]
    {
        let lines = rerun::SeriesLines::new().with_names([name]).with_colors([super::layout::series_color(path)]);
        rec.log_static(path, &lines).map_err(rr_err)?;
    }
    for (path, name) in entities::TRIAL_SERIES {
        // Markers, not lines: each trial is one outcome.
        let points = rerun::SeriesPoints::new().with_names([name]).with_colors([super::layout::series_color(path)]);
        rec.log_static(path, &points).map_err(rr_err)?;
    }
    Ok(())
}

fn to_rr_transform(iso: &nalgebra::Isometry3<f64>) -> rerun::Transform3D {
    let t = iso.translation.vector;
    let q = iso.rotation.coords; // (i, j, k, w)
    rerun::Transform3D::from_translation_rotation(
        [t.x as f32, t.y as f32, t.z as f32],
        rerun::Quaternion::from_xyzw([q.x as f32, q.y as f32, q.z as f32, q.w as f32]),
    )
}

fn urdf_pose_to_transform(pose: &urdf_rs::Pose) -> rerun::Transform3D {
    let [x, y, z] = pose.xyz.0;
    let [r, p, yw] = pose.rpy.0;
    let iso = nalgebra::Isometry3::from_parts(
        nalgebra::Translation3::new(x, y, z),
        nalgebra::UnitQuaternion::from_euler_angles(r, p, yw),
    );
    to_rr_transform(&iso)
}

/// Logs each visual of a link once (static) under `world/robot/<link>/visual_<k>`, in the link frame.
fn log_link_geometry(rec: &rerun::RecordingStream, link: &str, visuals: &[urdf_rs::Visual]) -> Result<(), AppError> {
    const COLOR: [u8; 3] = [170, 180, 195];
    for (k, visual) in visuals.iter().enumerate() {
        let path = entities::link_visual(link, k);
        rec.log_static(path.as_str(), &urdf_pose_to_transform(&visual.origin)).map_err(rr_err)?;
        match &visual.geometry {
            urdf_rs::Geometry::Box { size } => {
                let [x, y, z] = size.0;
                rec.log_static(
                    path.as_str(),
                    &rerun::Boxes3D::from_sizes([[x as f32, y as f32, z as f32]]).with_colors([COLOR]),
                )
            }
            urdf_rs::Geometry::Cylinder { radius, length } => rec.log_static(
                path.as_str(),
                &rerun::Cylinders3D::from_lengths_and_radii([*length as f32], [*radius as f32]).with_colors([COLOR]),
            ),
            urdf_rs::Geometry::Capsule { radius, length } => rec.log_static(
                path.as_str(),
                // URDF capsules are centred on the origin along z; Rerun's start at the origin.
                &rerun::Capsules3D::from_lengths_and_radii([*length as f32], [*radius as f32])
                    .with_translations([[0.0, 0.0, -(*length as f32) / 2.0]])
                    .with_colors([COLOR]),
            ),
            urdf_rs::Geometry::Sphere { radius } => {
                rec.log_static(path.as_str(), &rerun::Ellipsoids3D::from_radii([*radius as f32]).with_colors([COLOR]))
            }
            urdf_rs::Geometry::Mesh { filename, .. } => {
                tracing::warn!(link, filename, "mesh visuals are not drawn; use primitives in the URDF");
                Ok(())
            }
        }
        .map_err(rr_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::series_every;

    #[test]
    fn the_series_take_every_nth_tick_rounded_never_less_than_every_tick() {
        assert_eq!(series_every(0.001, 250.0), 4);
        assert_eq!(series_every(0.001, 1000.0), 1);
        assert_eq!(series_every(0.001, 300.0), 3, "333 Hz, the nearest divisor of 1 kHz");
        assert_eq!(series_every(0.001, 5000.0), 1, "above the loop's rate: every tick");
        assert_eq!(series_every(0.002, 250.0), 2);
        assert_eq!(series_every(0.001, 0.0), 1, "a rate the command line refuses is not a division by zero");
    }
}
