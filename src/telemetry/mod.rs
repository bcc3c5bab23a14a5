//! Telemetry and analysis on their own threads, fed by the control thread over a bounded channel:
//!
//! ```text
//! control thread --TickSample--> analysis thread --Message--> Rerun writer thread
//!   (runtime)       (channel)     (hand FK, speed     (channel)   (link poses, batched
//!                                  profiles, SPARC,                time series, events)
//!                                  block table)
//! ```
//!
//! The control thread only copies one fixed-size [`TickSample`] per tick into the channel ([`channel`] semantics:
//! a paced loop never blocks and counts what it drops; an unpaced simulation waits and loses nothing). The
//! analysis computes everything that needs the robot model or a trial's history and produces the session's
//! block table ([`crate::summary::SessionSummary`]); the writer logs to Rerun ([`entities`] names the paths).
//! In a paced session a slow writer (a viewer over the network) makes the analysis drop recording messages
//! (counted), never samples of the analysis.
//!
//! Timeline: `sim_time` (simulated or wall time since start [s]), the only one on every row. The time series are
//! logged at [`TelemetryConfig::telemetry_rate`] as one entity per plot group with its quantities (per joint) as
//! instances ([`entities::SERIES_GROUPS`]), in columns of 5 s each (1 s with a live viewer); every recording
//! carries a blueprint (the viewer's layout) and its properties.

pub mod analysis;
mod channel;
mod config;
pub mod entities;
pub mod layout;
pub mod live;
pub mod messages;
mod pipeline;
mod writer;

pub use self::analysis::{FinishedTrial, TrialSink};
pub use self::channel::BoundedSender;
pub use self::config::{DEFAULT_TELEMETRY_RATE, LiveReport, RecordingInfo, Sinks, TelemetryConfig, TelemetryReport};
pub use self::pipeline::{Finished, Telemetry, TelemetrySender};
