//! The patient store (issue 15) through the `plexo` binary: a course of sessions stored under a pseudonymous id and
//! its report checked against the store, a session killed with SIGKILL mid-way, a second process reading during
//! a session, export and delete, and `plexo analyze` of an external recording.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use plexo::store::Store;

/// The `plexo` binary under test (`PLEXO_TEST_BIN` overrides, as in the other end-to-end tests).
fn bin() -> String {
    std::env::var("PLEXO_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_plexo").to_owned())
}

fn plexo(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin()).args(args).current_dir(dir).output().expect("the plexo binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = plexo(dir, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "plexo {args:?}: {}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plexo-store").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

/// The values of the cells `data-key="key"` of the report's session rows, in session order.
fn report_column(html: &str, key: &str) -> Vec<Option<f64>> {
    let table = &html[html.find("id=\"sessions\"").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    let marker = format!("<td data-key=\"{key}\">");
    table
        .match_indices(&marker)
        .map(|(i, _)| {
            let rest = &table[i + marker.len()..];
            rest[..rest.find('<').unwrap()].parse().ok()
        })
        .collect()
}

fn mean(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let v: Vec<f64> = values.flatten().filter(|v| v.is_finite()).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn close(report: Option<f64>, store: Option<f64>, what: &str, session: usize) {
    match (report, store) {
        (Some(r), Some(s)) => {
            assert!((r - s).abs() <= 1e-4 * s.abs().max(1.0), "{what} of session {session}: report {r}, store {s}")
        }
        (r, s) => assert_eq!(r.is_some(), s.is_some(), "{what} of session {session}: report {r:?}, store {s:?}"),
    }
}

#[test]
fn a_ten_session_course_under_an_id_gives_a_report_whose_numbers_are_the_stores() {
    let dir = scratch("course");
    let short = repo("tests/study/center-out-short.toml");
    ok(&dir, &["patient", "add", "C-01", "--virtual", "moderate"]);
    let session = |extra: &[&str]| {
        let mut args =
            vec!["sim", "--patient-id", "C-01", "--protocol", &short, "--plant", "articulated", "--no-save", "-q"];
        args.extend_from_slice(extra);
        ok(&dir, &args)
    };
    let first = session(&[]);
    assert!(first.contains("first stored session"), "{first}");
    for _ in 1..5 {
        let out = session(&[]);
        assert!(out.contains("resuming from plexo-data/plexo.db (patient C-01"), "the stored state resumes: {out}");
    }
    // The therapist narrows the elbow's range after a measurement, then changes the controller configuration.
    ok(&dir, &["patient", "set-rom", "C-01", "elbow_flexion", "0.3", "2.0"]);
    let controller = repo("assets/configs/controller.toml");
    for _ in 5..10 {
        session(&["--controller", &controller, "--notes", "new gains"]);
    }

    ok(&dir, &["report", "--patient-id", "C-01", "--out", "report.html"]);
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let store = Store::open(&dir.join("plexo-data/plexo.db")).unwrap();
    store.check_integrity().unwrap();
    let sessions = store.sessions("C-01").unwrap();
    assert_eq!(sessions.len(), 10);
    let columns = [
        "trials",
        "success",
        "sparc",
        "movement_time_s",
        "path_length_ratio",
        "assistance_j",
        "effort_share",
        "rom_elbow_flexion",
    ];
    let report: Vec<Vec<Option<f64>>> = columns.iter().map(|k| report_column(&html, k)).collect();
    for (i, s) in sessions.iter().enumerate() {
        let trials = store.trials(s.id).unwrap();
        assert!(s.outcome.as_deref() == Some("completed") && s.state_toml.is_some(), "{s:?}");
        assert_eq!(trials.len(), 16, "every trial of the short protocol is stored");
        assert!(trials.iter().all(|t| !t.effort_provisional), "the relaxed block's trials were re-estimated");
        let rows = || trials.iter().map(|t| &t.row);
        let effort: f64 = rows().map(|r| r.effort_j).sum();
        let assist: f64 = rows().map(|r| r.assistance_j).sum();
        let elbow = s.joints.iter().position(|j| j == "elbow_flexion").unwrap();
        let expected = [
            Some(trials.len() as f64),
            Some(rows().filter(|r| r.reached).count() as f64 / trials.len() as f64),
            mean(rows().map(|r| r.sparc)),
            mean(rows().map(|r| r.movement_time_s)),
            mean(rows().map(|r| r.path_length_ratio)),
            mean(rows().map(|r| Some(r.assistance_j))),
            Some(effort / (effort + assist)),
            rows().map(|r| r.rom_rad[elbow]).reduce(f64::max),
        ];
        for (c, key) in columns.iter().enumerate() {
            close(report[c][i], expected[c], key, i + 1);
        }
    }
    assert!(report[2].iter().all(Option::is_some), "SPARC is defined in every session");
    // The controller change is marked at session 6 and only there; the new range is the spec's, with its history.
    assert_ne!(sessions[5].controller_hash, sessions[4].controller_hash);
    assert_eq!(html.matches("class=\"changed\"").count(), 1, "one controller change");
    let changed_row = html.find("class=\"changed\"").unwrap();
    assert!(html[changed_row..].starts_with("class=\"changed\"><td>6</td>"), "marked at session 6");
    assert!(html.contains("set-rom elbow_flexion [0.3, 2] rad"), "the spec history");
    assert!(html.contains("<td class=\"l\">elbow_flexion</td><td>0.300</td><td>2.000</td>"), "the current spec");
    assert!(html.matches("<figure data-plot=").count() == 7 || html.contains("No plots:"), "plots or the reason");
    assert!(sessions[9].notes.as_deref() == Some("new gains"));

    // Export: JSON with everything, CSV with one row per trial; files 0600.
    ok(&dir, &["patient", "export", "C-01", "--out", "c01.json"]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("c01.json")).unwrap()).unwrap();
    assert_eq!(json["sessions"].as_array().unwrap().len(), 10);
    assert_eq!(json["sessions"][3]["trials"].as_array().unwrap().len(), 16);
    assert_eq!(json["spec_history"].as_array().unwrap().len(), 2);
    let csv = ok(&dir, &["patient", "export", "C-01", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 1 + 160, "a header and one row per trial");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(dir.join("c01.json")).unwrap().permissions().mode() & 0o777, 0o600);

    // Delete removes everything about the id.
    let refused = plexo(&dir, &["patient", "delete", "C-01"]);
    assert!(!refused.status.success(), "delete needs --yes");
    ok(&dir, &["patient", "delete", "C-01", "--yes"]);
    let counts = store.counts().unwrap();
    assert!(counts.values().all(|n| *n == 0), "nothing left: {counts:?}");
    let gone = plexo(&dir, &["report", "--patient-id", "C-01"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("no patient \"C-01\""));
}

#[test]
fn a_session_killed_with_sigkill_keeps_its_finished_trials_while_another_process_reads() {
    let dir = scratch("kill");
    ok(&dir, &["patient", "add", "K-01", "--virtual", "moderate"]);
    // The default protocol (154 trials) unpaced: seconds of wall time, time enough to read and to kill it
    // mid-way. (Not paced at wall clock: on a loaded machine a paced loop can end early by its watchdog.)
    let mut child = Command::new(bin())
        .args(["sim", "--patient-id", "K-01", "--plant", "articulated", "--no-save", "-q"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A second process reads the store while the session writes it (an export, as a clinic's script would).
    let start = Instant::now();
    let mut reads = 0;
    let stored = loop {
        let out = plexo(&dir, &["patient", "export", "K-01", "--format", "csv"]);
        assert!(out.status.success(), "a reader is never refused: {}", String::from_utf8_lossy(&out.stderr));
        reads += 1;
        let trials = String::from_utf8_lossy(&out.stdout).lines().count() - 1;
        if trials >= 10 {
            break trials;
        }
        assert!(child.try_wait().unwrap().is_none(), "the session ended before it was killed");
        assert!(start.elapsed() < Duration::from_secs(60), "no trial stored in 60 s ({trials} so far)");
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert!(reads > 1, "the store was read while the session ran");

    let store = Store::open(&dir.join("plexo-data/plexo.db")).unwrap();
    store.check_integrity().unwrap();
    let sessions = store.sessions("K-01").unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!((sessions[0].ended_at.as_deref(), sessions[0].outcome.as_deref()), (None, None), "no end recorded");
    let trials = store.trials(sessions[0].id).unwrap();
    assert!(trials.len() >= stored, "every trial committed before the kill is there: {} < {stored}", trials.len());
    let planned: i64 = store.blocks(sessions[0].id).unwrap().iter().map(|b| b.planned_trials).sum();
    assert!((trials.len() as i64) < planned, "the session was killed before its end ({planned} trials planned)");
    // Trials arrive in order: the first `n` of the protocol, none missing.
    let mut next = (0, 0);
    for t in &trials {
        let at = (t.row.block, t.row.trial);
        assert!(at == next || at == (next.0 + 1, 0), "trial {at:?} after {next:?}: one is missing");
        next = (at.0, at.1 + 1);
    }
    assert!(trials.iter().all(|t| t.row.duration_s > 0.0 && t.row.final_error_m.is_finite()));
    // The report says the session has no end; the next session resumes from the last state recorded (none yet).
    ok(&dir, &["report", "--patient-id", "K-01", "--out", "k.html"]);
    assert!(std::fs::read_to_string(dir.join("k.html")).unwrap().contains("no end recorded"));
}

#[test]
fn a_reader_holding_the_store_for_a_whole_session_neither_blocks_nor_corrupts_it() {
    let dir = scratch("reader");
    ok(&dir, &["patient", "add", "R-01", "--virtual", "mild"]);
    let db = dir.join("plexo-data/plexo.db");
    // An open read transaction for the whole session (a long export), in another connection.
    let reader = rusqlite_reader(&db);
    let start = Instant::now();
    let out = ok(
        &dir,
        &[
            "sim",
            "--patient-id",
            "R-01",
            "--protocol",
            &repo("tests/study/center-out-short.toml"),
            "--plant",
            "articulated",
            "--no-save",
            "-q",
        ],
    );
    assert!(start.elapsed() < Duration::from_secs(120));
    assert!(out.contains("16 trial writes committed") || out.contains("trial writes committed"), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
    drop(reader);
    let store = Store::open(&db).unwrap();
    store.check_integrity().unwrap();
    let s = &store.sessions("R-01").unwrap()[0];
    assert_eq!(s.outcome.as_deref(), Some("completed"));
    assert_eq!(store.trials(s.id).unwrap().len(), 16);
}

/// A store connection inside an open read transaction (what a long-running reader holds).
fn rusqlite_reader(db: &Path) -> Store {
    let store = Store::open(db).unwrap();
    store.begin_read().unwrap();
    assert!(store.patients().unwrap().iter().any(|p| p.id == "R-01"));
    store
}

#[test]
fn plexo_analyze_measures_a_minimum_jerk_reach_and_names_the_bad_line() {
    let dir = scratch("analyze");
    let mut csv = String::from("t,x,y,z\n");
    for i in 0..=300 {
        let t = i as f64 / 200.0;
        let s = ((t - 0.25) / 1.0).clamp(0.0, 1.0);
        csv.push_str(&format!("{t},{},0.0,0.0\n", 0.15 * (10.0 * s.powi(3) - 15.0 * s.powi(4) + 6.0 * s.powi(5))));
    }
    std::fs::write(dir.join("reach.csv"), &csv).unwrap();
    let json: serde_json::Value = serde_json::from_str(&ok(&dir, &["analyze", "reach.csv", "--json"])).unwrap();
    assert_eq!(json["kind"], "hand");
    let m = &json["metrics"];
    // Minimum-jerk: peak speed 1.875 d/T; onset/offset at 10 % of it, phase p with 30 p²(1−p)² = 0.1875.
    let p = (1.0 - (1.0 - 4.0 * (0.1875f64 / 30.0).sqrt()).sqrt()) / 2.0;
    assert!((m["movement_time"].as_f64().unwrap() - (1.0 - 2.0 * p)).abs() < 0.03, "{m}");
    assert!((m["peak_speed"].as_f64().unwrap() - 1.875 * 0.15).abs() < 0.01, "{m}");
    assert_eq!(m["speed_peaks"], 1);
    let table = ok(&dir, &["analyze", "reach.csv"]);
    assert!(table.contains("movement time") && table.contains("SPARC"), "{table}");
    std::fs::write(dir.join("bad.csv"), "t,x,y,z\n0,0,0,0\n0.01,0,0\n").unwrap();
    let bad = plexo(&dir, &["analyze", "bad.csv"]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("bad.csv:3:"), "{err}");
}

#[test]
fn plexo_run_with_a_stored_patient_records_the_session_and_resumes_from_the_store_or_a_file() {
    let dir = scratch("run");
    std::fs::copy(repo("assets/configs/plexo-arm4-hardware.toml"), dir.join("hw.toml")).unwrap();
    ok(&dir, &["patient", "add", "H-01", "--virtual", "mild"]);
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--hardware", "hw.toml", "--emulate", "articulated", "--patient-id", "H-01"];
        args.extend_from_slice(&["--i-confirm-the-patient-is-safe", "-q"]);
        args.extend_from_slice(extra);
        ok(&dir, &args)
    };
    run(&["--home"]);
    let short = repo("tests/study/center-out-short.toml");
    let first = run(&["--protocol", &short, "--trials", "10", "--notes", "dry run"]);
    assert!(first.contains("first stored session"), "{first}");
    // Kept aside: a session started within the same second has the same name and would overwrite it.
    let state = first.lines().find_map(|l| l.strip_prefix("session state saved to ")).unwrap();
    std::fs::copy(dir.join(state.split(' ').next().unwrap()), dir.join("first.state.toml")).unwrap();
    let state = "first.state.toml";
    let second = run(&["--protocol", &short, "--trials", "3"]);
    assert!(second.contains("resuming from plexo-data/plexo.db (patient H-01"), "{second}");
    // `--resume FILE` still works with a stored patient, and wins over the store's state.
    let third = run(&["--protocol", &short, "--trials", "2", "--resume", state]);
    assert!(third.contains(&format!("resuming from {state}")), "{third}");
    let store = Store::open(&dir.join("plexo-data/plexo.db")).unwrap();
    let sessions = store.sessions("H-01").unwrap();
    assert_eq!(sessions.iter().map(|s| s.kind.as_str()).collect::<Vec<_>>(), ["run"; 3]);
    assert_eq!(sessions[0].notes.as_deref(), Some("dry run"));
    assert_eq!(sessions[0].outcome.as_deref(), Some("trial limit reached"));
    let counts: Vec<usize> = sessions.iter().map(|s| store.trials(s.id).unwrap().len()).collect();
    assert_eq!(counts, [10, 3, 2]);
    // The state stored after the first session is the one its file holds.
    let file = std::fs::read_to_string(dir.join(state)).unwrap();
    let stored: toml::Table = toml::from_str(sessions[0].state_toml.as_deref().unwrap()).unwrap();
    assert_eq!(toml::from_str::<toml::Table>(&file).unwrap(), stored);
}

#[test]
fn a_range_of_motion_assessment_recording_sets_the_measured_ranges() {
    let dir = scratch("assess");
    ok(&dir, &["patient", "add", "A-01", "--virtual", "severe"]);
    // The elbow swept from 0.35 to 1.95 rad and back (a cosine over 4 s at 100 Hz); the wrist held at -0.2..0.3.
    let mut csv = String::from("t,elbow_flexion,wrist_flexion\n");
    for i in 0..=400 {
        let t = i as f64 / 100.0;
        let phase = (std::f64::consts::PI * t / 2.0).cos();
        csv.push_str(&format!("{t},{},{}\n", 1.15 - 0.8 * phase, 0.05 - 0.25 * phase));
    }
    std::fs::write(dir.join("rom.csv"), csv).unwrap();
    ok(&dir, &["patient", "assess-rom", "A-01", "rom.csv"]);
    let store = Store::open(&dir.join("plexo-data/plexo.db")).unwrap();
    let spec = store.patient("A-01").unwrap().spec;
    let [lo, hi] = spec.range_of("elbow_flexion").unwrap();
    assert!((lo - 0.35).abs() < 2e-3 && (hi - 1.95).abs() < 2e-3, "[{lo}, {hi}]");
    let [lo, hi] = spec.range_of("wrist_flexion").unwrap();
    assert!((lo + 0.2).abs() < 2e-3 && (hi - 0.3).abs() < 2e-3, "[{lo}, {hi}]");
    let history = store.spec_history("A-01").unwrap();
    assert!(history.last().unwrap().reason.starts_with("assessment rom.csv: elbow_flexion, wrist_flexion"));
    // A column that is not one of the patient's joints is refused, naming it; the spec is unchanged.
    std::fs::write(dir.join("bad.csv"), "t,knee\n0,0\n0.1,0.1\n0.2,0.2\n").unwrap();
    let bad = plexo(&dir, &["patient", "assess-rom", "A-01", "bad.csv"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("`knee`"));
    assert_eq!(store.spec_history("A-01").unwrap().len(), history.len());
}

/// Runs `plexo sim --patient-id ID --assess-rom FILE` (articulated plant, no recording) with `extra` options and
/// returns stdout and the session summary's `assessment` section.
fn assess(dir: &Path, id: &str, extra: &[&str]) -> (String, serde_json::Value) {
    let protocol = repo("tests/assessment/elbow-short.toml");
    let mut args = vec!["sim", "--patient-id", id, "--assess-rom", &protocol, "--plant", "articulated"];
    args.extend_from_slice(&["--no-save", "-q", "--out", "out"]);
    args.extend_from_slice(extra);
    let out = ok(dir, &args);
    let summary = out.lines().find_map(|l| l.strip_prefix("summary saved to ")).expect("a summary").to_owned();
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(summary)).unwrap()).unwrap();
    (out, json["assessment"].clone())
}

fn pair(v: &serde_json::Value) -> [f64; 2] {
    [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
}

/// The range-of-motion assessment the robot runs (issue 15 §2), as a user runs it: a virtual patient whose
/// stored elbow range is a conservative earlier measurement is assessed in simulation; the measured range
/// becomes the stored one (the numbers are the run's own), the history keeps the old range and names the
/// session, the walls opened by no more than the assessment's widening, and center-out targets afterwards are
/// placed within the new range.
#[test]
fn a_robot_assessment_in_simulation_stores_the_measured_range_within_the_widened_walls() {
    let dir = scratch("assess-robot");
    ok(&dir, &["patient", "add", "R-01", "--virtual", "moderate"]);
    // Its elbow hangs at ≈ 0.16 rad in the torque-off check: the stored range must hold it (within the enable
    // allowance) for the robot to enable at all.
    ok(&dir, &["patient", "set-rom", "R-01", "elbow_flexion", "0.35", "1.6"]);
    let db = dir.join("plexo-data/plexo.db");
    let before = Store::open(&db).unwrap().patient("R-01").unwrap().spec;
    let (out, a) = assess(&dir, "R-01", &[]);
    assert!(out.contains("the walls open by at most 0.174 rad (10.0 deg)"), "the widening is announced: {out}");
    assert_eq!(a["stored"], true, "{a}");
    let widen = a["widen_rad"].as_f64().unwrap();
    assert!((widen - 0.1745).abs() < 1e-12, "the file's widening: {a}");
    let elbow = &a["joints"][0];
    assert_eq!(elbow["joint"], "elbow_flexion");
    let stored = pair(&elbow["stored_rad"]);
    let walls = pair(&elbow["walls_rad"]);
    let measured = pair(&elbow["measured_rad"]);
    let new = pair(&elbow["new_rad"]);
    assert_eq!(stored, [0.35, 1.6]);
    // The walls: at most `widen` beyond the stored range, within the robot's elbow limits [0, 2.3562] rad.
    assert!(walls[0] >= stored[0] - widen - 1e-9 && walls[1] <= stored[1] + widen + 1e-9, "{walls:?}");
    assert!(walls[0] >= 0.0 && walls[1] <= 2.3562 + 1e-9, "{walls:?}");
    // Velocity and torque limits no looser than therapy's (assessment, therapy).
    let v = pair(&elbow["velocity_max_rad_s"]);
    let t = pair(&elbow["torque_max_nm"]);
    assert!(v[0] < v[1] && t[0] < t[1], "tighter than therapy: {v:?} {t:?}");
    // The moderate patient's elbow moves beyond the conservative measurement (its tissue allows 0.2..2.25 rad),
    // so the range widens, and by no more than the walls allow.
    assert!(measured[0] < stored[0] - 0.03 && measured[1] > stored[1] + 0.03, "{measured:?} vs {stored:?}");
    assert!(measured[0] >= walls[0] && measured[1] <= walls[1], "{measured:?} within {walls:?}");
    assert_eq!(new, measured, "no end was bounded by the robot's own limit");
    // The store holds what the run measured; the history keeps the old range and names the session.
    let store = Store::open(&db).unwrap();
    let spec = store.patient("R-01").unwrap().spec;
    assert_eq!(spec.range_of("elbow_flexion"), Some(new));
    for joint in ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation"] {
        assert_eq!(spec.range_of(joint), before.range_of(joint), "{joint} was not assessed");
    }
    let sessions = store.sessions("R-01").unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].outcome.as_deref(), Some("completed"));
    let history = store.spec_history("R-01").unwrap();
    let last = history.last().unwrap();
    assert!(last.reason.contains("robot assessment") && last.reason.contains(&sessions[0].name), "{}", last.reason);
    let previous = plexo_kinematics::PatientSpec::from_toml_str(&history[history.len() - 2].spec_toml, "h").unwrap();
    assert_eq!(previous.range_of("elbow_flexion"), Some([0.35, 1.6]), "the history keeps the old range");
    // Cross-check with the run's own trials: the elbow swept at least the measured range (raw per-trial
    // excursions, independent of the held-extreme statistic) and each trial of the block is stored.
    let trials = store.trials(sessions[0].id).unwrap();
    assert_eq!(trials.len(), 2, "one low-high pair");
    let e = sessions[0].joints.iter().position(|j| j == "elbow_flexion").unwrap();
    let swept = trials.iter().map(|t| t.row.rom_rad[e]).fold(0.0, f64::max);
    assert!(swept >= measured[1] - measured[0] - 0.05, "swept {swept} rad, measured {measured:?}");

    // Afterwards a therapy session places its center-out targets within the new range: the targets it ran are
    // the ones the stored spec gives, and not the ones the old range gave.
    let short = repo("tests/study/center-out-short.toml");
    ok(&dir, &["sim", "--patient-id", "R-01", "--protocol", &short, "--plant", "articulated", "--trials", "3"]);
    let targets = |spec: &plexo_kinematics::PatientSpec| -> Vec<[f64; 3]> {
        use plexo::setup;
        let robot = setup::load_robot("plexo-arm4").unwrap();
        let model = &robot.value.0;
        let patient = setup::Loaded { value: setup::Patient::Clinical(spec.clone()), source: "spec".into() };
        let parts = setup::build_session(
            model,
            &setup::load_controller(None, "plexo-arm4").unwrap(),
            &setup::load_protocol(&short).unwrap(),
            &setup::patient_arm(&patient).unwrap(),
            &setup::patient_rom(model, &patient).unwrap(),
            &setup::patient_limits(model, &patient),
            &plexo_hal::JointInfo::from_model(model),
        )
        .unwrap();
        parts.blocks[0].targets.clone()
    };
    let csv_path = std::fs::read_dir(dir.join("out"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains("center-out-short") && p.to_string_lossy().ends_with(".trials.csv"))
        .expect("the therapy session's trial table");
    let csv = std::fs::read_to_string(csv_path).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let ran: Vec<[f64; 3]> = csv
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            ["target_x_m", "target_y_m", "target_z_m"].map(|c| f[col(c)].parse().unwrap())
        })
        .collect();
    let now = targets(&spec);
    let old = targets(&before);
    assert_eq!(ran.len(), 3);
    for (r, n) in ran.iter().zip(&now) {
        assert!(r.iter().zip(n).all(|(a, b)| (a - b).abs() < 1e-6), "ran {r:?}, the new range gives {n:?}");
    }
    let moved = now.iter().zip(&old).map(|(n, o)| n.iter().zip(o).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max));
    assert!(moved.fold(0.0, f64::max) > 1e-3, "the new range moves the targets: {now:?} vs {old:?}");
}

/// An assessment that does not complete — stopped by `--trials 1` (an orderly stop: the process succeeds) or
/// by the safety supervisor (the process fails) — stores nothing: the spec and its history are unchanged, the
/// output and the summary say why.
#[test]
fn a_stopped_robot_assessment_leaves_the_stored_range_unchanged() {
    let dir = scratch("assess-stopped");
    ok(&dir, &["patient", "add", "R-02", "--virtual", "moderate"]);
    ok(&dir, &["patient", "set-rom", "R-02", "elbow_flexion", "0.35", "1.6"]);
    let db = dir.join("plexo-data/plexo.db");
    let (spec, history) = {
        let store = Store::open(&db).unwrap();
        (store.patient("R-02").unwrap().spec, store.spec_history("R-02").unwrap())
    };
    let (out, a) = assess(&dir, "R-02", &["--trials", "1"]);
    assert_eq!(a["stored"], false, "{a}");
    assert!(a["not_stored_because"].as_str().unwrap().contains("trial limit reached"), "{a}");
    assert!(out.contains("nothing is stored"), "{out}");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.patient("R-02").unwrap().spec, spec, "the spec is unchanged");
    assert_eq!(store.spec_history("R-02").unwrap(), history, "no history entry");
    assert_eq!(store.sessions("R-02").unwrap()[0].outcome.as_deref(), Some("trial limit reached"));
    // A safety stop: with a stored range that does not hold the relaxed arm (it hangs at ≈ 0.16 rad, beyond the
    // enable allowance of 0.15 rad below the wall at 0.6 - 0.1745 rad) the supervisor refuses to enable. The
    // process fails, the session is stored with its end, the spec is not touched.
    ok(&dir, &["patient", "add", "R-03", "--virtual", "moderate"]);
    ok(&dir, &["patient", "set-rom", "R-03", "elbow_flexion", "0.6", "1.6"]);
    let (spec3, history3) = (store.patient("R-03").unwrap().spec, store.spec_history("R-03").unwrap());
    let protocol = repo("tests/assessment/elbow-short.toml");
    let args = ["sim", "--patient-id", "R-03", "--assess-rom", &protocol, "--plant", "articulated", "--no-save", "-q"];
    let stopped = plexo(&dir, &args);
    let stdout = String::from_utf8_lossy(&stopped.stdout);
    assert!(!stopped.status.success() && stdout.contains("SAFETY STOP"), "{stdout}");
    assert!(stdout.contains("nothing is stored"), "{stdout}");
    assert_eq!(store.patient("R-03").unwrap().spec, spec3, "the spec is unchanged");
    assert_eq!(store.spec_history("R-03").unwrap(), history3, "no history entry");
    assert!(store.sessions("R-03").unwrap()[0].outcome.as_deref().unwrap().contains("SAFETY STOP"));
    // Without --patient-id there is no stored range to assess: refused before anything runs.
    let refused = plexo(&dir, &["sim", "--assess-rom", "--no-save", "-q"]);
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("--patient-id"));
}

/// The measured range depends on the virtual patient: with the same stored range (the same walls), the weak,
/// stiff severe profile measures a smaller elbow range than the mild one.
#[test]
fn a_weaker_stiffer_virtual_patient_measures_a_smaller_range() {
    let dir = scratch("assess-profiles");
    let mut spans = Vec::new();
    for (id, profile) in [("M-01", "mild"), ("S-01", "severe")] {
        ok(&dir, &["patient", "add", id, "--virtual", profile]);
        ok(&dir, &["patient", "set-rom", id, "elbow_flexion", "0.2", "2.2"]);
        let (_, a) = assess(&dir, id, &[]);
        assert_eq!(a["stored"], true, "{a}");
        let [lo, hi] = pair(&a["joints"][0]["measured_rad"]);
        spans.push((profile, lo, hi, hi - lo, pair(&a["joints"][0]["walls_rad"])));
    }
    let (mild, severe) = (spans[0], spans[1]);
    assert_eq!(mild.4, severe.4, "the same walls for both");
    assert!(severe.3 < mild.3 - 0.1, "severe {severe:?} vs mild {mild:?}");
}

/// The same assessment through `plexo run` on emulated drives (the clinic's code path: hardware configuration,
/// CAN drives, paced loop off with `--emulate`): the stored range becomes the measured one, the history names
/// the run's session.
#[test]
fn plexo_run_assesses_the_range_of_motion_on_emulated_drives_and_stores_it() {
    let dir = scratch("assess-run");
    std::fs::copy(repo("assets/configs/plexo-arm4-hardware.toml"), dir.join("hw.toml")).unwrap();
    ok(&dir, &["patient", "add", "H-02", "--virtual", "moderate"]);
    ok(&dir, &["patient", "set-rom", "H-02", "elbow_flexion", "0.35", "1.6"]);
    let hw = ["run", "--hardware", "hw.toml", "--emulate", "articulated", "--patient-id", "H-02"];
    let confirm = ["--i-confirm-the-patient-is-safe", "-q"];
    ok(&dir, &[&hw[..], &["--home"], &confirm[..]].concat());
    let protocol = repo("tests/assessment/elbow-short.toml");
    let out = ok(&dir, &[&hw[..], &["--assess-rom", &protocol, "--out", "out"], &confirm[..]].concat());
    let summary = out.lines().find_map(|l| l.strip_prefix("summary saved to ")).expect("a summary");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join(summary)).unwrap()).unwrap();
    let a = &json["assessment"];
    assert_eq!(a["stored"], true, "{a}");
    let new = pair(&a["joints"][0]["new_rad"]);
    let walls = pair(&a["joints"][0]["walls_rad"]);
    assert!(walls[0] >= 0.35 - 0.1745 - 1e-9 && walls[1] <= 1.6 + 0.1745 + 1e-9, "{walls:?}");
    let store = Store::open(&dir.join("plexo-data/plexo.db")).unwrap();
    assert_eq!(store.patient("H-02").unwrap().spec.range_of("elbow_flexion"), Some(new));
    let session = &store.sessions("H-02").unwrap()[0];
    assert_eq!((session.kind.as_str(), session.outcome.as_deref()), ("run", Some("completed")));
    assert!(store.spec_history("H-02").unwrap().last().unwrap().reason.contains(&session.name));
}
