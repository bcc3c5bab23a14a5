//! The Rerun writer: the last stage of the telemetry pipeline, on its own thread. It computes link poses by
//! forward kinematics on its own `Model`/`Data`, batches the per-joint time series and sends them to Rerun in
//! columns (one chunk per batch, not one call per sample), and logs events as text. Paths: [`super::entities`].

use std::path::PathBuf;

use crossbeam::channel::Receiver;
use plexo_controller::{SafetyOutcome, StopReason};
use plexo_kinematics::{Data, FrameId, Model};

use super::config::{TelemetryConfig, TelemetryReport};
use super::entities;
use super::messages::{Event, Message, Sample};
use crate::AppError;

/// Opens the Rerun recording stream on the configured sinks (a disabled stream without any). Not real-time safe.
pub(super) fn open_stream(config: &TelemetryConfig) -> Result<rerun::RecordingStream, AppError> {
    let err = |what: &str, e: &dyn std::fmt::Display| AppError::Telemetry(format!("{what}: {e}"));
    let builder = rerun::RecordingStreamBuilder::new("plexo").recording_id(config.session_name.clone());
    let rec = match (&config.sinks.save, config.sinks.spawn, &config.sinks.connect) {
        (None, false, None) => {
            // No sink: record nothing, but keep the same code path.
            return Ok(rerun::RecordingStream::disabled());
        }
        (save, spawn, connect) => {
            let rec = builder.buffered().map_err(|e| err("cannot create the recording", &e))?;
            let mut sinks: Vec<Box<dyn rerun::sink::LogSink>> = Vec::new();
            if let Some(path) = save {
                // Written beside the target and renamed over it when complete (crate::files).
                crate::files::create_parent(path)?;
                let partial = crate::files::partial_path(path);
                let sink = rerun::sink::FileSink::new(&partial)
                    .map_err(|e| err(&format!("cannot write {}", partial.display()), &e))?;
                sinks.push(Box::new(sink));
            }
            if spawn {
                // A plainly started Rerun 0.36 viewer listens on 0.0.0.0:9876, exposing patient data to the clinic
                // network: bind the viewer we spawn to loopback only.
                let opts =
                    rerun::SpawnOptions { extra_args: vec!["--bind".into(), "127.0.0.1".into()], ..Default::default() };
                rerun::spawn(&opts).map_err(|e| err("cannot spawn the Rerun viewer", &e))?;
                let url = format!("rerun+http://127.0.0.1:{}/proxy", opts.port);
                let sink = rerun::sink::GrpcSink::new(
                    url.parse::<rerun::external::re_uri::ProxyUri>().map_err(|e| err("viewer url", &e))?,
                );
                sinks.push(Box::new(sink));
            }
            if let Some(url) = connect {
                let uri = url
                    .parse::<rerun::external::re_uri::ProxyUri>()
                    .map_err(|e| err(&format!("--connect {url}"), &e))?;
                sinks.push(Box::new(rerun::sink::GrpcSink::new(uri)));
            }
            rec.set_sinks(sinks);
            rec
        }
    };
    Ok(rec)
}

/// Per-joint columns batched before sending.
struct Batch {
    ticks: Vec<i64>,
    times: Vec<f64>,
    series: Vec<[Vec<f64>; SERIES]>, // per joint
    true_torque: Vec<Vec<f64>>,      // per joint (only when present)
    assistance: Vec<f64>,
    effort_share: Vec<f64>,
    true_ticks: Vec<i64>,
    true_times: Vec<f64>,
}

const SERIES: usize = 5;
const SERIES_NAMES: [&str; SERIES] =
    [entities::Q, entities::Q_REF, entities::TAU_CMD, entities::TAU_PATIENT_EST, entities::STIFFNESS];
/// Samples per batch sent to Rerun (≈ 0.25 s at 1 kHz).
const BATCH: usize = 250;

impl Batch {
    fn new(dof: usize) -> Self {
        Self {
            ticks: Vec::with_capacity(BATCH),
            times: Vec::with_capacity(BATCH),
            series: (0..dof).map(|_| std::array::from_fn(|_| Vec::with_capacity(BATCH))).collect(),
            true_torque: (0..dof).map(|_| Vec::with_capacity(BATCH)).collect(),
            assistance: Vec::with_capacity(BATCH),
            effort_share: Vec::with_capacity(BATCH),
            true_ticks: Vec::with_capacity(BATCH),
            true_times: Vec::with_capacity(BATCH),
        }
    }

    fn push(&mut self, s: &Sample) {
        self.ticks.push(s.tick as i64);
        self.times.push(s.time);
        for (j, series) in self.series.iter_mut().enumerate() {
            let values = [s.q[j], s.q_ref[j], s.tau_cmd[j], s.tau_patient_est[j], s.stiffness[j]];
            for (k, v) in values.into_iter().enumerate() {
                series[k].push(v);
            }
        }
        if let Some(t) = &s.tau_patient_true {
            self.true_ticks.push(s.tick as i64);
            self.true_times.push(s.time);
            for (j, col) in self.true_torque.iter_mut().enumerate() {
                col.push(t[j]);
            }
        }
        self.assistance.push(s.assistance);
        self.effort_share.push(s.patient_effort_share);
    }

    fn len(&self) -> usize {
        self.ticks.len()
    }

    fn clear(&mut self) {
        self.ticks.clear();
        self.times.clear();
        self.series.iter_mut().flatten().for_each(Vec::clear);
        self.true_torque.iter_mut().for_each(Vec::clear);
        self.assistance.clear();
        self.effort_share.clear();
        self.true_ticks.clear();
        self.true_times.clear();
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    rec: rerun::RecordingStream,
    model: Model,
    data: Data,
    joint_names: Vec<String>,
    links: Vec<(String, FrameId)>,
    handle: Option<FrameId>,
    block_names: Vec<String>,
    block_targets: Vec<Vec<[f64; 3]>>,
    pose_every: u64,
    batch: Batch,
    hand_path: Vec<[f32; 3]>,
    report: TelemetryReport,
    save: Option<PathBuf>,
}

fn rr_err(e: impl std::fmt::Display) -> AppError {
    AppError::Telemetry(e.to_string())
}

impl Writer {
    pub(super) fn new(config: &TelemetryConfig, rec: rerun::RecordingStream) -> Result<Self, AppError> {
        let data = Data::new(&config.model);
        let urdf = urdf_rs::read_from_string(&config.urdf).map_err(|e| AppError::Telemetry(format!("urdf: {e}")))?;
        let mut links = Vec::new();
        if rec.is_enabled() {
            rec.log_static(entities::WORLD, &rerun::ViewCoordinates::RIGHT_HAND_Z_UP()).map_err(rr_err)?;
        }
        for link in &urdf.links {
            let Some(frame) = config.model.frame_id(&link.name) else { continue };
            if rec.is_enabled() {
                log_link_geometry(&rec, &link.name, &link.visual)?;
            }
            links.push((link.name.clone(), frame));
        }
        let joint_names = config.model.joints().iter().map(|j| j.name.clone()).collect::<Vec<_>>();
        let handle = config.model.frame_id(&config.handle_frame);
        let dof = config.model.nv();
        Ok(Self {
            rec,
            data,
            joint_names,
            links,
            handle,
            block_names: config.blocks.iter().map(|b| b.name.clone()).collect(),
            block_targets: config.blocks.iter().map(|b| b.targets.clone()).collect(),
            pose_every: config.pose_every.max(1),
            batch: Batch::new(dof),
            hand_path: Vec::new(),
            report: TelemetryReport::default(),
            save: config.sinks.save.clone(),
            model: config.model.clone(),
        })
    }

    /// Logs every message until the analysis ends, then flushes the sinks. Not real-time safe.
    pub(super) fn run(mut self, rx: &Receiver<Message>) -> Result<TelemetryReport, AppError> {
        // The analysis holds the only sender: the channel disconnects once it has ended and all is received.
        while let Ok(message) = rx.recv() {
            match message {
                Message::Sample(s) => self.on_sample(&s)?,
                Message::Event(e) => self.on_event(&e)?,
            }
        }
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
        report.saved_to = save;
        Ok(report)
    }

    fn set_time(&self, tick: u64, time: f64) {
        self.rec.set_time_sequence(entities::TICK, tick as i64);
        self.rec.set_duration_secs(entities::SIM_TIME, time);
    }

    fn on_sample(&mut self, s: &Sample) -> Result<(), AppError> {
        self.report.samples += 1;
        if !self.rec.is_enabled() {
            return Ok(()); // no sink: count only (a disabled stream warns on every kind of call)
        }
        self.batch.push(s);
        if self.batch.len() >= BATCH {
            self.flush_batch()?;
        }
        if s.tick.is_multiple_of(self.pose_every) && s.q.len() == self.model.nv() {
            self.set_time(s.tick, s.time);
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

    fn flush_batch(&mut self) -> Result<(), AppError> {
        if self.batch.len() == 0 {
            return Ok(());
        }
        let b = &self.batch;
        let indexes = || {
            [
                rerun::TimeColumn::new_sequence(entities::TICK, b.ticks.iter().copied()),
                rerun::TimeColumn::new_duration_secs(entities::SIM_TIME, b.times.iter().copied()),
            ]
        };
        for (j, name) in self.joint_names.iter().enumerate() {
            for (k, series) in SERIES_NAMES.iter().enumerate() {
                let column =
                    rerun::Scalars::new(b.series[j][k].iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
                self.rec.send_columns(entities::joint_series(name, series), indexes(), column).map_err(rr_err)?;
            }
            if !b.true_ticks.is_empty() {
                let idx = [
                    rerun::TimeColumn::new_sequence(entities::TICK, b.true_ticks.iter().copied()),
                    rerun::TimeColumn::new_duration_secs(entities::SIM_TIME, b.true_times.iter().copied()),
                ];
                let column =
                    rerun::Scalars::new(b.true_torque[j].iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
                self.rec
                    .send_columns(entities::joint_series(name, entities::TAU_PATIENT_TRUE), idx, column)
                    .map_err(rr_err)?;
            }
        }
        let column = rerun::Scalars::new(b.assistance.iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
        self.rec.send_columns(entities::ASSISTANCE, indexes(), column).map_err(rr_err)?;
        let column = rerun::Scalars::new(b.effort_share.iter().copied()).columns_of_unit_batches().map_err(rr_err)?;
        self.rec.send_columns(entities::PATIENT_EFFORT_SHARE, indexes(), column).map_err(rr_err)?;
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
        let (text, level, tick, time) = match *e {
            Event::BlockStart { block, time, tick } => {
                self.set_time(tick, time);
                let name = self.block_name(block).to_owned();
                tracing::info!(block, name, "block starts");
                self.rec
                    .log(entities::ANNOTATIONS, &rerun::TextLog::new(format!("block {block} '{name}' starts")))
                    .map_err(rr_err)?;
                self.log_targets(block, 0)?;
                (format!("block {block} '{name}' starts"), rerun::TextLogLevel::INFO, tick, time)
            }
            Event::TrialStart { block, trial, target, time, tick } => {
                self.hand_path.clear();
                self.set_time(tick, time);
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
                    tick,
                    time,
                )
            }
            Event::TrialEnd { block, trial, success, final_error_m, duration, peaks, sparc, time, tick } => {
                self.set_time(tick, time);
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
                    tick,
                    time,
                )
            }
            Event::BlockEnd { block, trials, successes, time, tick } => {
                self.set_time(tick, time);
                let name = self.block_name(block).to_owned();
                let text = format!("block {block} '{name}' ends: {successes}/{trials} reached");
                tracing::info!(block, name, trials, successes, "block ends");
                self.rec.log(entities::ANNOTATIONS, &rerun::TextLog::new(text.clone())).map_err(rr_err)?;
                self.rec.log(entities::TARGETS, &rerun::Clear::flat()).map_err(rr_err)?;
                (text, rerun::TextLogLevel::INFO, tick, time)
            }
            Event::Safety { outcome, time, tick } => {
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
                (format!("safety: {outcome:?}"), level, tick, time)
            }
        };
        self.set_time(tick, time);
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
