//! The store's writer during a session: a thread of its own that commits each trial the analysis thread hands it
//! (one transaction per trial, so a `kill -9` loses at most the trial in progress). The control thread never
//! touches the store; the analysis thread only sends on an unbounded channel, so a slow or failing database
//! never holds up the analysis, let alone the loop. A store error is counted and reported (once as a warning,
//! at the end in the summary line), never stops the session: the session's files are written as without a
//! store.

use std::thread::JoinHandle;

use crossbeam::channel::{Receiver, unbounded};

use super::Store;
use crate::AppError;
use crate::telemetry::{FinishedTrial, TrialSink};

/// What the recorder did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderReport {
    /// Trial writes committed (a re-estimated trial counts again).
    pub stored: u64,
    /// Trial writes that failed.
    pub failed: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
}

/// The running writer of one session's trials.
pub struct Recorder {
    sink: TrialSink,
    thread: JoinHandle<(Store, RecorderReport)>,
}

impl Recorder {
    /// Starts the writer of session `session` (a row id of [`Store::begin_session`]) on `store`. Not real-time safe.
    pub fn start(store: Store, session: i64) -> Result<Self, AppError> {
        let (sink, trials) = unbounded::<FinishedTrial>();
        let thread = std::thread::Builder::new()
            .name("plexo-store".into())
            .spawn(move || write_trials(store, session, &trials))
            .map_err(|e| AppError::Telemetry(format!("cannot start the store thread: {e}")))?;
        Ok(Self { sink, thread })
    }

    /// The analysis thread's end: where finished trials go.
    pub fn sink(&self) -> TrialSink {
        self.sink.clone()
    }

    /// Waits for every trial sent so far to be written (the other senders must be gone: the telemetry has
    /// finished) and returns the store and the report.
    pub fn finish(self) -> Result<(Store, RecorderReport), AppError> {
        drop(self.sink);
        self.thread.join().map_err(|_| AppError::Telemetry("the store thread panicked".into()))
    }
}

fn write_trials(mut store: Store, session: i64, trials: &Receiver<FinishedTrial>) -> (Store, RecorderReport) {
    let mut report = RecorderReport::default();
    for t in trials {
        match store.put_trial(session, &t.row, t.effort_provisional) {
            Ok(()) => report.stored += 1,
            Err(e) => {
                report.failed += 1;
                if report.first_error.is_none() {
                    let text = format!("patient store: {e} (the session goes on; its files are written as usual)");
                    tracing::warn!("{text}");
                    eprintln!("warning: {text}");
                    report.first_error = Some(e.to_string());
                }
            }
        }
    }
    (store, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewSession;

    fn row(trial: usize) -> crate::summary::TrialRow {
        crate::summary::TrialRow {
            block: 0,
            block_name: "b".into(),
            trial,
            mode: "Passive".into(),
            target_m: [0.0; 3],
            reached: true,
            duration_s: 1.0,
            final_error_m: 0.01,
            rms_error_rad: 0.01,
            reaction_time_s: None,
            movement_time_s: None,
            peak_speed_m_s: 0.0,
            speed_peaks: 0,
            path_length_ratio: None,
            max_perpendicular_deviation_m: None,
            initial_direction_error_rad: None,
            sparc: None,
            ldlj: None,
            normalized_jerk: None,
            rom_rad: vec![0.1],
            effort_j: 0.0,
            assistance_j: 0.0,
            effort_share: None,
            true_effort_j: None,
            true_effort_share: None,
            assistance_rms_nm: 0.0,
            emken_stiffness_nm_rad: 0.0,
            arm_support: 0.3,
            law_weight_share: 0.0,
        }
    }

    /// A database that fails mid-session (here: its trials table dropped by another process) costs the trials it
    /// cannot store, counted and reported; the sender never blocks or fails, the writer ends when asked.
    #[test]
    fn a_store_that_fails_mid_session_is_reported_and_never_blocks_the_sender() {
        let d = std::env::temp_dir().join(format!("plexo-recorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let path = d.join("plexo.db");
        let mut store = Store::open(&path).unwrap();
        let mut spec = plexo_sim::PatientProfile::builtin("mild").unwrap().spec().clone();
        spec.id = "F-1".into();
        store.add_patient(&spec, None).unwrap();
        let id = store.begin_session(&NewSession { patient_id: "F-1".into(), ..NewSession::default() }).unwrap();
        let recorder = Recorder::start(store, id).unwrap();
        let sink = recorder.sink();
        sink.send(FinishedTrial { row: row(0), effort_provisional: false, held_extremes_rad: Vec::new() }).unwrap();
        // Let the first trial land, then break the database under the writer.
        let other = Store::open(&path).unwrap();
        let start = std::time::Instant::now();
        while other.trials(id).unwrap().is_empty() {
            assert!(start.elapsed() < std::time::Duration::from_secs(10), "the first trial is never stored");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        other.conn.execute_batch("DROP TABLE trials").unwrap();
        for t in 1..4 {
            sink.send(FinishedTrial { row: row(t), effort_provisional: false, held_extremes_rad: Vec::new() }).unwrap();
        }
        drop(sink);
        let (_, report) = recorder.finish().unwrap();
        assert_eq!((report.stored, report.failed), (1, 3));
        assert!(report.first_error.unwrap().contains("trials"));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
