//! The `--candump` log of `plexo run` and `plexo sim --over-can`: every bus's frames into one file in the
//! can-utils candump format, written beside the target and renamed over it when finished ([`crate::files`]),
//! also after a failed start-up or session.

use std::path::{Path, PathBuf};

use plexo_can::VirtualBus;
use plexo_can::emulated::CANDUMP_CHANNEL_RECORDS;
#[cfg(doc)]
use plexo_can::emulated::SimOverCan;
use plexo_can::recorder::{CandumpSummary, CandumpWriter, RecordSink};

use crate::AppError;

/// A `--candump` file (`plexo run`, `plexo sim --over-can`): one candump writer for every bus, written beside the target
/// ([`crate::files::partial_path`]) and committed over it when finished.
pub(crate) struct CanLog {
    writer: CandumpWriter,
    path: PathBuf,
}

impl CanLog {
    /// Creates the writer for `interfaces` (bus index order; the names written in the log). Not real-time safe.
    pub(crate) fn start(path: &Path, interfaces: &[String]) -> Result<Self, AppError> {
        crate::files::create_parent(path)?;
        let names: Vec<&str> = interfaces.iter().map(String::as_str).collect();
        let writer = CandumpWriter::create(&crate::files::partial_path(path), &names, CANDUMP_CHANNEL_RECORDS)?;
        Ok(Self { writer, path: path.to_owned() })
    }

    /// Starts `log` on the virtual buses `buses` (their names in the log), each recording into it from now on:
    /// called before the drives boot ([`SimOverCan::with_recording`]), the log holds the start-up. Not real-time
    /// safe.
    pub(crate) fn record_virtual(path: &Path, buses: &[VirtualBus], log: &mut Option<Self>) -> Result<(), AppError> {
        let names: Vec<String> = buses.iter().map(VirtualBus::name).collect();
        let started = log.insert(Self::start(path, &names)?);
        for (i, bus) in buses.iter().enumerate() {
            bus.record_to(started.sink(i)?);
        }
        Ok(())
    }

    /// The sink of bus `i`.
    pub(crate) fn sink(&self, i: usize) -> Result<RecordSink, AppError> {
        self.writer.sink(i).ok_or_else(|| AppError::Robot(format!("no candump sink for bus {i}")))
    }

    /// Waits for the writer to write everything queued (every sink must be gone: the robot dropped), flushes
    /// and renames the file over its target. Not real-time safe.
    pub(crate) fn finish(self) -> Result<CandumpSummary, AppError> {
        let summary = self.writer.finish()?;
        crate::files::commit(&crate::files::partial_path(&self.path), &self.path)?;
        Ok(summary)
    }

    /// Finishes `log` (if any) after the run that ended with `result`, reports it, and returns the run's error
    /// first, else the log's.
    pub(crate) fn finish_after(log: Option<Self>, result: Result<(), AppError>) -> Result<(), AppError> {
        let Some(log) = log else { return result };
        let path = log.path.display().to_string();
        let saved = log.finish();
        match &saved {
            Ok(can) => {
                println!("CAN traffic saved to {path}: {} frames, {} dropped", can.written, can.dropped);
                if can.dropped > 0 {
                    eprintln!(
                        "warning: {} CAN frames were not recorded (the log writer could not keep up)",
                        can.dropped
                    );
                }
            }
            Err(e) => eprintln!("error: the CAN log {path} could not be written: {e}"),
        }
        result.and(saved.map(|_| ()))
    }
}
