//! `plexo`: the command-line application of the Plexo rehabilitation-exoskeleton control stack.
//!
//! Subcommands: `sim` (the main job: a simulated therapy session), `run` (hardware over CAN), `check` (validate
//! configuration), `model` (print a robot model), `replay` (re-open a recording), `study` (courses and
//! cohorts), `patient` (the patient store), `report` (a patient's longitudinal report), `analyze` (measures of an
//! external recording). See README.md.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // `RUST_LOG=plexo=debug` for trial-level logs; warnings by default (the progress bar and the summary are the
    // normal output).
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: a log file or a test reading stderr gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = plexo::cli::Cli::parse();
    match plexo::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
