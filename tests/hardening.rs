//! Clinic hardening (issue 13) through the `plexo` binary: safety settings that would switch a protection off are
//! refused by `check` and `sim`, patient files are private, bad input files are refused with a clear error, and
//! every shipped robot runs with the embedded defaults.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn plexo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexo")).args(args).output().expect("the plexo binary runs")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plexo-hardening").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The embedded controller configuration with the line starting with `key` replaced by `line`, written to `dir`.
fn controller_with(dir: &Path, key: &str, line: &str) -> PathBuf {
    let original = std::fs::read_to_string(repo("assets/configs/controller.toml")).unwrap();
    let changed: String = original
        .lines()
        .map(|l| if l.starts_with(key) { line.to_owned() } else { l.to_owned() })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(changed, original.trim_end(), "the test must change the file");
    let file = dir.join("controller.toml");
    std::fs::write(&file, changed).unwrap();
    file
}

#[test]
fn a_soft_start_of_zero_is_refused_by_check_and_sim() {
    // Issue 13 §3: `soft_start_time = 0` (no ramp: a torque step on enable and resume) passed `check`.
    let dir = scratch("soft-start-zero");
    let file = controller_with(&dir, "soft_start_time", "soft_start_time = 0.0");
    for args in [&["check", "--controller"][..], &["sim", "--no-save", "--controller"][..]] {
        let mut args = args.to_vec();
        args.push(file.to_str().unwrap());
        let out = plexo(&args);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} accepted soft_start_time = 0:\n{stdout}");
        assert!(stderr.contains("safety.soft_start_time") && stderr.contains("[0.1, 10]"), "{args:?}: {stderr}");
    }
}
