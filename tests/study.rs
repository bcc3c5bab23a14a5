//! `plexo study` end to end, as a user runs it: a small seeded study (2 controllers × 2 profiles × 2 seeds × 2
//! sessions on a short protocol), its outputs and their headers, the sharded (1/2 + 2/2) + merge = unsharded
//! byte equality (which also shows that results do not depend on the thread count: the shards run on one thread,
//! the unsharded study on two), the direction of the effects, and study-file errors that name the key.

mod cli;

use std::path::{Path, PathBuf};
use std::process::Command;

use cli::{ok, plexo, read, s};

fn dir(name: &str) -> PathBuf {
    cli::scratch("study", name)
}

const STUDY: &str = r#"
name = "small"
description = "Test study: Emken vs a fixed-impedance baseline."
protocol = "PROTOCOL"
sessions = 2
seeds = [3, 4]
patients = ["mild", "severe"]

[[controllers]]
name = "emken"

[[controllers]]
name = "fixed"
law = "fixed"
stiffness = 60.0
progression = false
"#;

fn study_file(d: &Path) -> PathBuf {
    let protocol = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/study/center-out-short.toml");
    let path = d.join("small.toml");
    std::fs::write(&path, STUDY.replace("PROTOCOL", &protocol.display().to_string())).unwrap();
    path
}

#[test]
fn a_small_study_runs_shards_merge_to_the_unsharded_outputs_and_effects_point_the_right_way() {
    let d = dir("e2e");
    let file = study_file(&d);
    let (all, a, b, merged) = (d.join("all"), d.join("a"), d.join("b"), d.join("merged"));
    let text = ok(&["study", s(&file), "--out", s(&all), "--threads", "2", "-q"]);
    assert!(text.contains("sessions/hour"), "{text}");

    // Tables: 8 courses × 2 sessions × (2 blocks + the assisted aggregate); 2 controllers × 2 patients × 2
    // sessions cohort cells.
    let sessions = read(&all.join("sessions.csv"));
    let mut lines = sessions.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("controller,patient,seed,session,session_seed,end,session_time_s,block,mode,trials"));
    assert!(header.contains("assistance_nm") && header.contains("effort_share_est") && header.contains("sparc"));
    assert_eq!(lines.count(), 8 * 2 * 3, "{sessions}");
    assert!(header.contains("effort_share_true") && header.contains("stiffness_nm_rad"), "{header}");
    // The trial table: one row per trial of every session, as many as the block rows count.
    let col = |header: &str, name: &str| header.split(',').position(|c| c == name).unwrap();
    let (block, trials) = (col(header, "block"), col(header, "trials"));
    let counted: usize = sessions
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f[block] != "(assisted blocks)")
        .map(|f| f[trials].parse::<usize>().unwrap())
        .sum();
    let trial_table = read(&all.join("trials.csv"));
    let trial_header = trial_table.lines().next().unwrap();
    assert!(trial_header.starts_with("controller,patient,seed,session,block,block_name,trial,mode,"), "{trial_header}");
    assert!(trial_header.contains("true_effort_share") && trial_header.ends_with("rom_elbow_flexion_rad"));
    assert_eq!(trial_table.lines().count(), 1 + counted);
    assert!(counted >= 8 * 2 * 12, "every session ran both blocks: {counted} trials");
    let cohort = read(&all.join("cohort.csv"));
    assert!(cohort.starts_with("controller,patient,session,seeds,success_rate_n,success_rate_mean,"));
    assert!(cohort.lines().next().unwrap().contains("assistance_nm_ci95_low,assistance_nm_ci95_high"));
    assert_eq!(cohort.lines().count(), 1 + 2 * 2 * 2, "{cohort}");
    for patient in ["mild", "severe"] {
        for ext in ["png", "svg"] {
            let plot = all.join(format!("plots/{patient}.{ext}"));
            assert!(std::fs::metadata(&plot).map(|m| m.len() > 1000).unwrap_or(false), "{}", plot.display());
        }
    }
    let report = read(&all.join("report.md"));
    assert!(report.starts_with("# Study: small"), "{report}");
    assert!(report.contains("## Patient severe") && report.contains("(plots/severe.png)"), "{report}");
    assert!(report.contains("| fixed | 2 |"), "{report}");
    let table_header = report.lines().find(|l| l.starts_with("| controller |")).unwrap();
    let table_row = report.lines().find(|l| l.starts_with("| fixed | 2 |")).unwrap();
    assert_eq!(table_header.matches('|').count(), table_row.matches('|').count(), "{report}");
    assert!(table_header.contains("effort share (true)"), "{table_header}");
    // The efficacy criteria (a)–(c) per controller × patient; (d) only with a capacity drop.
    let criteria = report.split("## Efficacy criteria").nth(1).expect("an efficacy-criteria section");
    for (ctrl, patient) in [("emken", "mild"), ("fixed", "severe")] {
        let row = criteria.lines().find(|l| l.starts_with(&format!("| {ctrl} | {patient} |"))).unwrap();
        assert_eq!(row.matches('|').count(), 8, "{row}");
        assert!(row.contains('%'), "{row}");
    }
    let raw: Vec<_> = std::fs::read_dir(all.join("raw")).unwrap().collect();
    assert_eq!(raw.len(), 8 + 1, "8 course files and the study file");

    // Two shards on one thread each, merged: the unsharded outputs, byte for byte.
    let text = ok(&["study", s(&file), "--out", s(&a), "--shard", "1/2", "--threads", "1", "-q"]);
    assert!(text.contains("shard 1/2"), "{text}");
    assert!(!a.join("sessions.csv").exists(), "a shard writes raw results only");
    let e = plexo(&["study", "merge", s(&a), "--out", s(&merged)]);
    let err = String::from_utf8_lossy(&e.stderr);
    assert!(!e.status.success() && err.contains("4 of 8 courses are missing"), "{err}");
    // Through the environment, as a Slurm array task runs it.
    let out = Command::new(env!("CARGO_BIN_EXE_plexo"))
        .args(["study", s(&file), "--out", s(&b), "--threads", "1", "-q"])
        .env("SLURM_ARRAY_TASK_ID", "1")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .output()
        .unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("shard 2/2"));
    ok(&["study", "merge", s(&a), s(&b), "--out", s(&merged)]);
    for f in ["trials.csv", "sessions.csv", "cohort.csv", "report.md", "plots/mild.svg", "raw/course-00005.toml"] {
        assert!(read(&all.join(f)) == read(&merged.join(f)), "{f} differs between the unsharded and merged runs");
    }

    // Direction of the effects (assisted blocks, mean over seeds): the severe patient gets more help than the mild
    // one under either controller; Emken's stiffness falls from session 1 to 2 (the adaptation is carried over, as
    // with --resume); for the mild patient, who succeeds, it stays below the fixed baseline's 60 Nm/rad and the
    // baseline gives more help than Emken. Not for the severe one: it fails often, so Emken's stiffness and the
    // progression raise its help (assist-as-needed: never so little that they fail) while the baseline stays fixed.
    let cohort_header = cohort.lines().next().unwrap();
    let value = |ctrl: &str, patient: &str, session: u32, key: &str| -> f64 {
        let row = cohort.lines().find(|l| l.starts_with(&format!("{ctrl},{patient},{session},"))).unwrap();
        row.split(',').nth(col(cohort_header, key)).unwrap().parse().unwrap()
    };
    for ctrl in ["emken", "fixed"] {
        let assistance = |p| value(ctrl, p, 1, "assistance_nm_mean");
        assert!(assistance("severe") > assistance("mild"), "{cohort}");
    }
    for patient in ["mild", "severe"] {
        let v = |ctrl, session, key| value(ctrl, patient, session, key);
        if patient == "mild" {
            assert!(v("fixed", 1, "assistance_nm_mean") > v("emken", 1, "assistance_nm_mean"), "{cohort}");
            assert!(v("emken", 1, "stiffness_nm_rad_mean") < 60.0, "{cohort}");
        }
        assert!((v("fixed", 2, "stiffness_nm_rad_mean") - 60.0).abs() < 1e-9, "{cohort}");
        assert!(v("emken", 2, "stiffness_nm_rad_mean") < v("emken", 1, "stiffness_nm_rad_mean"), "{cohort}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_study_file_error_names_the_file_and_the_key() {
    let d = dir("bad");
    let file = study_file(&d);
    std::fs::write(&file, read(&file).replace("sessions = 2", "sessions = 2\nsesions = 3")).unwrap();
    let out = plexo(&["study", s(&file), "--out", s(&d.join("o"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("small.toml") && err.contains("sesions"), "{err}");
    std::fs::write(&file, read(&file).replace("sesions = 3\n", "").replace("stiffness = 60.0", "stiffness = -1.0"))
        .unwrap();
    let out = plexo(&["study", s(&file), "--out", s(&d.join("o"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("controllers[1].stiffness"), "{err}");
    assert!(!d.join("o").exists(), "nothing is written for a bad study file");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A `capacity_drop` weakens the virtual patient before the named session only: session 1 is identical to the
/// same study without the drop, session 2 differs, and the report's efficacy-criteria table gains the (d) columns.
#[test]
fn a_capacity_drop_changes_only_the_sessions_from_the_drop_on_and_the_report_shows_criterion_d() {
    let d = dir("drop");
    let protocol = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/study/center-out-short.toml");
    let study = |drop: &str| {
        format!(
            "name = \"drop\"\nprotocol = \"{}\"\nsessions = 2\nseeds = [5]\npatients = [\"moderate\"]\n{drop}\n\
             [[controllers]]\nname = \"emken\"\n",
            protocol.display()
        )
    };
    let (with, without) = (d.join("with.toml"), d.join("without.toml"));
    std::fs::write(&with, study("capacity_drop = { session = 2, factor = 0.2 }")).unwrap();
    std::fs::write(&without, study("")).unwrap();
    ok(&["study", s(&with), "--out", s(&d.join("a")), "-q"]);
    ok(&["study", s(&without), "--out", s(&d.join("b")), "-q"]);
    let rows = |dir: &str, session: &str| -> Vec<String> {
        read(&d.join(dir).join("trials.csv"))
            .lines()
            .skip(1)
            .filter(|l| l.split(',').nth(3) == Some(session))
            .map(str::to_owned)
            .collect()
    };
    assert!(!rows("a", "1").is_empty() && rows("a", "1") == rows("b", "1"), "session 1 runs before the drop");
    assert!(!rows("a", "2").is_empty() && rows("a", "2") != rows("b", "2"), "session 2 runs with less capacity");
    let report = read(&d.join("a").join("report.md"));
    assert!(report.contains("## Efficacy criteria") && report.contains("capacity × 0.2 before session 2"), "{report}");
    let header = report.lines().find(|l| l.starts_with("| controller | patient | (a)")).unwrap();
    assert!(header.contains("(d) help re-raised"), "{header}");
    let row = report.lines().find(|l| l.starts_with("| emken | moderate |")).unwrap();
    assert_eq!(header.matches('|').count(), row.matches('|').count(), "{report}");
    assert!(row.contains("/1 |"), "one course counted for (d): {row}");
    let plain = read(&d.join("b").join("report.md"));
    assert!(plain.contains("## Efficacy criteria") && !plain.contains("(d) help re-raised"), "{plain}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Each controller of a study may run its own protocol (`controllers[i].protocol`, relative to the study file):
/// a guidance arm and a plain-practice arm between unassisted probe blocks. The sessions run each arm's blocks,
/// and the report gains the probe table, one row per arm, with the probes' numbers from the session table.
#[test]
fn each_controller_runs_its_own_protocol_and_the_report_compares_the_probes() {
    let d = dir("probes");
    let template = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/study/probe-short.toml"));
    for mode in ["passive", "transparent"] {
        std::fs::write(d.join(format!("probe-{mode}.toml")), template.replace("MODE", mode)).unwrap();
    }
    let file = d.join("probes.toml");
    std::fs::write(
        &file,
        "name = \"probes\"\nsessions = 2\nseeds = [2]\npatients = [\"mild\"]\n\
         [[controllers]]\nname = \"guidance\"\nprotocol = \"probe-passive.toml\"\n\
         [[controllers]]\nname = \"plain\"\nprotocol = \"probe-transparent.toml\"\n",
    )
    .unwrap();
    let out = d.join("out");
    ok(&["study", s(&file), "--out", s(&out), "-q"]);
    let sessions = read(&out.join("sessions.csv"));
    let header = sessions.lines().next().unwrap();
    let col = |name: &str| header.split(',').position(|c| c == name).unwrap();
    let (block, mode) = (col("block"), col("mode"));
    let training_mode = |ctrl: &str| -> Vec<String> {
        sessions
            .lines()
            .filter(|l| l.starts_with(&format!("{ctrl},")))
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[block] == "training")
            .map(|f| f[mode].to_owned())
            .collect()
    };
    assert_eq!(training_mode("guidance"), ["Passive", "Passive"], "{sessions}");
    assert_eq!(training_mode("plain"), ["Transparent", "Transparent"], "{sessions}");
    let report = read(&out.join("report.md"));
    assert!(report.contains("## Probe blocks"), "{report}");
    // The plain arm's first probe (session 1, "probe before") as the report prints it: the session table's
    // final error in mm, one decimal (one seed: no interval).
    let first_probe = sessions
        .lines()
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[0] == "plain" && f[3] == "1" && f[block] == "probe before")
        .unwrap()[col("final_error_mm")]
    .parse::<f64>()
    .unwrap();
    let probes = &report[report.find("## Probe blocks").unwrap()..];
    let row = probes.lines().find(|l| l.starts_with("| plain | mild |")).expect("a row per arm");
    assert!(row.starts_with(&format!("| plain | mild | {first_probe:.1} → ")), "{row}");
    assert!(probes.lines().any(|l| l.starts_with("| guidance | mild |")), "{report}");
    std::fs::remove_dir_all(&d).unwrap();
}
