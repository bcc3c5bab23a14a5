//! The Rerun writer: the last stage of the telemetry pipeline, on its own thread. It names the recording, logs
//! its properties and its blueprint ([`super::layout`]), computes link poses by forward kinematics on its own
//! `Model`/`Data`, batches the time series at the telemetry rate and sends them to Rerun in columns (one entity
//! per plot group with its quantities as instances, one chunk per entity and 5 s of session, the session time as
//! the only timeline), and logs events as text. Paths: [`super::entities`].
//!
//! Static once: the fixed base's links, the URDF's visuals (primitives and meshes), the patient's arm (capsules in
//! the frames of the links it is strapped to) and the series' styles. Per trial: its hand path (one entity each)
//! and its outcome points; per block: a marker bar from its start to its end.
//!
//! Size (issue 14): a row costs ≈ 14 bytes of row id, time and list offset in the file whatever it holds, so the
//! series of one plot group share rows (`joints/torque`: 3 torques × 4 joints per row instead of 12 entities) and
//! carry one timeline; rows inside a run of unchanged values are left out ([`rows_to_send`]) and values are put
//! on a binary grid far below what a plot shows ([`quantise`]: [`ANGLE_GRID`], [`TORQUE_GRID`], [`SHARE_GRID`]),
//! whose zero low bytes the file's LZ4 compresses; the 3D view is logged at its own, lower rate. Figures in
//! BENCHMARKS.md.

use std::path::{Path, PathBuf};
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

/// Session time covered by one chunk of time series with a live viewer [s]: its plots advance in steps of this.
const LIVE_BATCH_SECONDS: f64 = 1.0;
/// Session time covered by one chunk of time series in a recording without a live viewer [s]: each chunk costs
/// ≈ 1.2 kB (schema, metadata, measured), 5 MB per default session at one chunk per second and entity.
const FILE_BATCH_SECONDS: f64 = 5.0;

/// Every how many ticks a trial's drawn hand path takes a point (100 Hz on a 1 kHz loop), whatever the 3D view's
/// rate (`--pose-every`): a reach's path stays smooth when the link poses are logged less often.
const HAND_PATH_EVERY: u64 = 10;

/// Time-series columns batched before sending: one chunk per entity of [`entities::SERIES_GROUPS`] and batch, one
/// row per logged sample, the group's quantities as instances (quantity-major within a row). Each row holds
/// exactly its group's instances (NaN where a sample holds fewer joints), so that rows stay aligned.
struct Batch {
    dof: usize,
    /// Rows per batch.
    capacity: usize,
    times: Vec<f64>,
    /// `q`, `q_ref` [deg]: 2 × dof per row.
    position: Vec<f64>,
    /// `tau_cmd`, `tau_patient_est`, `tau_patient_true` [Nm]: 3 × dof per row (NaN where a sample has no true
    /// torque).
    torque: Vec<f64>,
    /// Some row of the batch holds the true patient torque (simulation); else its instances are not sent.
    has_true_torque: bool,
    /// [Nm/rad]: dof per row.
    stiffness: Vec<f64>,
    /// assistance [Nm], patient effort share [0-1]: 2 per row.
    effort: Vec<f64>,
}

impl Batch {
    fn new(dof: usize, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let column = |group: entities::SeriesGroup| Vec::with_capacity(capacity * group.instances(dof));
        Self {
            dof,
            capacity,
            times: Vec::with_capacity(capacity),
            position: column(entities::POSITION),
            torque: column(entities::TORQUE),
            has_true_torque: false,
            stiffness: column(entities::STIFFNESS_GROUP),
            effort: column(entities::EFFORT),
        }
    }

    fn push(&mut self, s: &Sample) {
        self.times.push(s.time);
        let n = self.dof;
        // Exactly `dof` values per quantity and row (NaN where a sample would hold fewer).
        fn row(v: &[f64], n: usize) -> impl Iterator<Item = f64> + '_ {
            v.iter().copied().chain(std::iter::repeat(f64::NAN)).take(n)
        }
        for values in [&s.q[..], &s.q_ref[..]] {
            self.position.extend(row(values, n).map(|v| quantise(v.to_degrees(), ANGLE_GRID)));
        }
        for values in [&s.tau_cmd[..], &s.tau_patient_est[..], s.tau_patient_true.as_ref().map_or(&[][..], |t| &t[..])]
        {
            self.torque.extend(row(values, n).map(|v| quantise(v, TORQUE_GRID)));
        }
        self.has_true_torque |= s.tau_patient_true.is_some();
        self.stiffness.extend(row(&s.stiffness, n).map(single_precision));
        self.effort.extend([quantise(s.assistance, TORQUE_GRID), quantise(s.patient_effort_share, SHARE_GRID)]);
    }

    fn len(&self) -> usize {
        self.times.len()
    }

    fn is_full(&self) -> bool {
        self.len() >= self.capacity
    }

    fn clear(&mut self) {
        self.times.clear();
        self.position.clear();
        self.torque.clear();
        self.has_true_torque = false;
        self.stiffness.clear();
        self.effort.clear();
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    rec: rerun::RecordingStream,
    model: Model,
    data: Data,
    /// The links that move with the joints, logged every `pose_every` ticks (links on the fixed base are logged
    /// once, static).
    moving_links: Vec<(String, FrameId)>,
    handle: Option<FrameId>,
    block_names: Vec<String>,
    block_targets: Vec<Vec<[f64; 3]>>,
    pose_every: u64,
    /// Every how many ticks a sample becomes a time-series row.
    series_every: u64,
    batch: Batch,
    /// The current trial's hand path, logged as `world/hand_paths/<block>/<trial>` at its end.
    hand_path: Vec<[f32; 3]>,
    /// The block whose marker is open (started, not yet ended).
    open_block: Option<usize>,
    /// Session time of the last message [s].
    last_time: f64,
    report: TelemetryReport,
    save: Option<PathBuf>,
}

fn rr_err(e: impl std::fmt::Display) -> AppError {
    AppError::Telemetry(e.to_string())
}

/// `value` rounded to single precision (24 significant bits: 6e-8 relative), still stored as the f64 the viewer's
/// time series read: for the stiffness, which holds for a trial and compresses away whatever its precision.
pub(super) fn single_precision(value: f64) -> f64 {
    f64::from(value as f32)
}

/// Grid of the recorded joint angles [deg]: 2⁻¹⁶ deg ≈ 1.5·10⁻⁵ deg (0.27 µrad), ≈ 160× finer than the simulated
/// 14-bit encoder behind its 9:1 gear (2.4·10⁻³ deg), ≈ 1500× finer than an MIT actuator's 16-bit position over
/// ±12.5 rad (0.022 deg), ≈ 10⁻⁷ of a 100° range.
pub(super) const ANGLE_GRID: f64 = 1.0 / 65_536.0;
/// Grid of the recorded torques and assistance [Nm]: 2⁻¹⁴ Nm ≈ 6.1·10⁻⁵ Nm, ≈ 6·10⁻⁶ of a 10 Nm range, ≈ 140×
/// finer than an AK80-9's 12-bit MIT torque field (±18 Nm: 8.8·10⁻³ Nm) and far below a plot's pixel.
pub(super) const TORQUE_GRID: f64 = 1.0 / 16_384.0;
/// Grid of the recorded patient effort share [0-1]: 2⁻¹⁶ ≈ 1.5·10⁻⁵.
pub(super) const SHARE_GRID: f64 = 1.0 / 65_536.0;

/// `value` on the grid of `step` [the value's unit], a power of two: the nearest multiple (an error of at most
/// step/2), exact in f64. Why: the file's LZ4 compression finds nothing to share in a double's 8 noisy bytes; a
/// value of at most 2ᵐ steps has 53 − m zero low bits (a torque below 64 Nm on [`TORQUE_GRID`]: 4 zero bytes),
/// which LZ4 does share (measured in BENCHMARKS.md). NaN and infinities stay as they are. Not on the control
/// thread (the writer's).
pub(super) fn quantise(value: f64, step: f64) -> f64 {
    (value / step).round() * step
}

/// The rows of a batch of `values` (`per_row` instances per row) that a plot needs: every row whose values differ
/// from the previous or the next row's, and the batch's first and last rows. A row inside a run of bit-identical
/// rows (NaN included: a gap stays a gap) is left out — the line a viewer draws through the run's first and last
/// rows is the flat line it drew through all of them — so a signal that holds (the stiffness between trials, the
/// reference at rest, the effort share outside trials) costs two rows per run instead of one per sample.
pub(super) fn rows_to_send(values: &[f64], per_row: usize) -> Vec<usize> {
    let per_row = per_row.max(1);
    let rows = values.len() / per_row;
    let row = |r: usize| &values[r * per_row..(r + 1) * per_row];
    let same = |a: usize, b: usize| row(a).iter().zip(row(b)).all(|(x, y)| x.to_bits() == y.to_bits());
    (0..rows).filter(|&r| r == 0 || r + 1 == rows || !same(r, r - 1) || !same(r, r + 1)).collect()
}

/// The first `keep` instances of every row of `values` (`per_row` instances per row): the torque rows without
/// their last quantity (the true patient torque, which hardware does not have).
pub(super) fn leading_instances(values: &[f64], per_row: usize, keep: usize) -> Vec<f64> {
    values.chunks(per_row.max(1)).flat_map(|row| &row[..keep.min(row.len())]).copied().collect()
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
        let mut data = Data::new(&config.model);
        let urdf = urdf_rs::read_from_string(&config.urdf).map_err(|e| AppError::Telemetry(format!("urdf: {e}")))?;
        let joint_names = config.model.joints().iter().map(|j| j.name.clone()).collect::<Vec<_>>();
        let mut moving_links = Vec::new();
        if rec.is_enabled() {
            // Every row carries the session time only: no wall-clock `log_time` column.
            rec.set_log_time_enabled(false);
            log_recording_info(&rec, config)?;
            super::layout::blueprint(&joint_names).send(&rec, BlueprintActivation::default()).map_err(rr_err)?;
            let block_names: Vec<&str> = config.blocks.iter().map(|b| b.name.as_str()).collect();
            log_series_styles(&rec, &joint_names, &block_names)?;
            rec.log_static(entities::WORLD, &rerun::ViewCoordinates::RIGHT_HAND_Z_UP()).map_err(rr_err)?;
        }
        // Links on the fixed base (no joint carries them) are logged once, static, at their only pose.
        plexo_kinematics::forward_kinematics(&config.model, &mut data, &vec![0.0; config.model.nv()]);
        for link in &urdf.links {
            let Some(frame) = config.model.frame_id(&link.name) else { continue };
            if rec.is_enabled() {
                log_link_geometry(&rec, &link.name, &link.visual, config.urdf_dir.as_deref())?;
            }
            if config.model.frames()[frame.0].joint.is_some() {
                moving_links.push((link.name.clone(), frame));
            } else if rec.is_enabled() {
                let world_T_link = to_rr_transform(&data.world_T_frame[frame.0]);
                rec.log_static(entities::robot_link(&link.name), &world_T_link).map_err(rr_err)?;
            }
        }
        if let (Some(arm), true) = (&config.patient_arm, rec.is_enabled()) {
            log_patient_arm(&rec, &config.model, &data, arm)?;
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
            moving_links,
            handle,
            block_names: config.blocks.iter().map(|b| b.name.clone()).collect(),
            block_targets: config.blocks.iter().map(|b| b.targets.clone()).collect(),
            pose_every: config.pose_every.max(1),
            series_every,
            batch: Batch::new(dof, rows),
            hand_path: Vec::new(),
            open_block: None,
            last_time: 0.0,
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
            // A session that stops inside a block (trial or time limit, a stop): its marker ends at the last time.
            if let Some(block) = self.open_block {
                self.end_block_marker(block, self.last_time)?;
            }
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

    fn set_time(&mut self, time: f64) {
        self.last_time = self.last_time.max(time);
        self.rec.set_duration_secs(entities::SIM_TIME, time);
    }

    /// Starts block `block`'s marker at `time` [s]: the bar's first point.
    fn start_block_marker(&mut self, block: usize, time: f64) -> Result<(), AppError> {
        if let Some(open) = self.open_block {
            self.end_block_marker(open, time)?;
        }
        self.set_time(time);
        self.rec.log(entities::block_marker(block), &rerun::Scalars::single(block as f64)).map_err(rr_err)?;
        self.open_block = Some(block);
        Ok(())
    }

    /// Ends block `block`'s marker at `time` [s]: the bar's last point.
    fn end_block_marker(&mut self, block: usize, time: f64) -> Result<(), AppError> {
        self.set_time(time);
        self.rec.log(entities::block_marker(block), &rerun::Scalars::single(block as f64)).map_err(rr_err)?;
        self.open_block = None;
        Ok(())
    }

    fn on_sample(&mut self, s: &Sample) -> Result<(), AppError> {
        self.report.samples += 1;
        if !self.rec.is_enabled() {
            return Ok(()); // no sink: count only (a disabled stream warns on every kind of call)
        }
        self.last_time = self.last_time.max(s.time);
        if s.tick.is_multiple_of(self.series_every) {
            self.batch.push(s);
            self.report.series_rows += 1;
            if self.batch.is_full() {
                self.flush_batch()?;
            }
        }
        let pose = s.tick.is_multiple_of(self.pose_every);
        let path = s.tick.is_multiple_of(HAND_PATH_EVERY);
        if (pose || path) && s.q.len() == self.model.nv() {
            plexo_kinematics::forward_kinematics(&self.model, &mut self.data, &s.q);
            let hand = self.handle.map(|handle| {
                let p = self.data.world_T_frame[handle.0].translation.vector;
                [p.x as f32, p.y as f32, p.z as f32]
            });
            if let (true, Some(p)) = (path, hand) {
                self.hand_path.push(p);
            }
            if !pose {
                return Ok(());
            }
            self.set_time(s.time);
            for (name, frame) in &self.moving_links {
                let world_T_link = &self.data.world_T_frame[frame.0];
                self.rec.log(entities::robot_link(name), &to_rr_transform(world_T_link)).map_err(rr_err)?;
            }
            if let Some(p) = hand {
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

    /// Sends the batched time series: one chunk per entity of [`entities::SERIES_GROUPS`], the group's instances
    /// in every row, the session time as the only timeline; rows inside a run of unchanged rows are left out
    /// ([`rows_to_send`]: the plotted line is the same). Without a true patient torque (hardware) the torque rows
    /// hold the commanded and estimated torques only.
    fn flush_batch(&mut self) -> Result<(), AppError> {
        let b = &self.batch;
        if b.len() == 0 {
            return Ok(());
        }
        let send = |group: entities::SeriesGroup, values: &[f64], per_row: usize| -> Result<(), AppError> {
            let rows = rows_to_send(values, per_row);
            let index = [rerun::TimeColumn::new_duration_secs(entities::SIM_TIME, rows.iter().map(|&r| b.times[r]))];
            let kept = rows.iter().flat_map(|&r| values[r * per_row..(r + 1) * per_row].iter().copied());
            let column = rerun::Scalars::new(kept).columns(std::iter::repeat_n(per_row, rows.len())).map_err(rr_err)?;
            self.rec.send_columns(group.path, index, column).map_err(rr_err)
        };
        let dof = b.dof;
        send(entities::POSITION, &b.position, entities::POSITION.instances(dof))?;
        let torques = entities::TORQUE.instances(dof);
        if b.has_true_torque {
            send(entities::TORQUE, &b.torque, torques)?;
        } else {
            let measured = torques - dof;
            send(entities::TORQUE, &leading_instances(&b.torque, torques, measured), measured)?;
        }
        send(entities::STIFFNESS_GROUP, &b.stiffness, entities::STIFFNESS_GROUP.instances(dof))?;
        send(entities::EFFORT, &b.effort, entities::EFFORT.instances(dof))?;
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
                self.start_block_marker(block, time)?;
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
                    // Every trial's path is kept (one entity per trial), green if reached, red if not.
                    let color = if success { [60, 200, 90] } else { [220, 60, 60] };
                    self.rec
                        .log(
                            entities::hand_path(block, trial),
                            &rerun::LineStrips3D::new([std::mem::take(&mut self.hand_path)])
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
                self.end_block_marker(block, time)?;
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

/// Logs the static style of every time series: each instance named with its joint, quantity and unit
/// ([`entities::SeriesGroup::names`]) and coloured by its quantity; each block's marker named with the block.
fn log_series_styles(rec: &rerun::RecordingStream, joints: &[String], blocks: &[&str]) -> Result<(), AppError> {
    for group in entities::SERIES_GROUPS {
        let per_quantity = if group.per_joint { joints.len() } else { 1 };
        let colors =
            group.quantities.iter().flat_map(|q| std::iter::repeat_n(super::layout::series_color(q), per_quantity));
        let lines = rerun::SeriesLines::new().with_names(group.names(joints)).with_colors(colors);
        rec.log_static(group.path, &lines).map_err(rr_err)?;
    }
    for (path, name) in entities::TRIAL_SERIES {
        // Markers, not lines: each trial is one outcome.
        let points = rerun::SeriesPoints::new().with_names([name]).with_colors([super::layout::series_color(path)]);
        rec.log_static(path, &points).map_err(rr_err)?;
    }
    for (k, name) in blocks.iter().enumerate() {
        let lines = rerun::SeriesLines::new()
            .with_names([super::layout::block_marker_name(k, name)])
            .with_colors([super::layout::block_color(k)])
            .with_widths([4.0]);
        rec.log_static(entities::block_marker(k), &lines).map_err(rr_err)?;
    }
    Ok(())
}

/// Density of the arm's segments [kg/m³] for the capsules' radii: Dempster's cadaver segment densities are
/// 1.07 (upper arm), 1.13 (forearm) and 1.16 g/cm³ (hand) (Dempster 1955, WADC TR 55-159; as tabulated in
/// D. A. Winter, *Biomechanics and Motor Control of Human Movement*, 4th ed., Table 4.1); one value for all three is
/// close enough for a drawing.
const ARM_SEGMENT_DENSITY: f64 = 1100.0;

/// A patient arm segment as the 3D view draws it: a capsule in its link's frame.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SegmentCapsule {
    /// Proximal end (the joint centre) in the link frame [m].
    pub start: nalgebra::Vector3<f64>,
    /// Unit direction from proximal to distal in the link frame.
    pub axis: nalgebra::Unit<nalgebra::Vector3<f64>>,
    /// Length from the proximal to the distal joint centre [m].
    pub length: f64,
    /// Radius of a cylinder of the segment's mass, length and [`ARM_SEGMENT_DENSITY`] [m].
    pub radius: f64,
}

/// The patient's upper arm, forearm and hand placed as `plexo_controller::attach_patient_arm` attaches them (and
/// the virtual patient's plant): each along the direction of world −z at q = 0 in its link's frame (`data` holds
/// the zero-posture kinematics), the upper arm from `upper_arm_link`'s origin (the shoulder), the forearm from
/// `forearm_link`'s (the elbow), the hand with its centre of mass at the `handle` (the palm). Links the robot
/// lacks are skipped.
pub(super) fn patient_arm_capsules(
    model: &Model,
    data: &Data,
    arm: &plexo_kinematics::anthropometrics::ArmAnthropometrics,
) -> Vec<(&'static str, &'static str, SegmentCapsule)> {
    let down = nalgebra::Vector3::new(0.0, 0.0, -1.0);
    let segments = [arm.upper_arm, arm.forearm, arm.hand];
    entities::PATIENT_SEGMENTS
        .iter()
        .zip(segments)
        .filter_map(|(&(segment, link), s)| {
            let frame = model.frame_id(link)?;
            let axis = nalgebra::Unit::new_normalize(data.world_T_frame[frame.0].rotation.inverse() * down);
            let start = if segment == "hand" { -axis.into_inner() * s.com_from_proximal } else { Default::default() };
            let radius = (s.mass / (ARM_SEGMENT_DENSITY * std::f64::consts::PI * s.length)).sqrt();
            Some((segment, link, SegmentCapsule { start, axis, length: s.length, radius }))
        })
        .collect()
}

/// Logs the patient's arm once (static) as capsules under `world/robot/<link>/patient_<segment>`: they move with
/// their links' poses.
fn log_patient_arm(
    rec: &rerun::RecordingStream,
    model: &Model,
    data: &Data,
    arm: &plexo_kinematics::anthropometrics::ArmAnthropometrics,
) -> Result<(), AppError> {
    const SKIN: [u8; 4] = [224, 172, 138, 200];
    for (segment, link, c) in patient_arm_capsules(model, data, arm) {
        // Rerun's capsules run from their origin along +z.
        let z = nalgebra::Vector3::z();
        let rotation = nalgebra::UnitQuaternion::rotation_between(&z, &c.axis).unwrap_or_else(|| {
            nalgebra::UnitQuaternion::from_axis_angle(&nalgebra::Vector3::x_axis(), std::f64::consts::PI)
        });
        let q = rotation.coords;
        let capsule = rerun::Capsules3D::from_lengths_and_radii([c.length as f32], [c.radius as f32])
            .with_translations([[c.start.x as f32, c.start.y as f32, c.start.z as f32]])
            .with_quaternions([rerun::Quaternion::from_xyzw([q.x as f32, q.y as f32, q.z as f32, q.w as f32])])
            .with_colors([rerun::Color::from_unmultiplied_rgba(SKIN[0], SKIN[1], SKIN[2], SKIN[3])])
            .with_labels([segment.replace('_', " ")]);
        rec.log_static(entities::patient_segment(link, segment), &capsule).map_err(rr_err)?;
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

/// Mesh formats the viewer's `Asset3D` reads, by file extension (lower case).
const MESH_FORMATS: [&str; 5] = ["stl", "obj", "glb", "gltf", "dae"];

/// Where a URDF mesh file is: `file://` URIs and absolute paths as they are, other paths relative to the URDF
/// file's directory `urdf_dir`. `package://` URIs (ROS packages) are refused: Plexo does not search a ROS package
/// path. The error says why, for the warning that names the file and the link.
pub(super) fn resolve_mesh(filename: &str, urdf_dir: Option<&Path>) -> Result<PathBuf, String> {
    if filename.starts_with("package://") {
        return Err("a ROS `package://` URI, which Plexo does not resolve: give the mesh's path relative to the URDF \
                    file"
            .to_owned());
    }
    let path = PathBuf::from(filename.strip_prefix("file://").unwrap_or(filename));
    if path.is_absolute() {
        return Ok(path);
    }
    match urdf_dir {
        Some(dir) => Ok(dir.join(path)),
        None => Err("a relative path in an embedded robot, which has no directory to resolve it against".to_owned()),
    }
}

/// The mesh of a URDF visual as an `Asset3D` (`filename` resolved by [`resolve_mesh`]); why not, if it cannot be
/// drawn (refused URI, unknown format, file missing or unreadable).
fn mesh_asset(filename: &str, urdf_dir: Option<&Path>) -> Result<rerun::Asset3D, String> {
    let path = resolve_mesh(filename, urdf_dir)?;
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_lowercase).unwrap_or_default();
    if !MESH_FORMATS.contains(&extension.as_str()) {
        return Err(format!("`{extension}` is not a mesh format the viewer reads ({})", MESH_FORMATS.join(", ")));
    }
    rerun::Asset3D::from_file_path(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Logs each visual of a link once (static) under `world/robot/<link>/visual_<k>`, in the link frame: primitives
/// as Rerun shapes, meshes as `Asset3D` (resolved against `urdf_dir`, the URDF file's directory). A mesh that
/// cannot be drawn is skipped with a warning naming the file and the link.
fn log_link_geometry(
    rec: &rerun::RecordingStream,
    link: &str,
    visuals: &[urdf_rs::Visual],
    urdf_dir: Option<&Path>,
) -> Result<(), AppError> {
    const COLOR: [u8; 3] = [170, 180, 195];
    for (k, visual) in visuals.iter().enumerate() {
        let path = entities::link_visual(link, k);
        let origin = urdf_pose_to_transform(&visual.origin);
        match &visual.geometry {
            urdf_rs::Geometry::Box { size } => {
                let [x, y, z] = size.0;
                rec.log_static(path.as_str(), &origin).and_then(|()| {
                    rec.log_static(
                        path.as_str(),
                        &rerun::Boxes3D::from_sizes([[x as f32, y as f32, z as f32]]).with_colors([COLOR]),
                    )
                })
            }
            urdf_rs::Geometry::Cylinder { radius, length } => rec.log_static(path.as_str(), &origin).and_then(|()| {
                rec.log_static(
                    path.as_str(),
                    &rerun::Cylinders3D::from_lengths_and_radii([*length as f32], [*radius as f32])
                        .with_colors([COLOR]),
                )
            }),
            urdf_rs::Geometry::Capsule { radius, length } => rec.log_static(path.as_str(), &origin).and_then(|()| {
                rec.log_static(
                    path.as_str(),
                    // URDF capsules are centred on the origin along z; Rerun's start at the origin.
                    &rerun::Capsules3D::from_lengths_and_radii([*length as f32], [*radius as f32])
                        .with_translations([[0.0, 0.0, -(*length as f32) / 2.0]])
                        .with_colors([COLOR]),
                )
            }),
            urdf_rs::Geometry::Sphere { radius } => rec.log_static(path.as_str(), &origin).and_then(|()| {
                rec.log_static(path.as_str(), &rerun::Ellipsoids3D::from_radii([*radius as f32]).with_colors([COLOR]))
            }),
            urdf_rs::Geometry::Mesh { filename, scale } => match mesh_asset(filename, urdf_dir) {
                Ok(asset) => {
                    // The URDF's per-axis scale applies in the visual's frame, after its origin.
                    let [sx, sy, sz] = scale.as_ref().map_or([1.0; 3], |s| s.0);
                    let origin = origin.with_scale([sx as f32, sy as f32, sz as f32]);
                    rec.log_static(path.as_str(), &origin).and_then(|()| rec.log_static(path.as_str(), &asset))
                }
                Err(why) => {
                    tracing::warn!("link `{link}`: mesh `{filename}` is not drawn: {why}");
                    Ok(())
                }
            },
        }
        .map_err(rr_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{
        ANGLE_GRID, SHARE_GRID, TORQUE_GRID, leading_instances, patient_arm_capsules, quantise, resolve_mesh,
        rows_to_send, series_every,
    };

    #[test]
    fn the_patient_arm_hangs_down_from_shoulder_and_elbow_at_zero_with_the_palm_at_the_handle() {
        let (model, _) = crate::setup::load_robot("plexo-arm4").unwrap().value;
        let mut data = plexo_kinematics::Data::new(&model);
        plexo_kinematics::forward_kinematics(&model, &mut data, &vec![0.0; model.nv()]);
        let arm = plexo_kinematics::anthropometrics::ArmAnthropometrics::from_height_mass(1.75, 75.0).unwrap();
        let capsules = patient_arm_capsules(&model, &data, &arm);
        assert_eq!(capsules.len(), 3);
        for (segment, link, c) in capsules {
            let pose = data.world_T_frame[model.frame_id(link).unwrap().0];
            let world_axis = pose.rotation * c.axis.into_inner();
            assert!((world_axis - nalgebra::Vector3::new(0.0, 0.0, -1.0)).norm() < 1e-9, "{segment}: {world_axis}");
            let (proximal, length) = match segment {
                "upper_arm" => (nalgebra::Vector3::zeros(), arm.upper_arm.length),
                "forearm" => (nalgebra::Vector3::zeros(), arm.forearm.length),
                // The hand's centre of mass is at the handle: its wrist end above it.
                _ => (-c.axis.into_inner() * arm.hand.com_from_proximal, arm.hand.length),
            };
            assert!((c.start - proximal).norm() < 1e-12 && c.length == length, "{segment}: {c:?}");
            assert!((0.02..0.07).contains(&c.radius), "{segment}: radius {} m", c.radius);
        }
    }

    #[test]
    fn meshes_resolve_against_the_urdf_directory_and_package_uris_are_refused() {
        let dir = Path::new("/robots/arm");
        assert_eq!(resolve_mesh("meshes/a.stl", Some(dir)).unwrap(), dir.join("meshes/a.stl"));
        assert_eq!(resolve_mesh("file:///abs/b.obj", Some(dir)).unwrap(), Path::new("/abs/b.obj"));
        assert_eq!(resolve_mesh("/abs/c.glb", None).unwrap(), Path::new("/abs/c.glb"));
        assert!(resolve_mesh("package://arm/meshes/a.stl", Some(dir)).unwrap_err().contains("package://"));
        assert!(resolve_mesh("meshes/a.stl", None).unwrap_err().contains("embedded robot"));
    }

    #[test]
    fn held_values_keep_the_ends_of_each_run_and_the_line_through_them_is_unchanged() {
        // Two instances per row: rows 1-4 hold (2, 3), rows 5-7 are NaN (a gap), then it moves every row.
        let nan = f64::NAN;
        let rows: [[f64; 2]; 11] = [
            [1.0, 1.0],
            [2.0, 3.0],
            [2.0, 3.0],
            [2.0, 3.0],
            [2.0, 3.0],
            [nan, nan],
            [nan, nan],
            [nan, nan],
            [4.0, 5.0],
            [5.0, 6.0],
            [6.0, 7.0],
        ];
        let values: Vec<f64> = rows.iter().flatten().copied().collect();
        let kept = rows_to_send(&values, 2);
        assert_eq!(kept, vec![0, 1, 4, 5, 7, 8, 9, 10]);
        // Every left-out row equals the linear interpolation of the kept rows around it.
        for r in 0..rows.len() {
            let Err(at) = kept.binary_search(&r) else { continue };
            let (a, b) = (kept[at - 1], kept[at]);
            let t = (r - a) as f64 / (b - a) as f64;
            for ((start, end), value) in rows[a].iter().zip(rows[b]).zip(rows[r]) {
                let line = start + t * (end - start);
                assert!(line.to_bits() == value.to_bits() || (line.is_nan() && value.is_nan()), "row {r}");
            }
        }
        // A row changes if any one instance changes.
        assert_eq!(rows_to_send(&[1.0, 1.0, 1.0, 2.0, 1.0, 1.0], 2), vec![0, 1, 2]);
        assert_eq!(rows_to_send(&[], 4), Vec::<usize>::new());
    }

    #[test]
    fn the_series_take_every_nth_tick_rounded_never_less_than_every_tick() {
        assert_eq!(series_every(0.001, 250.0), 4);
        assert_eq!(series_every(0.001, 1000.0), 1);
        assert_eq!(series_every(0.001, 300.0), 3, "333 Hz, the nearest divisor of 1 kHz");
        assert_eq!(series_every(0.001, 5000.0), 1, "above the loop's rate: every tick");
        assert_eq!(series_every(0.002, 250.0), 2);
        assert_eq!(series_every(0.001, 0.0), 1, "a rate the command line refuses is not a division by zero");
    }

    #[test]
    fn values_on_the_binary_grids_are_within_half_a_step_and_end_in_zero_bits() {
        // A value of at most 2^m steps has at most m significant bits: 53 - m zero low bits of the f64.
        for (step, range, zero_bits) in [(TORQUE_GRID, 40.0, 32), (ANGLE_GRID, 180.0, 29), (SHARE_GRID, 1.0, 36)] {
            for k in 0..10_000 {
                let value = range * ((k as f64 * 0.618_034).fract() * 2.0 - 1.0) + 1e-9 * k as f64;
                let q = quantise(value, step);
                assert!((q - value).abs() <= step / 2.0, "{value} -> {q} on a grid of {step}");
                assert_eq!(q, quantise(q, step), "a value on the grid stays");
                // What LZ4 shares: the low bytes (little-endian) of a value on the grid are zero.
                assert!(q.to_bits().trailing_zeros() >= zero_bits, "{value} -> {q}: {:016x}", q.to_bits());
            }
        }
        assert!(quantise(f64::NAN, TORQUE_GRID).is_nan(), "a gap stays a gap");
        assert_eq!(quantise(f64::INFINITY, TORQUE_GRID), f64::INFINITY);
        // The grids are far below what a plot shows (and the simulated encoder's 2.4e-3 deg).
        const { assert!(TORQUE_GRID < 1e-4 && ANGLE_GRID < 2e-5 && SHARE_GRID < 2e-5) };
    }

    #[test]
    fn hardware_torque_rows_keep_the_commanded_and_estimated_torques_of_every_joint() {
        // Two rows of 2 joints × (cmd, est, true): the true torque (NaN on hardware) is dropped from each row.
        let nan = f64::NAN;
        let rows = [1.0, 2.0, 3.0, 4.0, nan, nan, 5.0, 6.0, 7.0, 8.0, nan, nan];
        assert_eq!(leading_instances(&rows, 6, 4), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]);
        assert!(leading_instances(&[], 6, 4).is_empty());
    }
}
