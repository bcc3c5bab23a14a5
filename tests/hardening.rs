//! Clinic hardening (issue 13) through the `plexo` binary: safety settings that would switch a protection off are
//! refused by `check` and `sim`, patient files are private, bad input files are refused with a clear error, and
//! every shipped robot runs with the embedded defaults.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `plexo` binary under test: `CARGO_BIN_EXE_plexo`, or `PLEXO_TEST_BIN` when set (a target directory
/// shared by several checkouts uplifts whichever `plexo` was linked last to `target/debug/plexo`).
fn bin() -> String {
    std::env::var("PLEXO_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_plexo").to_owned())
}

fn plexo(args: &[&str]) -> Output {
    Command::new(bin()).args(args).output().expect("the plexo binary runs")
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

/// Runs `plexo args` in `dir` with the umask `umask` (through `sh`, so the process inherits it).
fn plexo_in(dir: &Path, umask: &str, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!("umask {umask} && exec \"$0\" \"$@\""))
        .arg(bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sh runs plexo")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

#[test]
fn patient_outputs_are_owner_only_whatever_the_umask_and_named_by_the_pseudonymous_id() {
    // Issue 13 §2: outputs were created with the umask's mode (0644/0666: readable by every user of the clinic
    // PC), and session, file and recording names carried the profile's `name`, which a clinic may fill with a
    // person's name.
    let dir = scratch("private-outputs");
    let profile = std::fs::read_to_string(repo("assets/patients/moderate.toml"))
        .unwrap()
        .replace("name = \"moderate\"", "name = \"Jane Doe\"")
        .replace("id = \"sim-moderate\"", "id = \"P-0042\"");
    assert!(profile.contains("Jane Doe") && profile.contains("P-0042"));
    std::fs::write(dir.join("patient.toml"), profile).unwrap();
    let out = plexo_in(&dir, "000", &["sim", "--patient", "patient.toml", "--duration", "0.3", "-q"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "sim failed:\n{stdout}\n{stderr}");
    assert!(!stdout.contains("Jane") && !stderr.contains("Jane"), "the profile's name was printed:\n{stdout}");
    let outputs = dir.join("out");
    assert_eq!(mode(&outputs), 0o700, "the output directory plexo created");
    let files: Vec<PathBuf> = std::fs::read_dir(&outputs).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(files.iter().any(|f| f.extension().is_some_and(|e| e == "rrd")), "{files:?}");
    for f in &files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.contains("P-0042") && !name.contains("Jane"), "output named by the id, not the name: {name}");
        assert_eq!(mode(f), 0o600, "{name}");
        let bytes = std::fs::read(f).unwrap();
        assert!(!bytes.windows(8).any(|w| w == b"Jane Doe"), "{name} holds the profile's name");
    }
    // A patient of the store (`--patient-id`) is named by their id; the store is private and holds no name; an
    // id that is not a pseudonym (spaces, a path) is refused.
    let out = plexo_in(&dir, "022", &["patient", "add", "S7.v2", "--virtual", "patient.toml"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let out = plexo_in(&dir, "022", &["sim", "--duration", "0.3", "-q", "--patient-id", "S7.v2"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(std::fs::read_dir(&outputs).unwrap().any(|e| e.unwrap().file_name().to_string_lossy().contains("S7-v2")));
    let db = dir.join("plexo-data/plexo.db");
    assert_eq!((mode(&db), mode(db.parent().unwrap())), (0o600, 0o700), "the store is owner-only");
    let bytes = std::fs::read(&db).unwrap();
    assert!(!bytes.windows(8).any(|w| w == b"Jane Doe"), "the store holds the profile's name");
    let out = plexo_in(&dir, "022", &["patient", "add", "Jane Doe", "--virtual", "moderate"]);
    assert!(!out.status.success() && text(&out).1.contains("pseudonymous"), "{}", text(&out).1);
    let out = plexo_in(&dir, "022", &["sim", "--no-save", "--patient-id", "Jane Doe"]);
    assert!(!out.status.success() && text(&out).1.contains("--patient-id"), "{}", text(&out).1);
}

/// Runs `plexo args`, killing it if it has not ended within 20 s (a hang is the failure being tested).
fn plexo_within_20_s(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the plexo binary runs");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("plexo {args:?} hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_fifo_or_a_directory_as_an_input_file_is_refused_at_once_naming_it() {
    // Issue 13 §2: a FIFO given as any input file hung every command.
    let dir = scratch("fifo-input");
    let fifo = dir.join("patient.toml");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let f = fifo.to_str().unwrap();
    let d = dir.to_str().unwrap();
    for args in [
        vec!["check", "--patient", f],
        vec!["check", "--controller", f],
        vec!["check", "--protocol", f],
        vec!["check", "--robot", f],
        vec!["check", "--hardware", f],
        vec!["sim", "--no-save", "--resume", f],
        vec!["replay", f],
        vec!["study", f],
        vec!["check", "--controller", d],
    ] {
        let out = plexo_within_20_s(&args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} accepted");
        let what = if args.contains(&d) { "a directory" } else { "a FIFO" };
        assert!(stderr.contains(what) && stderr.contains(args[args.len() - 1]), "{args:?}: {stderr}");
    }
    // `study merge` reads a shard folder's raw/study.toml: a FIFO there is refused too (it hung `plexo study`).
    let shard = dir.join("shard");
    std::fs::create_dir_all(shard.join("raw")).unwrap();
    let raw_fifo = shard.join("raw").join("study.toml");
    let c = std::ffi::CString::new(raw_fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let out_dir = dir.join("merged");
    let out = plexo_within_20_s(&["study", "merge", shard.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success() && stderr.contains("a FIFO") && stderr.contains("study.toml"), "{stderr}");
}

#[test]
fn a_recording_cut_short_is_reported_as_truncated_with_how_much_it_holds() {
    // Issue 13 §2: `plexo replay` of a recording cut by `kill -9` exited 0 without a warning.
    let dir = scratch("truncated-rrd");
    let rrd = dir.join("session.rrd");
    let out = plexo(&["sim", "--duration", "2", "-q", "--save", rrd.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    let whole = plexo(&["replay", rrd.to_str().unwrap()]);
    let (stdout, stderr) = text(&whole);
    assert!(whole.status.success(), "a complete recording replays: {stderr}");
    assert!(!stdout.contains("TRUNCATED"), "{stdout}");
    // The first 60 % of the bytes, as a writer killed mid-session leaves them (under its temporary name).
    let bytes = std::fs::read(&rrd).unwrap();
    let cut = dir.join(".session.rrd.partial-4242");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    let out = plexo(&["replay", cut.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "a truncated recording must not pass as a session:\n{stdout}");
    assert!(stderr.contains("TRUNCATED") && stderr.contains("of the session"), "{stderr}");
    let holds = stdout.lines().find(|l| l.starts_with("session time recorded: 0 to ")).expect(&stdout);
    let t: f64 = holds.trim_start_matches("session time recorded: 0 to ").split(' ').next().unwrap().parse().unwrap();
    assert!(t > 0.0 && t < 2.6, "it holds part of the 2.5 s (0.5 s check + 2 s session): {t} s");
}

#[test]
fn a_robot_the_embedded_defaults_do_not_describe_is_refused_saying_which_file_to_write() {
    // Issue 13 §4: `plexo sim --robot plexo-arm6` failed with "need 6 values" naming no way out. plexo-arm6 now has
    // embedded defaults (end_to_end::every_shipped_exoskeleton_runs_a_session_on_the_embedded_defaults); a URDF
    // of the user's own gets the message naming the file to write.
    let urdf = |name: &str| format!("{}/assets/robots/{name}.urdf", env!("CARGO_MANIFEST_DIR"));
    // test-arm7's joints are in no embedded patient: the patient is named first.
    let out = plexo(&["check", "--robot", &urdf("test-arm7")]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("write a patient file") && stderr.contains("--patient FILE"), "{stderr}");
    // A URDF file of the user's own with arm6's joints: the embedded configuration (plexo-arm4's) is refused,
    // naming the file to start from.
    let arm6 = urdf("plexo-arm6");
    for args in [vec!["check", "--robot", &arm6], vec!["sim", "--no-save", "--robot", &arm6]] {
        let out = plexo(&args);
        let (_, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("--controller FILE") && stderr.contains("write a controller"), "{args:?}: {stderr}");
    }
    // The embedded kinematics test model is no exoskeleton: refused naming the ones that are.
    let out = plexo(&["sim", "--no-save", "--robot", "test-arm7"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("plexo-arm4 or plexo-arm6"), "{stderr}");
}
