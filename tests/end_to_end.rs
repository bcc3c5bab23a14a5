//! End-to-end tests of the `plexo` binary as a user runs it: a short simulated session produces a Rerun
//! recording with the expected entity paths (read back with the rrd decoder) and the block summary; bad
//! configuration exits non-zero with a message naming file, key and range; `run` refuses to start unless every
//! check passes and the operator confirms.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use plexo::telemetry::{entities, layout};

/// Sessions paced at the wall clock (`--realtime`) share the 2 CI cores with the other tests' unpaced sessions, which
/// run flat out: with both cores busy the paced loop woke 20–30 ms late and its watchdog stopped it (regression:
/// `a_viewer_that_dies_…` and `sigterm_and_sighup_…` failed in a full run and passed alone). A paced test holds this
/// lock exclusively ([`wall_clock_exclusive`]); every other test holds it shared for its whole run ([`unpaced`]), its
/// child processes and its own work (reading recordings back) included: a paced session held only against the other
/// children still met a 49 ms watchdog stop while other tests decoded recordings in-process.
static WALL_CLOCK: std::sync::RwLock<()> = std::sync::RwLock::new(());

/// Shared hold of [`WALL_CLOCK`] for a test that runs no paced session (a test that failed while holding the lock
/// does not poison it for the others).
fn unpaced() -> std::sync::RwLockReadGuard<'static, ()> {
    WALL_CLOCK.read().unwrap_or_else(|e| e.into_inner())
}

/// Exclusive hold of [`WALL_CLOCK`] for a test that runs a session paced at the wall clock.
fn wall_clock_exclusive() -> std::sync::RwLockWriteGuard<'static, ()> {
    WALL_CLOCK.write().unwrap_or_else(|e| e.into_inner())
}

fn plexo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexo")).args(args).output().expect("the plexo binary runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plexo-e2e").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

#[test]
fn short_sim_session_writes_a_recording_with_the_expected_entities_and_a_summary() {
    let _shared = unpaced();
    let dir = scratch("sim");
    let rrd = dir.join("session.rrd");
    let out = plexo(&[
        "sim",
        "--plant",
        "articulated",
        "--trials",
        "3",
        "--seed",
        "7",
        "-q",
        "--save",
        rrd.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "sim failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("trial limit reached"), "{stdout}");
    assert!(stdout.contains("passive warm-up") && stdout.contains("success"), "block table missing:\n{stdout}");
    assert!(stdout.contains("0 dropped"), "telemetry dropped samples:\n{stdout}");
    assert!(stdout.contains(&format!("recording saved to {}", rrd.display())), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("session.summary.json")).unwrap()).unwrap();
    let summary = plexo::replay_cmd::read_rrd(&rrd).expect("the recording decodes");
    assert!(summary.complete, "the recording ends with its footer");
    assert_eq!(summary.recordings, vec!["plexo".to_owned()]);
    // One timeline on every row: no `tick`, no wall-clock `log_time`.
    assert_eq!(summary.timelines, vec![entities::SIM_TIME.to_owned()]);
    let session = stdout
        .lines()
        .find_map(|l| l.strip_prefix("session ").and_then(|l| l.split(':').next()))
        .unwrap_or_else(|| panic!("no session line:\n{stdout}"));
    assert!(session.starts_with("center-out_"), "{stdout}");
    assert_eq!(summary.name.as_deref(), Some(session), "the recording is named after the session");
    let property = |field: &str| summary.properties.get(&format!("session/{field}")).cloned().unwrap_or_default();
    assert!(property("robot").starts_with("plexo-arm4"), "{:?}", summary.properties);
    assert_eq!(property("seed"), "7");
    // The pseudonymous id, as in the session's name.
    assert_eq!(property("patient"), "sim-moderate", "{:?}", summary.properties);
    assert!(session.contains("_sim-moderate_"), "{session}");
    assert!(property("protocol").contains("center-out"), "{:?}", summary.properties);
    assert!(property("controller").contains("controller"), "{:?}", summary.properties);
    assert_eq!(property("software"), format!("plexo {}", env!("CARGO_PKG_VERSION")));
    assert_eq!(property("telemetry_rate_hz"), "250");

    // The blueprint: 3D view, session panel, events, and three panels per joint.
    assert!(summary.blueprint_activated, "the blueprint is activated");
    let joints = ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"];
    let views = &summary.blueprint_views;
    assert_eq!(views.len(), layout::view_count(joints.len()), "{views:?}");
    for joint in joints {
        for (panel, _) in layout::JOINT_PANELS {
            let title = layout::joint_panel_title(joint, panel);
            assert!(views.contains(&title), "view `{title}` missing: {views:?}");
        }
    }
    for title in [layout::ARM_PANEL, layout::SESSION_PANEL, layout::TRIALS_PANEL, layout::EVENTS_PANEL] {
        assert!(views.iter().any(|v| v == title), "view `{title}` missing: {views:?}");
    }

    let mut expected = vec![
        entities::WORLD.to_owned(),
        entities::robot_link("upper_arm_link"),
        entities::robot_link("forearm_link"),
        entities::link_visual("upper_arm_link", 0),
        entities::HAND.to_owned(),
        entities::TARGET.to_owned(),
        entities::TARGETS.to_owned(),
        entities::EVENTS.to_owned(),
        entities::ANNOTATIONS.to_owned(),
    ];
    expected.extend(entities::SERIES_GROUPS.iter().map(|group| group.path.to_owned()));
    for path in &expected {
        // Rerun writes entity paths rooted: `/world/hand`.
        let e = summary.entities.get(&format!("/{path}")).unwrap_or_else(|| panic!("entity /{path} missing"));
        assert!(e.rows > 0, "entity {path} has no rows");
    }
    // One entity per plot group (position, torque, stiffness), no per-joint or per-quantity entities.
    let joint_entities: Vec<&String> = summary.entities.keys().filter(|p| p.starts_with("/joints/")).collect();
    assert_eq!(joint_entities.len(), 3, "{joint_entities:?}");
    // Every 4th sample at 250 Hz of a 1 kHz loop; each row holds the 4 joints; large chunks.
    let samples = json["telemetry"]["samples"].as_u64().unwrap() as usize;
    let rows = json["telemetry"]["series_rows"].as_u64().unwrap() as usize;
    assert_eq!(json["telemetry"]["series_rate_hz"].as_f64(), Some(250.0));
    assert!(rows.abs_diff(samples / 4) <= 1, "{rows} rows for {samples} samples at a quarter of the loop rate");
    // Rows inside a run of unchanged rows are left out (the plotted line is the same): a moving signal keeps
    // (almost) every row, a held one (the stiffness of a passive block) a handful. Every row holds all of its
    // group's instances (the torque's 12: simulation has the true patient torque).
    for group in entities::SERIES_GROUPS {
        let e = summary.entities[&format!("/{}", group.path)];
        assert!(e.rows <= rows + 1, "rows of {}: {} for {rows} samples (and its static style)", group.path, e.rows);
        assert_eq!(e.scalars, group.instances(4) * (e.rows - 1), "{}: every instance in every row", group.path);
        assert!(e.chunks <= rows / 200 + 2, "{}: {} chunks for {rows} rows", group.path, e.chunks);
    }
    let rows_of = |group: entities::SeriesGroup| summary.entities[&format!("/{}", group.path)].rows;
    assert!(rows_of(entities::POSITION) > rows * 9 / 10, "q moves: {} of {rows} rows", rows_of(entities::POSITION));
    assert!(
        rows_of(entities::STIFFNESS_GROUP) < rows / 20,
        "stiffness holds: {} of {rows} rows",
        rows_of(entities::STIFFNESS_GROUP)
    );
    // One point per trial on the trial plots (and the static style), as many as the summary's trials.
    for (path, _) in entities::TRIAL_SERIES {
        let e = summary.entities[&format!("/{path}")];
        assert_eq!((e.rows, e.scalars), (3 + 1, 3), "{path}: one point per trial");
    }
    assert_eq!(summary.trials, Some(3), "replay counts the trials");
    // Every trial's hand path is kept, one entity per trial, logged at the trial's end.
    let paths: Vec<&String> =
        summary.entities.keys().filter(|p| p.starts_with(&format!("/{}/", entities::HAND_PATHS))).collect();
    assert_eq!(paths.len(), 3, "one hand path per trial: {paths:?}");
    for trial in 0..3 {
        let e = summary.entities[&format!("/{}", entities::hand_path(0, trial))];
        assert_eq!(e.rows, 1, "trial {trial}: one line strip");
    }
    // The block boundaries on the plots: the started block's bar runs from its start to the session's end (the
    // trial limit stopped it inside the block) around every trial; the others are named but never drawn.
    let marker = summary.entities[&format!("/{}", entities::block_marker(0))];
    assert_eq!(marker.rows, 2 + 1, "start and end of the bar (and its static style)");
    let (start, end) = marker.time_range.expect("the bar is on the sim_time timeline");
    let path_times: Vec<(f64, f64)> =
        (0..3).map(|t| summary.entities[&format!("/{}", entities::hand_path(0, t))].time_range.unwrap()).collect();
    assert!(start < path_times[0].0 && end >= path_times[2].1, "block 0 from {start} to {end}, trials {path_times:?}");
    assert!((end - summary.last_time.unwrap()).abs() < 0.1, "the open block ends with the session: {end}");
    assert_eq!(
        summary.series_names.get(&format!("/{}", entities::block_marker(0))),
        Some(&vec![layout::block_marker_name(0, "passive warm-up")])
    );
    let blocks = json["blocks"].as_array().unwrap().len();
    let named = summary.entities.keys().filter(|p| p.starts_with(&format!("/{}/", entities::BLOCKS))).count();
    assert!(named >= blocks, "every block of the protocol has its marker's style: {named} for {blocks} blocks");
    // The fixed base is logged once (static), the moving links at every pose.
    assert!(summary.entities[&format!("/{}", entities::robot_link("base_link"))].is_static);
    let upper_arm = summary.entities[&format!("/{}", entities::robot_link("upper_arm_link"))];
    assert!(!upper_arm.is_static && upper_arm.rows > 100, "{upper_arm:?}");
    // The patient's arm, sized from the moderate profile's height and mass (de Leva 1996 via the anthropometric
    // model): plausible adult segment lengths and radii, each attached to its link.
    let patient = plexo::setup::load_patient("moderate").unwrap();
    let arm = plexo::setup::patient_arm(&patient).unwrap();
    let value = |entity: &str, component: &str| -> f32 {
        let v = summary.static_values.get(&(format!("/{entity}"), component.to_owned()));
        let v = v.unwrap_or_else(|| {
            panic!("{entity} has no {component}: {:?}", summary.static_components.get(&format!("/{entity}")))
        });
        assert_eq!(v.len(), 1, "{entity}: one capsule");
        v[0]
    };
    for ((segment, link), model) in entities::PATIENT_SEGMENTS.iter().zip([arm.upper_arm, arm.forearm, arm.hand]) {
        let entity = entities::patient_segment(link, segment);
        let (length, radius) = (value(&entity, "Capsules3D:lengths"), value(&entity, "Capsules3D:radii"));
        assert!((f64::from(length) - model.length).abs() < 1e-6, "{segment}: {length} m vs {}", model.length);
        let (lengths, radii) = match *segment {
            "upper_arm" => (0.25..0.36, 0.03..0.07),
            "forearm" => (0.22..0.32, 0.025..0.06),
            _ => (0.06..0.11, 0.02..0.06),
        };
        assert!(
            lengths.contains(&length) && radii.contains(&radius),
            "{segment}: length {length} m, radius {radius} m"
        );
    }
    // ≥ 3 trials of ≥ 2 s.
    assert!(rows > 1_500, "only {rows} rows of time series");

    assert_eq!(json["blocks"][0]["trials"], 3);
    assert_eq!(json["telemetry"]["dropped"], 0);
    // Unpaced: the recording is complete, one sample per tick (and one for the final torque-off).
    let (samples, ticks) = (json["telemetry"]["samples"].as_u64().unwrap(), json["timing"]["ticks"].as_u64().unwrap());
    assert!(samples >= ticks, "{samples} samples for {ticks} ticks");
    // The robot drives the passive reaches along minimum-jerk references: SPARC near a single bell's −1.6.
    let sparc = json["blocks"][0]["mean_sparc"].as_f64().unwrap();
    assert!((-3.0..=-1.3).contains(&sparc), "passive-block SPARC {sparc}");
    assert!(stdout.contains("SPARC"), "smoothness column missing:\n{stdout}");
    let share = json["blocks"][0]["patient_effort_share"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&share), "effort share {share}");
    // The tick's own compute time (plant step excluded) is reported: p50 <= p99 <= max, all positive.
    let compute = |k: &str| json["timing"][k].as_f64().unwrap_or_else(|| panic!("timing.{k} missing"));
    let (p50, p99, max) =
        (compute("tick_compute_p50_us"), compute("tick_compute_p99_us"), compute("tick_compute_max_us"));
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "tick compute p50 {p50}, p99 {p99}, max {max}");
    assert!(stdout.contains("tick compute"), "{stdout}");
    assert!(json["safety"]["active_ticks_limited"].as_u64().is_some(), "{json}");

    // `replay` lists the same recording.
    let out = plexo(&["replay", rrd.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(entities::TORQUE.path), "{stdout}");
    assert!(stdout.contains(&format!("blueprint: {} views", layout::view_count(4))), "{stdout}");
    assert!(stdout.contains("trials recorded: 3"), "{stdout}");
}

/// Issue 14's size at full rate, on a short session (a full one is too slow for a test): the 1 kHz series take
/// three rows per tick (position, torque, effort; the stiffness holds), every row of a group holds its named
/// instances, values lie on their documented grids, and every series a blueprint panel shows is in the file.
#[test]
fn a_full_rate_recording_holds_three_rows_per_tick_and_every_series_the_blueprint_shows() {
    let _shared = unpaced();
    let dir = scratch("full-rate");
    let rrd = dir.join("full.rrd");
    let args = ["sim", "--plant", "articulated", "--trials", "1", "-q", "--telemetry-rate", "1000", "--save"];
    let out = plexo(&[&args[..], &[rrd.to_str().unwrap()]].concat());
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "sim failed:\n{stdout}\n{stderr}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rrd.with_extension("summary.json")).unwrap()).unwrap();
    let samples = json["telemetry"]["samples"].as_u64().unwrap() as usize;
    assert_eq!(json["telemetry"]["series_rows"].as_u64().unwrap() as usize, samples, "every sample is a row");
    let summary = plexo::replay_cmd::read_rrd(&rrd).unwrap();
    assert_eq!(summary.properties.get("session/telemetry_rate_hz").map(String::as_str), Some("1000"));
    let joints: Vec<String> = ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"]
        .iter()
        .map(|j| (*j).to_owned())
        .collect();

    // Rows per tick: every time-series row of the recording (per-trial points and block bars included, static
    // styles excluded) is at most 3 per sample and a little: before the grouping it was ≈ 6 (q, q_ref, 3 torques,
    // assistance, effort share), and each row costs ≈ 14 bytes in the file whatever it holds.
    let series_rows: usize = summary
        .entities
        .iter()
        .filter(|(path, e)| e.scalars > 0 && !path.starts_with("/__"))
        .map(|(_, e)| e.rows - 1)
        .sum();
    assert!(series_rows <= 3 * samples + samples / 50, "{series_rows} series rows for {samples} samples");
    // The true patient torque moves on every tick: every sample is a torque row (and the static style), each
    // with the 12 instances: 3 torques × 4 joints.
    let torque = summary.entities[&format!("/{}", entities::TORQUE.path)];
    assert_eq!((torque.rows, torque.scalars), (samples + 1, 12 * samples), "{torque:?}");
    // The measured position holds only while the arm rests (the torque-off sensor check): the ends of the hold
    // are kept, the rows between them left out.
    let position = summary.entities[&format!("/{}", entities::POSITION.path)];
    assert!(position.rows <= samples + 1 && position.rows > samples * 9 / 10, "{position:?}");
    assert_eq!(position.scalars, 8 * (position.rows - 1), "q and q_ref of 4 joints per row: {position:?}");

    // Each grouped entity names its instances: joint, quantity and unit, in instance order.
    for group in entities::SERIES_GROUPS {
        let names = &summary.series_names[&format!("/{}", group.path)];
        assert_eq!(names, &group.names(&joints), "{}", group.path);
    }
    let torque_names = &summary.series_names[&format!("/{}", entities::TORQUE.path)];
    assert_eq!(torque_names[11], "elbow_flexion tau_patient_true [Nm]");
    assert_eq!(
        summary.series_names[&format!("/{}", entities::EFFORT.path)],
        vec!["assistance [Nm]".to_owned(), "patient effort share [0-1]".to_owned()]
    );

    // Every series the file's blueprint shows exists in the file: each time-series view queries entities that
    // hold rows, its visible-series override covers exactly the entity's named instances, and a joint's panels
    // show that joint's instances of the panel's quantities — the same panels as the layout lists.
    let panels = layout::time_series_panels(&joints);
    assert_eq!(panels.len(), 3 * 4 + 2);
    for panel in &panels {
        let view = summary.blueprint.get(&panel.title).unwrap_or_else(|| panic!("no view `{}`", panel.title));
        for series in &panel.series {
            let path = format!("/{}", series.path);
            assert!(view.contents.contains(&path), "{}: {path} not queried: {view:?}", panel.title);
            let e = summary.entities.get(&path).unwrap_or_else(|| panic!("{}: {path} not in the file", panel.title));
            assert!(e.scalars > 0 && !e.is_static, "{}: {path} holds no series: {e:?}", panel.title);
            let names = summary.series_names.get(&path).unwrap_or_else(|| panic!("{path} has no names"));
            assert_eq!(names.len(), series.of, "{path}");
            let shown: Vec<&String> = match view.visible_series.get(&path) {
                Some(visible) => {
                    assert_eq!(visible.len(), names.len(), "{}: {path}: {visible:?}", panel.title);
                    names.iter().zip(visible).filter(|(_, v)| **v).map(|(n, _)| n).collect()
                }
                None => names.iter().collect(),
            };
            let expected: Vec<&String> = series.shown.iter().map(|&k| &names[k]).collect();
            assert_eq!(shown, expected, "{}: {path}", panel.title);
        }
        if let Some(joint) = panel.title.split(':').next().filter(|j| joints.contains(&(*j).to_owned())) {
            for series in panel.series.iter().filter(|s| s.path.starts_with("joints/")) {
                for &k in &series.shown {
                    let name = &summary.series_names[&format!("/{}", series.path)][k];
                    assert!(name.starts_with(&format!("{joint} ")), "{}: shows {name}", panel.title);
                }
            }
        }
    }
    // `plexo replay` lists the grouped entities with their scalars per row (the last column).
    let out = plexo(&["replay", rrd.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let per_row = |path: &str| {
        let line = stdout.lines().find(|l| l.starts_with(&format!("/{path} "))).unwrap_or_else(|| panic!("{stdout}"));
        line.split_whitespace().last().unwrap_or_default().to_owned()
    };
    assert_eq!(per_row(entities::TORQUE.path), "12", "{stdout}");
    assert_eq!(per_row(entities::POSITION.path), "8", "{stdout}");
    assert_eq!(per_row(entities::EFFORT.path), "2", "{stdout}");
    let torque_panel = &summary.blueprint[&layout::joint_panel_title("elbow_flexion", "torque [Nm]")];
    let visible = &torque_panel.visible_series[&format!("/{}", entities::TORQUE.path)];
    assert_eq!(visible.iter().filter(|v| **v).count(), 3, "three torques of one joint: {visible:?}");
}

#[test]
fn a_telemetry_rate_of_zero_or_below_is_refused() {
    for bad in ["0", "-250", "nan"] {
        let out = plexo(&["sim", "--no-save", "-q", "--trials", "1", &format!("--telemetry-rate={bad}")]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "--telemetry-rate {bad} was accepted");
        assert!(stderr.contains("--telemetry-rate"), "{stderr}");
    }
}

#[test]
fn sim_over_emulated_mit_drives_runs_the_hardware_code_path() {
    let _shared = unpaced();
    let dir = scratch("over-can");
    let rrd = dir.join("can.rrd");
    let out = plexo(&[
        "sim",
        "--plant",
        "articulated",
        "--over-can",
        "mit",
        "--trials",
        "1",
        "-q",
        "--save",
        rrd.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "sim over CAN failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("trial limit reached"), "{stdout}");
}

#[test]
fn bad_controller_value_exits_nonzero_naming_file_key_and_range() {
    let _shared = unpaced();
    let dir = scratch("bad-controller");
    let original = std::fs::read_to_string(repo("assets/configs/controller.toml")).unwrap();
    let bad: String = original
        .lines()
        .map(|l| if l.starts_with("soft_start_time") { "soft_start_time = -1.0".to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(bad, original.trim_end(), "the test must change the file");
    let file = dir.join("controller.toml");
    std::fs::write(&file, bad).unwrap();
    for cmd in ["sim", "check"] {
        let out =
            plexo(&[cmd, "--controller", file.to_str().unwrap(), "--no-save"][..if cmd == "sim" { 4 } else { 3 }]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{cmd} accepted a negative soft start");
        assert!(stderr.contains(file.to_str().unwrap()), "{cmd}: file not named: {stderr}");
        assert!(stderr.contains("safety.soft_start_time"), "{cmd}: key not named: {stderr}");
        assert!(stderr.contains("[0.1, 10]"), "{cmd}: range not named: {stderr}");
    }
}

#[test]
fn unknown_key_exits_nonzero_naming_file_and_key() {
    let _shared = unpaced();
    let dir = scratch("unknown-key");
    let original = std::fs::read_to_string(repo("assets/configs/controller.toml")).unwrap();
    let file = dir.join("controller.toml");
    std::fs::write(&file, original.replace("[observer]\n", "[observer]\nbogus_gain = 3.0\n")).unwrap();
    let out = plexo(&["check", "--controller", file.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains(file.to_str().unwrap()) && stderr.contains("bogus_gain"), "{stderr}");
}

#[test]
fn check_prints_limits_safety_settings_and_the_bus_load_plan() {
    let _shared = unpaced();
    let out = plexo(&["check", "--hardware", &repo("assets/configs/plexo-arm4-hardware.toml")]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    for needle in ["joint limits", "elbow_flexion", "safety supervisor", "watchdog", "bus-load plan", "can0", "can1"] {
        assert!(stdout.contains(needle), "`{needle}` missing:\n{stdout}");
    }
}

#[test]
fn run_refuses_to_start_without_confirmation_and_on_an_invalid_config() {
    let _shared = unpaced();
    let hw = repo("assets/configs/plexo-arm4-hardware.toml");
    let out = plexo(&["run", "--hardware", &hw, "--can", "can0,can1", "--patient", "moderate", "-q"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--i-confirm-the-patient-is-safe"), "{stderr}");

    // An over-limit torque in the hardware file is caught by the check before any bus is opened.
    let dir = scratch("bad-hardware");
    let bad = std::fs::read_to_string(&hw).unwrap().replace("torque_max = 8.0", "torque_max = 80.0");
    let file = dir.join("hw.toml");
    std::fs::write(&file, bad).unwrap();
    let out = plexo(&[
        "run",
        "--hardware",
        file.to_str().unwrap(),
        "--can",
        "can0,can1",
        "--patient",
        "moderate",
        "--i-confirm-the-patient-is-safe",
        "-q",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("can.joints[3].limits") && stderr.contains("elbow_flexion"), "{stderr}");
    assert!(!stderr.contains("cannot open CAN interface"), "the bus must not be touched: {stderr}");
}

#[test]
fn model_prints_the_chain_as_text_and_json() {
    let _shared = unpaced();
    let out = plexo(&["model", "plexo-arm4"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("4 actuated joints"), "{stdout}");
    for joint in ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"] {
        assert!(stdout.contains(joint), "joint {joint} missing:\n{stdout}");
    }
    assert!(stdout.contains("handle"), "the handle frame is listed:\n{stdout}");

    let out = plexo(&["model", &repo("assets/robots/plexo-arm6.urdf"), "--json"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(json["dof"], 6);
    let joints = json["joints"].as_array().unwrap();
    assert_eq!(joints.len(), 6);
    assert_eq!(joints[0]["parent"], serde_json::Value::Null, "the first joint hangs off the base");
    assert_eq!(joints[1]["parent"], joints[0]["name"]);
    let mass = json["total_mass_kg"].as_f64().unwrap();
    let sum: f64 = joints.iter().map(|j| j["body_mass_kg"].as_f64().unwrap()).sum();
    assert!(mass >= sum - 1e-9 && mass > 1.0, "total mass {mass} vs moving bodies {sum}");
    for j in joints {
        let (lo, hi) = (j["lower"].as_f64().unwrap(), j["upper"].as_f64().unwrap());
        assert!(lo < hi && j["effort"].as_f64().unwrap() > 0.0, "limits of {}", j["name"]);
    }
}

#[test]
fn model_of_a_bad_urdf_exits_nonzero_naming_the_file_and_the_link() {
    let _shared = unpaced();
    let dir = scratch("bad-urdf");
    let file = dir.join("broken.urdf");
    let urdf = r#"<robot name="broken">
  <link name="base"/>
  <link name="arm"><inertial><mass value="1"/><inertia ixx="0.01" iyy="0.01" izz="0.01" ixy="0" ixz="0" iyz="0"/></inertial></link>
  <joint name="shoulder" type="revolute">
    <parent link="torso"/><child link="arm"/><axis xyz="0 0 1"/>
    <limit lower="-1" upper="1" velocity="2" effort="10"/>
  </joint>
</robot>"#;
    std::fs::write(&file, urdf).unwrap();
    let out = plexo(&["model", file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a URDF with a missing parent link was accepted:\n{stdout}");
    assert!(stderr.contains(file.to_str().unwrap()), "file not named: {stderr}");
    assert!(stderr.contains("torso"), "the missing link is not named: {stderr}");

    let out = plexo(&["model", "plexo-arm9"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("plexo-arm4"), "the error lists the embedded robots");
}

/// The default protocol's passive warm-up (16 trials: 8 targets out and back) and the first 2 trials of the
/// first Emken block.
const RESUME_TRIALS: &str = "18";

#[test]
fn a_second_session_resumes_the_adaptation_and_the_virtual_patient_of_the_first() {
    let _shared = unpaced();
    let dir = scratch("resume");
    let run = |name: &str, resume: Option<&Path>| {
        let rrd = dir.join(format!("{name}.rrd"));
        let mut args = vec!["sim", "--plant", "articulated", "--trials", RESUME_TRIALS, "--seed", "11", "-q"]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
        args.extend(["--save".to_owned(), rrd.display().to_string()]);
        if let Some(r) = resume {
            args.extend(["--resume".to_owned(), r.display().to_string()]);
        }
        let out = Command::new(env!("CARGO_BIN_EXE_plexo")).args(&args).output().unwrap();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{name}:\n{stdout}\n{stderr}");
        let state_path = rrd.with_extension("state.toml");
        assert!(stdout.contains(&format!("session state saved to {}", state_path.display())), "{stdout}");
        let state: toml::Value = toml::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
        (state_path, state, stdout)
    };
    let (first_path, first, _) = run("first", None);
    assert_eq!(first["sessions"].as_integer(), Some(1));
    assert_eq!(first["adaptation"]["trials"].as_integer(), Some(2), "two Emken trials, adapted once each");
    assert_eq!(first["virtual_patient"]["trials"].as_integer(), Some(18));
    let stiffness = |s: &toml::Value| -> Vec<f64> {
        s["adaptation"]["emken_stiffness"].as_array().unwrap()[..4].iter().map(|v| v.as_float().unwrap()).collect()
    };

    let (_, second, stdout) = run("second", Some(&first_path));
    assert!(stdout.contains("resuming from") && stdout.contains("session 2 of the series"), "{stdout}");
    assert_eq!(second["sessions"].as_integer(), Some(2));
    assert_eq!(second["adaptation"]["trials"].as_integer(), Some(4), "the adaptive trial count continues");
    assert_eq!(second["virtual_patient"]["trials"].as_integer(), Some(36), "the virtual patient continues");

    // Without --resume the same seed reproduces the first session, so the second session's stiffness differs
    // from a fresh one's only because it started from the first session's.
    let (_, fresh, _) = run("fresh", None);
    assert_eq!(stiffness(&fresh), stiffness(&first), "same seed, same session");
    assert_ne!(stiffness(&second), stiffness(&first), "the resumed session adapted further");
}

#[test]
fn resuming_a_state_for_another_robot_fails_naming_the_file_and_the_field() {
    let _shared = unpaced();
    let dir = scratch("resume-bad");
    let rrd = dir.join("s.rrd");
    let out = plexo(&["sim", "--plant", "articulated", "--trials", "1", "-q", "--save", rrd.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let state = rrd.with_extension("state.toml");
    let bad = dir.join("six-joints.state.toml");
    std::fs::write(&bad, std::fs::read_to_string(&state).unwrap().replace("dof = 4", "dof = 6")).unwrap();
    let out = plexo(&[
        "sim",
        "--plant",
        "articulated",
        "--trials",
        "1",
        "-q",
        "--no-save",
        "--resume",
        bad.to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "a 6-joint state was accepted for plexo-arm4");
    assert!(stderr.contains(bad.to_str().unwrap()) && stderr.contains("dof"), "{stderr}");
}

#[test]
fn sim_over_cia402_saves_a_candump_log_that_replay_reads() {
    let _shared = unpaced();
    let dir = scratch("candump");
    let log = dir.join("bus.log");
    let out = plexo(&[
        "sim",
        "--plant",
        "articulated",
        "--over-can",
        "cia402",
        "--duration",
        "2",
        "-q",
        "--no-save",
        "--candump",
        log.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!("CAN traffic saved to {}", log.display())) && stdout.contains(", 0 dropped"),
        "{stdout}"
    );
    let content = std::fs::read_to_string(&log).unwrap();
    let records = plexo_can::candump::parse_log(&content).expect("a valid candump log");
    // 2.5 s (sensor check + 2 s) at 1 kHz with a SYNC, RPDOs and TPDOs every cycle: many thousands of frames.
    assert!(records.len() > 5_000, "only {} frames", records.len());
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "timestamps must not go backwards");
    assert!(content.lines().any(|l| l.ends_with("080#")), "SYNC frames (0x080, no data) are in the log");
    // Regression (issue 13): the recording started after the drives were configured: no start-up in the log.
    // Now the boot-up (0x700 + node, 00), the SDO configuration (0x600 + node) and the NMT start (000#01..) of
    // the drives come before the first SYNC.
    let first_sync = content.lines().position(|l| l.ends_with("080#")).unwrap();
    let start_up = &content.lines().take(first_sync).collect::<Vec<_>>();
    assert!(start_up.iter().any(|l| l.contains(" 701#00")), "boot-up of node 1 before the first SYNC");
    assert!(start_up.iter().any(|l| l.contains(" 601#")), "SDO configuration of node 1 before the first SYNC");
    assert!(start_up.iter().any(|l| l.contains(" 000#01")), "NMT start before the first SYNC");
    let out = plexo(&["replay", log.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("080"), "replay lists the SYNC id:\n{}", text(&out).0);

    // --candump without --over-can is refused before anything runs.
    let out = plexo(&["sim", "--candump", log.to_str().unwrap(), "-q", "--no-save"]);
    assert!(!out.status.success());
}

#[test]
fn run_dry_runs_the_clinic_configuration_on_emulated_drives_homing_included() {
    let _shared = unpaced();
    let dir = scratch("emulated-run");
    let hw = dir.join("hw.toml");
    std::fs::copy(repo("assets/configs/plexo-arm4-hardware.toml"), &hw).unwrap();
    let calibration = dir.join("hw.calibration.toml");
    let base = ["run", "--hardware", hw.to_str().unwrap(), "--emulate", "articulated", "--patient", "moderate"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        plexo(&a)
    };

    // The reference-pose joints have no calibration yet: refused, naming the joint and the remedy.
    let out = with(&["--i-confirm-the-patient-is-safe", "--trials", "1", "-q"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("shoulder_rotation") && stderr.contains("plexo run --home"), "{stderr}");

    // Homing in the (emulated) jig writes the calibration beside the configuration.
    let out = with(&["--home", "--i-confirm-the-patient-is-safe", "-q"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let cal: toml::Value = toml::from_str(&std::fs::read_to_string(&calibration).unwrap()).unwrap();
    for joint in ["shoulder_rotation", "elbow_flexion"] {
        let z = cal["zero_offset"][joint].as_float().unwrap_or_else(|| panic!("{joint} not calibrated"));
        // The emulated drives' zero is the configured one (0): the measurement recovers it within the sensor
        // noise and the sag of the unpowered links during the torque-off read-back (the emulated "jig" starts
        // the joints at their references but does not clamp them: the elbow drops a few mrad under the forearm
        // link's weight).
        assert!(z.abs() < 0.02, "{joint}: zero offset {z}");
    }
    assert!(cal["zero_offset"].get("shoulder_abduction").is_none(), "absolute joints are not homed");

    // Now the session runs through the hardware path: 2 buses, MIT AK80-64/AK70-10 as configured.
    let state = dir.join("run.state.toml");
    let out = with(&["--i-confirm-the-patient-is-safe", "--trials", "2", "-q", "--state", state.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("trial limit reached") && stdout.contains("bus-load plan"), "{stdout}");
    assert!(state.exists(), "a hardware session always saves its state");

    // Issue 13 §5: `plexo run --candump` records every bus from the drives' start-up on (before: no recorder on
    // the run path at all); the log may not overwrite an input.
    let log = dir.join("logs").join("run.log");
    let out = with(&["--i-confirm-the-patient-is-safe", "--trials", "1", "-q", "--candump", log.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{stdout}
{stderr}"
    );
    assert!(stdout.contains(&format!("CAN traffic saved to {}", log.display())) && stdout.contains(", 0 dropped"));
    let records = plexo_can::candump::parse_log(&std::fs::read_to_string(&log).unwrap()).expect("a candump log");
    assert!(records.windows(2).all(|w| w[0].time <= w[1].time), "timestamps never go backwards");
    let first = format!("{}", records[0].frame);
    assert!(first.ends_with("#FFFFFFFFFFFFFFFD"), "the log starts with the start-up's exit-motor-mode poll: {first}");
    for bus in ["can0", "can1"] {
        assert!(records.iter().any(|r| r.ifname == bus), "{bus} is recorded");
    }
    let out = with(&["--i-confirm-the-patient-is-safe", "--trials", "1", "-q", "--candump", hw.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).1.contains("--candump"), "{}", text(&out).1);
}

#[test]
fn check_and_sim_take_the_patient_from_a_clinical_file_or_refuse_it_for_a_simulation() {
    let _shared = unpaced();
    let dir = scratch("clinical");
    let file = dir.join("P-0042.toml");
    std::fs::write(
        &file,
        "id = \"P-0042\"\nside = \"right\"\nheight = 1.62\nmass = 58.0\n[range_of_motion]\n\
         shoulder_abduction = [-0.1, 2.4]\nshoulder_flexion = [-0.5, 2.6]\nshoulder_rotation = [-1.1, 1.1]\n\
         elbow_flexion = [0.35, 2.2]\n",
    )
    .unwrap();
    let out = plexo(&["check", "--patient", file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("P-0042"), "the patient's pseudonymous id is shown:\n{stdout}");
    // The elbow's measured range [0.35, 2.2] rad = [20, 126] deg is the patient ROM column.
    assert!(stdout.lines().any(|l| l.starts_with("elbow_flexion") && l.contains("[20, 126]")), "{stdout}");
    let out = plexo(&["sim", "--patient", file.to_str().unwrap(), "--trials", "1", "-q", "--no-save"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "a simulation without a virtual patient model was accepted");
    assert!(stderr.contains("P-0042.toml") && stderr.contains("virtual patient profile"), "{stderr}");
}

#[test]
fn non_finite_or_non_positive_cli_durations_are_refused_before_anything_runs() {
    let _shared = unpaced();
    // Regression (issue 13 §3): `--duration nan` ran the full session.
    for bad in ["nan", "inf", "-inf", "NaN", "-2", "0"] {
        let duration = format!("--duration={bad}");
        let out = plexo(&["sim", "--plant", "articulated", "--trials", "1", &duration, "-q", "--no-save"]);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "sim --duration {bad} was accepted:\n{stdout}");
        assert!(stderr.contains("--duration") && stderr.contains("finite"), "sim --duration {bad}: {stderr}");
    }
    let hw = repo("assets/configs/plexo-arm4-hardware.toml");
    let out = plexo(&[
        "run",
        "--hardware",
        &hw,
        "--emulate",
        "articulated",
        "--patient",
        "moderate",
        "--duration",
        "nan",
        "-q",
    ]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success(), "run --duration nan was accepted");
    assert!(stderr.contains("--duration") && stderr.contains("finite"), "{stderr}");
}

#[test]
fn sigterm_and_sighup_stop_the_session_like_ctrl_c_torque_off_and_outputs_written() {
    // Regression (issue 13 §1): SIGTERM and SIGHUP ended the process at once: no safe stop, no torque-off, no
    // state file.
    let _exclusive = wall_clock_exclusive();
    for (signal, name, code) in [(libc::SIGTERM, "SIGTERM", 143), (libc::SIGHUP, "SIGHUP", 129)] {
        let dir = scratch(&format!("signal-{name}"));
        let rrd = dir.join("s.rrd");
        let started = std::time::Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_plexo"))
            .args(["sim", "--plant", "articulated", "--realtime", "--duration", "60", "-q", "--save"])
            .arg(&rrd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Past the 0.5 s sensor check: the session runs with torque on.
        std::thread::sleep(std::time::Duration::from_millis(2000));
        // SAFETY: kill(2) on our own child's pid; no memory is touched.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(code), "{name}: exit status 128 + signal:\n{stdout}\n{stderr}");
        assert!(stdout.contains(&format!("stopped by {name} (controlled stop, then torque off)")), "{stdout}");
        assert!(stderr.contains(&format!("{name}: controlled stop")), "{stderr}");
        assert!(rrd.with_extension("state.toml").exists(), "{name}: the state file is written");
        assert!(rrd.with_extension("summary.json").exists(), "{name}: the summary is written");
        assert!(started.elapsed().as_secs_f64() < 20.0, "{name}: the stop took {:?}", started.elapsed());
    }
}

#[test]
fn a_failed_resume_or_a_path_in_two_roles_leaves_every_existing_file_intact() {
    let _shared = unpaced();
    // Regression (issue 13 §2): a failed --resume truncated an existing --save file (2.9 MB -> 294 B); the same
    // path given for two roles was silently overwritten.
    let dir = scratch("two-roles");
    let rrd = dir.join("kept.rrd");
    std::fs::write(&rrd, "a previous session's recording").unwrap();
    let bad_state = dir.join("bad.state.toml");
    std::fs::write(&bad_state, "session = 3").unwrap();
    let out = plexo(&[
        "sim",
        "--plant",
        "articulated",
        "--trials",
        "1",
        "-q",
        "--save",
        rrd.to_str().unwrap(),
        "--resume",
        bad_state.to_str().unwrap(),
    ]);
    assert!(!out.status.success(), "a bad state file was accepted");
    assert_eq!(std::fs::read_to_string(&rrd).unwrap(), "a previous session's recording", "--save was touched");

    let same = dir.join("same.out");
    std::fs::write(&same, "kept").unwrap();
    let s = same.to_str().unwrap();
    for args in [
        vec!["sim", "--plant", "articulated", "--trials", "1", "-q", "--save", s, "--state", s],
        vec!["sim", "--plant", "articulated", "--over-can", "mit", "--trials", "1", "-q", "--save", s, "--candump", s],
        vec!["sim", "--plant", "articulated", "--trials", "1", "-q", "--no-save", "--resume", s, "--state", s],
        vec!["replay", s, "--hardware", &repo("assets/configs/plexo-arm4-hardware.toml"), "--save", s],
    ] {
        let out = plexo(&args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains("same.out") && stderr.contains(" and "), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&same).unwrap(), "kept", "{args:?} overwrote the file");
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3, "no partial or other file was left behind");
}

/// Regression (issue 13 §2): `plexo run` did not count the files its hardware configuration names as inputs, so
/// `--state` onto the configuration's robot URDF overwrote the robot description with a state file. The URDF and
/// the calibration file are inputs: an output onto either is refused before anything runs, and both stay intact.
#[test]
fn run_refuses_an_output_onto_the_robot_or_calibration_its_hardware_configuration_names() {
    let _shared = unpaced();
    let dir = scratch("hardware-inputs");
    let urdf = dir.join("arm.urdf");
    std::fs::copy(repo("assets/robots/plexo-arm4.urdf"), &urdf).unwrap();
    let config = std::fs::read_to_string(repo("assets/configs/plexo-arm4-hardware.toml")).unwrap();
    let config: String = config
        .lines()
        .map(|l| if l.starts_with("robot =") { "robot = \"arm.urdf\"".to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    let hw = dir.join("hw.toml");
    std::fs::write(&hw, config).unwrap();
    let calibration = dir.join("hw.calibration.toml");
    std::fs::write(&calibration, "# a clinic's calibration\n").unwrap();
    let urdf_before = std::fs::read(&urdf).unwrap();
    for target in [&urdf, &calibration] {
        let t = target.to_str().unwrap();
        let out = plexo(&[
            "run",
            "--hardware",
            hw.to_str().unwrap(),
            "--emulate",
            "articulated",
            "--patient",
            "moderate",
            "--i-confirm-the-patient-is-safe",
            "-q",
            "--state",
            t,
        ]);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "--state {t} was accepted");
        assert!(stderr.contains(t) && stderr.contains(" and "), "{t}: {stderr}");
    }
    assert_eq!(std::fs::read(&urdf).unwrap(), urdf_before, "the robot URDF was overwritten");
    assert_eq!(std::fs::read_to_string(&calibration).unwrap(), "# a clinic's calibration\n");
}

/// A full `plexo sim --no-save --out DIR` session on the articulated plant: its summary and trial table in DIR, no
/// recording.
fn no_save_session(name: &str, patient: &str, extra: &[&str]) -> (PathBuf, serde_json::Value, String, String) {
    let dir = scratch(name);
    let mut args = vec![
        "sim",
        "--plant",
        "articulated",
        "--patient",
        patient,
        "--seed",
        "5",
        "-q",
        "--no-save",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend(extra);
    let out = plexo(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let find = |suffix: &str| {
        let files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with(suffix))
            .collect();
        files
    };
    assert!(find(".rrd").is_empty(), "--no-save writes no recording");
    let (json, csv) = (find(".summary.json"), find(".trials.csv"));
    assert_eq!((json.len(), csv.len()), (1, 1), "one summary and one trial table in --out: {stdout}");
    assert!(stdout.contains(&format!("trial table saved to {}", csv[0].display())), "{stdout}");
    let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json[0]).unwrap()).unwrap();
    (dir, summary, std::fs::read_to_string(&csv[0]).unwrap(), stdout)
}

fn block<'a>(summary: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    summary["blocks"].as_array().unwrap().iter().find(|b| b["name"] == name).unwrap_or_else(|| panic!("no {name}"))
}

#[test]
fn sim_without_recording_writes_the_summary_and_a_trial_table_with_honest_effort() {
    let _shared = unpaced();
    let (_, summary, csv, stdout) = no_save_session("no-save-trials", "moderate", &[]);
    // The documented header: the columns of TRIAL_COLUMNS, then one range of motion per joint of the robot.
    let lines: Vec<&str> = csv.lines().collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let fixed = plexo::TRIAL_COLUMNS.len() - 1;
    assert_eq!(&header[..fixed], &plexo::TRIAL_COLUMNS[..fixed]);
    let joints = ["shoulder_abduction", "shoulder_flexion", "shoulder_rotation", "elbow_flexion"];
    let rom: Vec<String> = joints.iter().map(|j| format!("rom_{j}_rad")).collect();
    assert_eq!(header[fixed..], rom.iter().map(String::as_str).collect::<Vec<_>>()[..]);
    // One row per trial of the block table, every field either empty (undefined) or a finite number.
    let trials: u64 = summary["blocks"].as_array().unwrap().iter().map(|b| b["trials"].as_u64().unwrap()).sum();
    assert!(trials > 100, "a whole session: {trials} trials");
    assert_eq!(lines.len() as u64 - 1, trials, "one row per trial");
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    for line in &lines[1..] {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), header.len(), "{line}");
        for (h, f) in header.iter().zip(&fields) {
            if matches!(*h, "block_name" | "mode") || f.is_empty() {
                continue;
            }
            let v: f64 = f.parse().unwrap_or_else(|_| panic!("{h} = `{f}` is not a number"));
            assert!(v.is_finite(), "{h} = {v}");
        }
        // Measured in every trial (the robot moves the arm in each): never empty.
        for always in ["duration_s", "final_error_m", "effort_j", "assistance_j", "true_effort_j", "sparc", "ldlj"] {
            assert!(!fields[col(always)].is_empty(), "{always} empty in {line}");
        }
    }
    // Effort: the relaxed passive warm-up is the robot's work (≤ 5 %), the transparent block the patient's
    // (high), and the clinic estimate stays within 10 points of the virtual patient's truth in every block.
    let share = |b: &serde_json::Value, k: &str| b[k].as_f64().unwrap_or_else(|| panic!("{k} of {b}"));
    let passive = block(&summary, "passive warm-up");
    assert!(share(passive, "patient_effort_share") <= 0.05, "{passive}");
    assert!(share(passive, "true_patient_effort_share") <= 0.05, "{passive}");
    let transparent = block(&summary, "active (transparent)");
    assert!(share(transparent, "patient_effort_share") >= 0.9, "{transparent}");
    for b in summary["blocks"].as_array().unwrap() {
        let (est, truth) = (share(b, "patient_effort_share"), share(b, "true_patient_effort_share"));
        assert!((est - truth).abs() <= 0.10, "{}: estimated {est}, true {truth}", b["name"]);
        assert!(share(b, "mean_assistance_work_j") >= 0.0, "{b}");
    }
    assert!(stdout.contains("assist[J]") && stdout.contains("true%"), "{stdout}");
}

#[test]
fn a_paralysed_arm_scores_no_effort_in_the_assisted_blocks() {
    let _shared = unpaced();
    // The moderate profile with no strength at all (every max_torque 0): what moves is the robot's doing.
    let text = std::fs::read_to_string(repo("assets/patients/moderate.toml")).unwrap();
    let paralysed: String = text
        .lines()
        .map(|l| if l.starts_with("max_torque") { "max_torque = 0.0" } else { l })
        .collect::<Vec<_>>()
        .join("\n");
    let dir = scratch("paralysed-profile");
    let file = dir.join("paralysed.toml");
    std::fs::write(&file, paralysed).unwrap();
    // The passive warm-up and both assisted blocks (16 + 48 + 48 trials): without strength the arm would fall
    // in the transparent block that follows (a safety stop, as it should).
    let (_, summary, _, _) = no_save_session("paralysed", file.to_str().unwrap(), &["--trials", "112"]);
    for name in ["assist-as-needed 1", "assist-as-needed 2"] {
        let b = block(&summary, name);
        let est = b["patient_effort_share"].as_f64().unwrap();
        assert!(est <= 0.05, "{name}: estimated effort share {est} of a paralysed arm");
        assert_eq!(b["true_patient_effort_share"].as_f64(), Some(0.0), "{name}: {b}");
    }
}

#[test]
fn a_healthy_arm_does_the_work_in_the_transparent_block() {
    let _shared = unpaced();
    let (_, summary, _, _) = no_save_session("healthy-transparent", "healthy", &[]);
    let b = block(&summary, "active (transparent)");
    for key in ["patient_effort_share", "true_patient_effort_share"] {
        let share = b[key].as_f64().unwrap();
        assert!(share >= 0.95, "{key} {share} of a healthy arm in transparent mode");
    }
}

/// A stand-in for a Rerun viewer that accepts connections and reads what it is sent without ever answering (a
/// viewer that hangs); `kill` closes every connection and the listening socket, as the kernel does when the
/// viewer's process is killed. Returns the URL, a count of the bytes received and the kill switch.
fn fake_viewer() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>, std::sync::mpsc::Sender<()>) {
    use std::io::Read;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rerun+http://127.0.0.1:{}/proxy", listener.local_addr().unwrap().port());
    listener.set_nonblocking(true).unwrap();
    let received = std::sync::Arc::new(AtomicUsize::new(0));
    let (kill, killed) = std::sync::mpsc::channel::<()>();
    let count = received.clone();
    std::thread::spawn(move || {
        let mut connections: Vec<std::net::TcpStream> = Vec::new();
        let mut buf = [0u8; 65536];
        while killed.try_recv().is_err() {
            if let Ok((c, _)) = listener.accept() {
                c.set_nonblocking(true).unwrap();
                connections.push(c);
            }
            for c in &mut connections {
                if let Ok(n) = c.read(&mut buf) {
                    count.fetch_add(n, Ordering::Relaxed);
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        for c in &connections {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // The listener and the connections drop here: the port is closed, as after a kill.
    });
    (url, received, kill)
}

#[test]
fn a_viewer_that_dies_mid_session_or_cannot_be_reached_costs_the_live_stream_only() {
    // Regression (issue 14 §3): the live viewer sat in the recording's path. With a viewer that was unreachable
    // (`--connect rerun+http://127.0.0.1:1/proxy`) the session hung before its first line, ignored SIGTERM, and
    // wrote neither a complete recording nor a summary nor a state.
    use std::sync::atomic::Ordering;
    let _exclusive = wall_clock_exclusive();
    let closed_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for case in ["killed", "unreachable"] {
        let dir = scratch(&format!("viewer-{case}"));
        let rrd = dir.join("s.rrd");
        let (url, received, kill) = match case {
            "killed" => {
                let (url, received, kill) = fake_viewer();
                (url, Some(received), Some(kill))
            }
            _ => (format!("rerun+http://127.0.0.1:{closed_port}/proxy"), None, None),
        };
        let started = std::time::Instant::now();
        let child = Command::new(env!("CARGO_BIN_EXE_plexo"))
            .args(["sim", "--plant", "articulated", "--realtime", "--duration", "5", "-q", "--connect", &url])
            .arg("--save")
            .arg(&rrd)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        if let (Some(received), Some(kill)) = (&received, &kill) {
            // Mid-session: the viewer has been sent data, then its process dies.
            std::thread::sleep(std::time::Duration::from_millis(2000));
            assert!(received.load(Ordering::Relaxed) > 0, "the viewer was connected to and sent data");
            kill.send(()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let elapsed = started.elapsed();
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{case}: the session ends normally:\n{stdout}\n{stderr}");
        // 5 s of session, the live stream's bounded wait (3 s), start-up and a debug build's slack.
        assert!(elapsed.as_secs_f64() < 25.0, "{case}: the session took {elapsed:?}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{case}: one warning for the live viewer:\n{stderr}");
        assert!(warnings[0].contains("live viewer") && warnings[0].contains(&url), "{case}: {stderr}");
        let summary = plexo::replay_cmd::read_rrd(&rrd).expect("the recording decodes");
        assert!(summary.complete, "{case}: the recording is complete");
        assert!(summary.entities.contains_key(&format!("/{}", entities::POSITION.path)), "{case}");
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rrd.with_extension("summary.json")).unwrap()).unwrap();
        assert_eq!(json["telemetry"]["recording_complete"], true, "{case}: {json}");
        let live = &json["telemetry"]["live_viewers"][0];
        assert_eq!(live["url"], url.as_str(), "{case}: {json}");
        assert_eq!(live["given_up"], true, "{case}: {json}");
        assert!(rrd.with_extension("state.toml").exists(), "{case}: the state is written");
    }
}

#[test]
fn spawn_never_streams_into_a_process_holding_the_viewer_port_and_a_viewer_that_never_listens_costs_only_the_live_stream()
 {
    let _shared = unpaced();
    // Regression (issue 14 §3): `--spawn` reused whatever process listened on Rerun's port 9876 ("assuming it's a
    // Rerun Viewer") and streamed patient data into it; a viewer that failed to start stopped the session.
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;
    let dir = scratch("spawn");
    // A `rerun` that records how it was started and exits without ever listening.
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let args_file = dir.join("rerun-args.txt");
    let script = bin.join("rerun");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$@\" >> {}\n", args_file.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another process's server on the default viewer port (if the port is free to take here).
    let squatter = std::net::TcpListener::bind("127.0.0.1:9876").ok();
    let rrd = dir.join("s.rrd");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let out = Command::new(env!("CARGO_BIN_EXE_plexo"))
        .args(["sim", "--plant", "articulated", "--duration", "1", "-q", "--spawn", "--save"])
        .arg(&rrd)
        .env("PATH", path)
        .current_dir(&dir)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "the session runs without its viewer:\n{stdout}\n{stderr}");
    assert!(
        stderr.lines().any(|l| l.contains("WARN") && l.contains("--spawn") && l.contains("did not listen")),
        "one warning says the viewer never listened:\n{stderr}"
    );
    assert!(plexo::replay_cmd::read_rrd(&rrd).expect("the recording decodes").complete);
    let started_with = std::fs::read_to_string(&args_file).unwrap_or_default();
    let run_line = started_with.lines().find(|l| l.contains("--port=")).unwrap_or_else(|| panic!("{started_with}"));
    assert!(run_line.contains("--bind 127.0.0.1"), "the viewer is bound to loopback: {run_line}");
    if let Some(squatter) = squatter {
        assert!(!run_line.contains("--port=9876"), "a port of our own, not the one held: {run_line}");
        // Whatever connected to the held port (rerun's probe) sent it nothing.
        squatter.set_nonblocking(true).unwrap();
        while let Ok((mut c, _)) = squatter.accept() {
            let mut buf = [0u8; 1024];
            c.set_nonblocking(true).unwrap();
            assert!(!matches!(c.read(&mut buf), Ok(n) if n > 0), "patient data was sent to the port's holder");
        }
    }
}

#[test]
fn every_shipped_exoskeleton_runs_a_session_on_the_embedded_defaults() {
    let _shared = unpaced();
    // Regression (issue 13 §4): `plexo sim --robot plexo-arm6` failed with the embedded controller configuration
    // ("need 6 values") and the center-out protocol (a 4-value home posture).
    for robot in plexo::setup::EXOSKELETONS {
        for protocol in plexo_controller::DEFAULT_PROTOCOLS {
            let dir = scratch(&format!("robot-{robot}-{protocol}"));
            let out = plexo(&[
                "sim",
                "--robot",
                robot,
                "--protocol",
                protocol,
                "--plant",
                "articulated",
                "--trials",
                "4",
                "-q",
                "--no-save",
                "--out",
                dir.to_str().unwrap(),
            ]);
            let (stdout, stderr) = text(&out);
            assert!(out.status.success(), "{robot} / {protocol}:\n{stdout}\n{stderr}");
            assert!(stdout.contains("trial limit reached"), "{robot} / {protocol}: {stdout}");
            let summary = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.to_string_lossy().ends_with(".summary.json"))
                .unwrap_or_else(|| panic!("{robot} / {protocol}: no summary in {}", dir.display()));
            let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(summary).unwrap()).unwrap();
            let blocks = json["blocks"].as_array().unwrap();
            let trials: u64 = blocks.iter().map(|b| b["trials"].as_u64().unwrap()).sum();
            let reached: f64 =
                blocks.iter().map(|b| b["trials"].as_f64().unwrap() * b["success_rate"].as_f64().unwrap()).sum();
            assert_eq!(trials, 4, "{robot} / {protocol}: {json}");
            assert!(reached >= 3.5, "{robot} / {protocol}: the passive trials reach their targets: {json}");
        }
    }
}

#[test]
fn urdf_mesh_visuals_are_drawn_and_a_missing_or_package_mesh_is_a_warning_naming_file_and_link() {
    let _shared = unpaced();
    // Issue 14 §1: mesh visuals were skipped with a warning; now they are logged as Asset3D, resolved relative to
    // the URDF file. The robot is plexo-arm4 from a file of its own, with three visuals turned into meshes.
    let dir = scratch("meshes");
    let urdf = std::fs::read_to_string(repo("assets/robots/plexo-arm4.urdf")).unwrap();
    let replace_once = |text: String, old: &str, new: &str| {
        assert!(text.contains(old), "the test's URDF edit `{old}` no longer applies");
        text.replacen(old, new, 1)
    };
    let urdf = replace_once(
        urdf,
        r#"<geometry><cylinder radius="0.015" length="0.22"/></geometry>"#,
        r#"<geometry><mesh filename="meshes/upper_arm.stl" scale="1 1 2"/></geometry>"#,
    );
    let urdf = replace_once(
        urdf,
        r#"<geometry><cylinder radius="0.012" length="0.28"/></geometry>"#,
        r#"<geometry><mesh filename="meshes/missing_forearm.obj"/></geometry>"#,
    );
    let urdf = replace_once(
        urdf,
        r#"<geometry><box size="0.03 0.02 0.10"/></geometry>"#,
        r#"<geometry><mesh filename="package://plexo_description/meshes/strut.stl"/></geometry>"#,
    );
    std::fs::create_dir_all(dir.join("robot/meshes")).unwrap();
    let robot = dir.join("robot/arm.urdf");
    std::fs::write(&robot, urdf).unwrap();
    // A tetrahedron in ASCII STL.
    let [a, b, c, d] = [[0.0, 0.0, 0.0], [0.02, 0.0, 0.0], [0.0, 0.02, 0.0], [0.0, 0.0, -0.1]];
    let facet = |p: [[f64; 3]; 3]| {
        let v = |q: [f64; 3]| format!("      vertex {} {} {}\n", q[0], q[1], q[2]);
        format!("  facet normal 0 0 0\n    outer loop\n{}{}{}    endloop\n  endfacet\n", v(p[0]), v(p[1]), v(p[2]))
    };
    let stl = format!(
        "solid t\n{}{}{}{}endsolid t\n",
        facet([a, c, b]),
        facet([a, b, d]),
        facet([a, d, c]),
        facet([b, c, d])
    );
    std::fs::write(dir.join("robot/meshes/upper_arm.stl"), &stl).unwrap();

    let rrd = dir.join("mesh.rrd");
    let out = plexo(&[
        "sim",
        "--robot",
        robot.to_str().unwrap(),
        "--plant",
        "articulated",
        "--trials",
        "1",
        "-q",
        "--save",
        rrd.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "a missing mesh must not stop the session:\n{stdout}\n{stderr}");
    for (file, link) in [
        ("missing_forearm.obj", "forearm_link"),
        ("package://plexo_description/meshes/strut.stl", "shoulder_flexion_link"),
    ] {
        let line =
            stderr.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("no warning names {file}:\n{stderr}"));
        assert!(line.contains(link) && line.contains("WARN"), "{line}");
    }
    let summary = plexo::replay_cmd::read_rrd(&rrd).expect("the recording decodes");
    let components = |entity: String| summary.static_components.get(&format!("/{entity}")).cloned().unwrap_or_default();
    let mesh = components(entities::link_visual("upper_arm_link", 0));
    assert!(mesh.iter().any(|c| c == "Asset3D:blob") && mesh.iter().any(|c| c == "Asset3D:media_type"), "{mesh:?}");
    let scale = summary
        .static_values
        .get(&(format!("/{}", entities::link_visual("upper_arm_link", 0)), "Transform3D:scale".into()));
    assert_eq!(scale, Some(&vec![1.0, 1.0, 2.0]), "the URDF's scale");
    // The visuals that could not be drawn have no geometry; the other visuals of their links do.
    assert!(!components(entities::link_visual("forearm_link", 0)).iter().any(|c| c.starts_with("Asset3D")));
    assert!(components(entities::link_visual("forearm_link", 1)).iter().any(|c| c.starts_with("Cylinders3D")));
}

#[test]
fn block_markers_span_each_block_from_its_start_to_its_end() {
    let _shared = unpaced();
    // Issue 14 §1: block boundaries were only text in the event log. 90 s of the default protocol end inside its
    // second block: the first block's bar ends before the second's starts, the second's at the session's end.
    let dir = scratch("blocks");
    let rrd = dir.join("blocks.rrd");
    let out = plexo(&["sim", "--plant", "articulated", "--duration", "90", "-q", "--save", rrd.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "sim failed:\n{stdout}\n{stderr}");
    let summary = plexo::replay_cmd::read_rrd(&rrd).expect("the recording decodes");
    let span = |block: usize| {
        let e = summary.entities[&format!("/{}", entities::block_marker(block))];
        assert_eq!(e.rows, 2 + 1, "block {block}: start, end (and the static style)");
        e.time_range.unwrap()
    };
    let (first, second) = (span(0), span(1));
    assert!(first.0 < first.1 && first.1 <= second.0 && second.0 < second.1, "{first:?} then {second:?}");
    assert!(second.0 - first.1 < 30.0, "the second block starts after the first's rest: {first:?}, {second:?}");
    assert!((second.1 - summary.last_time.unwrap()).abs() < 0.1, "open at the end: {second:?}");
    let third = summary.entities[&format!("/{}", entities::block_marker(2))];
    assert_eq!((third.rows, third.time_range), (1, None), "a block not reached has its style only");
    // Every trial of both blocks has its hand path.
    let trials: u64 = {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(rrd.with_extension("summary.json")).unwrap()).unwrap();
        json["blocks"].as_array().unwrap().iter().map(|b| b["trials"].as_u64().unwrap()).sum()
    };
    let paths = summary.entities.keys().filter(|p| p.starts_with(&format!("/{}/", entities::HAND_PATHS))).count();
    assert_eq!(paths as u64, trials, "one hand path per trial of the summary");
}
