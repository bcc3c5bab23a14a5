//! `plexo tune` end to end, as a user runs it, on a small seeded cohort (one profile × one seed × two sessions
//! of the short test protocol): a grid search whose invalid candidates are reported, not run; sharded (1/2 +
//! 2/2) + merge = unsharded byte for byte (the shards on one thread, the unsharded run on two); the best
//! configuration accepted as is by `check`, `sim --controller` and `run --controller`, and checked on the rapier
//! plant; CMA-ES from a slacking
//! Emken start (no forgetting) improving the objective, the result holding on a held-out profile written here,
//! and its generations sharded + merged = unsharded.

mod cli;

use std::path::{Path, PathBuf};

use cli::{fails, ok, read, s};

fn dir(name: &str) -> PathBuf {
    cli::scratch("tune", name)
}

fn repo(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).display().to_string()
}

/// The start: Emken without forgetting (f = 1: the stiffness only ratchets up, so help never fades and the
/// patient slacks), a high gain, and no window of free movement (issue 12's remedy for slacking, off).
const COMMON: &str = r#"
[start]
"aan.emken.forgetting" = 1.0
"aan.emken.gain" = 1500.0
"aan.emken.window_fraction" = 0.0

[cohort]
patients = ["moderate"]
seeds = [1]
sessions = 2
protocol = "PROTOCOL"
HOLDOUT

[objective.weights]
assistance_change = 1.0
true_effort_share = -1.0

[objective.constraints]
success = { min = 0.9 }
"#;

fn tuning_file(d: &Path, head: &str, holdout: &str) -> PathBuf {
    let path = d.join("tune.toml");
    let text = format!("{head}\n{COMMON}")
        .replace("PROTOCOL", &repo("tests/study/center-out-short.toml"))
        .replace("HOLDOUT", holdout);
    std::fs::write(&path, text).unwrap();
    path
}

fn column(csv: &str, name: &str) -> Vec<String> {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no column {name}: {header:?}"));
    csv.lines().skip(1).map(|l| l.split(',').nth(i).unwrap_or("").to_owned()).collect()
}

#[test]
fn a_grid_tuning_reports_invalid_candidates_shards_merge_to_the_unsharded_outputs_and_its_best_config_runs() {
    let d = dir("grid");
    // 2 × 2 grid: progression.window = 40 is out of its range (2..=32), so two candidates are invalid.
    let file = tuning_file(
        &d,
        r#"name = "grid"
method = "grid"
seed = 5
[[parameters]]
key = "aan.emken.forgetting"
min = 0.7
max = 0.95
points = 2
[[parameters]]
key = "aan.progression.window"
type = "int"
min = 16
max = 40
points = 2
[budget]
evaluations = 4"#,
        "",
    );
    let (all, a, b, merged) = (d.join("all"), d.join("a"), d.join("b"), d.join("merged"));
    let text = ok(&["tune", s(&file), "--out", s(&all), "--threads", "2", "-q"]);
    assert!(text.contains("evaluations/hour"), "{text}");
    let csv = read(&all.join("evaluations.csv"));
    assert!(
        csv.starts_with(
            "index,generation,status,aan.emken.forgetting,aan.progression.window,objective,feasible,violation,\
             assistance_change,true_effort_share,effort_share,success,tracking_error_rad,final_error_mm,sparc,\
             safety_stops,sessions,session_time_s,error\n"
        ),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 1 + 5, "the start and 4 grid points: {csv}");
    assert_eq!(column(&csv, "aan.progression.window"), ["16", "16", "40", "16", "40"]);
    assert_eq!(column(&csv, "status"), ["ok", "ok", "invalid", "ok", "invalid"]);
    for row in csv.lines().skip(1).filter(|l| l.contains(",invalid,")) {
        assert!(row.contains("aan.progression.window") && row.ends_with('"'), "the error names the key: {row}");
        assert!(row.contains(",,0,0,"), "not run: no metrics, no sessions: {row}");
    }
    for (status, sessions) in column(&csv, "status").iter().zip(column(&csv, "sessions")) {
        if status == "ok" {
            assert_eq!(sessions, "2");
        }
    }
    let objective: Vec<f64> = column(&csv, "objective").iter().filter_map(|o| o.parse().ok()).collect();
    assert_eq!(objective.len(), 3);
    for ext in ["png", "svg"] {
        for plot in ["objective", "best-so-far"] {
            let p = all.join(format!("plots/{plot}.{ext}"));
            assert!(std::fs::metadata(&p).map(|m| m.len() > 1000).unwrap_or(false), "{}", p.display());
        }
    }
    let report = read(&all.join("report.md"));
    assert!(report.starts_with("# Tuning: grid") && report.contains("2 invalid"), "{report}");
    assert!(report.contains("## Invalid candidates") && report.contains("(plots/objective.png)"), "{report}");

    // Shards on one thread, merged: the unsharded outputs byte for byte.
    ok(&["tune", s(&file), "--shard", "1/2", "--out", s(&a), "--threads", "1", "-q"]);
    let e = fails(&["tune", "merge", s(&a), "--out", s(&merged)]);
    assert!(e.contains("missing") && e.contains("run the missing shards"), "{e}");
    ok(&["tune", s(&file), "--shard", "2/2", "--out", s(&b), "--threads", "1", "-q"]);
    ok(&["tune", "merge", s(&a), s(&b), "--out", s(&merged)]);
    for f in ["evaluations.csv", "report.md", "best-controller.toml", "plots/objective.svg"] {
        assert_eq!(read(&all.join(f)), read(&merged.join(f)), "{f}: sharded + merged != unsharded");
    }
    let e = fails(&["tune", "merge", s(&a), s(&a), "--out", s(&d.join("twice"))]);
    assert!(e.contains("missing"), "{e}");

    // The best configuration as is: check, sim --controller, run --controller (emulated drives).
    let best = all.join("best-controller.toml");
    let header = read(&best);
    assert!(header.starts_with("# plexo tune `grid`: the best of its evaluations"), "{header}");
    ok(&["check", "--controller", s(&best)]);
    let sim = ok(&[
        "sim",
        "--controller",
        s(&best),
        "--plant",
        "articulated",
        "--protocol",
        &repo("tests/study/center-out-short.toml"),
        "--trials",
        "10",
        "--no-save",
        "--out",
        s(&d.join("sim")),
        "-q",
    ]);
    assert!(sim.contains("trial limit reached"), "{sim}");
    let hw = d.join("hw.toml");
    std::fs::copy(repo("assets/configs/plexo-arm4-hardware.toml"), &hw).unwrap();
    let run =
        ["run", "--hardware", s(&hw), "--emulate", "articulated", "--patient", "moderate", "--controller", s(&best)];
    ok(&[&run[..], &["--home", "--i-confirm-the-patient-is-safe", "-q"]].concat());
    let out = ok(&[&run[..], &["--i-confirm-the-patient-is-safe", "--trials", "1", "-q", "--no-save"]].concat());
    assert!(out.contains("trial limit reached"), "{out}");

    // The final check on the other physics engine: the start and the best on rapier.
    ok(&["tune", "verify", s(&file), s(&merged), "--plant", "rapier", "-q"]);
    let check = read(&merged.join("verify.md"));
    assert!(check.contains("on the rapier plant"), "{check}");
    let rows: Vec<&str> = check.lines().filter(|l| l.starts_with("| start |") || l.starts_with("| best-1 |")).collect();
    assert_eq!(rows.len(), 2, "one tuning patient, no held-out ones: {check}");
    assert!(rows.iter().all(|r| r.contains("| tuning | moderate |") && r.contains("| yes |")), "{check}");
    let e = fails(&["tune", "verify", s(&file), s(&d.join("nothing")), "-q"]);
    assert!(e.contains("nothing"), "{e}");

    // A bad tuning file names the key.
    let bad = d.join("bad.toml");
    std::fs::write(&bad, read(&file).replace("key = \"aan.emken.forgetting\"", "key = \"aan.emken.forgeting\""))
        .unwrap();
    let e = fails(&["tune", s(&bad), "--out", s(&d.join("bad")), "-q"]);
    assert!(e.contains("parameters[0].key") && e.contains("aan.emken.forgeting"), "{e}");
}

#[test]
fn cmaes_from_a_slacking_emken_start_improves_holds_on_a_held_out_profile_and_shards_by_generation() {
    let d = dir("cmaes");
    // A held-out profile (not in assets/patients): weaker, stiffer and slacking more than the tuning patient.
    let heldout = read(Path::new(&repo("assets/patients/moderate.toml")))
        .replace("name = \"moderate\"", "name = \"heldout\"")
        .replace("sim-moderate", "sim-heldout")
        .replace("max_torque = 20.0", "max_torque = 13.0")
        .replace("max_torque = 24.0", "max_torque = 15.0")
        .replace("\nforgetting = 0.85", "\nforgetting = 0.92")
        .replace("error_gain = 3.0", "error_gain = 1.6")
        .replace("passive_stiffness = 1.8", "passive_stiffness = 2.6");
    std::fs::write(d.join("heldout.toml"), heldout).unwrap();
    let file = tuning_file(
        &d,
        r#"name = "slacking-emken"
method = "cmaes"
seed = 11
[[parameters]]
key = "aan.emken.forgetting"
min = 0.5
max = 1.0
[[parameters]]
key = "aan.emken.gain"
min = 50.0
max = 2000.0
scale = "log"
[budget]
evaluations = 8
population = 4"#,
        "holdout = [\"heldout.toml\"]",
    );
    let all = d.join("all");
    let text = ok(&["tune", s(&file), "--out", s(&all), "--plant", "articulated", "-q"]);
    assert!(text.contains("final check"), "{text}");
    let csv = read(&all.join("evaluations.csv"));
    assert_eq!(column(&csv, "generation"), ["1", "1", "1", "1", "1", "2", "2", "2", "2"]);
    let objective: Vec<f64> = column(&csv, "objective").iter().map(|o| o.parse().unwrap()).collect();
    let feasible = column(&csv, "feasible");
    let best = (1..objective.len()).filter(|i| feasible[*i] == "1").map(|i| objective[i]).fold(f64::INFINITY, f64::min);
    assert!(best < objective[0] - 0.2, "the search improves on the slacking start: {objective:?}");
    let forgetting: Vec<f64> = column(&csv, "aan.emken.forgetting").iter().map(|x| x.parse().unwrap()).collect();
    assert_eq!(forgetting[0], 1.0, "evaluation 0 is the start");

    // The held-out profile: the best configuration also beats the start there.
    let check = read(&all.join("verify.csv"));
    let row = |config: &str, patient: &str| -> f64 {
        let line = check
            .lines()
            .find(|l| l.starts_with(&format!("{config},")) && l.contains(&format!(",held-out,{patient},")))
            .unwrap_or_else(|| panic!("no {config} {patient} row:\n{check}"));
        line.split(',').nth(4).unwrap().parse().unwrap()
    };
    assert!(row("best-1", "heldout") < row("start", "heldout") - 0.2, "{check}");

    // Generation by generation, each in two shards, merged between generations: the unsharded outputs.
    let merged = d.join("merged");
    let e = fails(&["tune", s(&file), "--shard", "1/2", "--out", s(&d.join("x")), "-q"]);
    assert!(e.contains("--generation"), "{e}");
    for g in ["1", "2"] {
        let mut shards = Vec::new();
        for i in ["1", "2"] {
            let out = d.join(format!("g{g}s{i}"));
            let mut args = vec!["tune", s(&file), "--generation", g, "--shard", if i == "1" { "1/2" } else { "2/2" }];
            if g == "2" {
                args.extend(["--from", s(&merged)]);
            }
            let out_s = out.display().to_string();
            args.extend(["--out", &out_s, "--threads", "1", "-q"]);
            ok(&args);
            shards.push(out_s);
        }
        let mut args = vec!["tune", "merge"];
        if g == "2" {
            args.push(s(&merged));
        }
        args.extend(shards.iter().map(String::as_str));
        args.extend(["--out", s(&merged)]);
        ok(&args);
    }
    for f in ["evaluations.csv", "report.md", "best-controller.toml"] {
        assert_eq!(read(&all.join(f)), read(&merged.join(f)), "{f}: generation shards + merge != unsharded");
    }
}
