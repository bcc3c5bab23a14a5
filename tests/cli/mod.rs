//! The `plexo` command line as the end-to-end tests of `plexo study` and `plexo tune` run it (one copy for both:
//! `mod cli;`). Each test crate uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the `plexo` binary built for these tests with `args`.
pub fn plexo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plexo")).args(args).output().expect("the plexo binary runs")
}

/// Runs `plexo args`, asserts success and returns stdout + stderr.
pub fn ok(args: &[&str]) -> String {
    let out = plexo(args);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "plexo {args:?} failed:\n{text}");
    text
}

/// Runs `plexo args`, asserts failure and returns stderr.
pub fn fails(args: &[&str]) -> String {
    let out = plexo(args);
    assert!(!out.status.success(), "plexo {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A fresh, empty scratch folder `plexo-<kind>-<name>-<pid>` in the temp dir.
pub fn scratch(kind: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("plexo-{kind}-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The text of file `p`; a missing file panics naming it.
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// `p` as a command-line argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}
