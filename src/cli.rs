//! The `plexo` command line (clap).

use clap::{Parser, Subcommand};

use crate::AppError;
use crate::{
    analyze_cmd, check_cmd, model_cmd, patient_cmd, patient_report, replay_cmd, run_cmd, sim_cmd, study, tune,
};

/// Plexo: control stack for upper-limb rehabilitation exoskeletons.
#[derive(Parser, Debug)]
#[command(name = "plexo", version, about, long_about = None)]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a simulated therapy session (default: plexo-arm4, moderate patient, center-out protocol, ~10 min).
    Sim(sim_cmd::SimArgs),
    /// Drive the real robot over CAN (validates like `check` first; needs --i-confirm-the-patient-is-safe).
    Run(run_cmd::RunArgs),
    /// Validate every configuration file; print joint limits, safety settings and the bus-load plan.
    Check(check_cmd::CheckArgs),
    /// Look back at a session: a Rerun recording (.rrd) or a candump log.
    Replay(replay_cmd::ReplayArgs),
    /// Run a study: every course (controller × patient × seed) of a study file, sessions chained as `--resume`
    /// chains them, in parallel; tables, cohort statistics, plots and a report (see docs/studies.md).
    Study(study::StudyArgs),
    /// Search controller parameters over a virtual cohort (random, grid, CMA-ES) on the study engine: best
    /// configuration, evaluations.csv, plots, report (see docs/tuning.md).
    Tune(tune::TuneArgs),
    /// The clinic's patients in the store (SQLite, default plexo-data/plexo.db): add, list, show, set-rom, export,
    /// delete.
    Patient(patient_cmd::PatientArgs),
    /// A patient's longitudinal report: one self-contained HTML file with per-session metrics, trends and plots.
    Report(patient_report::ReportArgs),
    /// Movement metrics of an external recording (CSV: t and x,y,z [m], or t and joint angles [rad]).
    Analyze(analyze_cmd::AnalyzeArgs),
    /// Print the parsed kinematic chain of a robot: joints, axes, limits, masses, frames.
    Model {
        /// A URDF file, or an embedded default: plexo-arm4, plexo-arm6, test-arm7.
        robot: String,
        /// Machine-readable JSON instead of the table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Sim(args) => sim_cmd::run(&args),
        Command::Run(args) => run_cmd::run(&args),
        Command::Check(args) => check_cmd::run(&args),
        Command::Replay(args) => replay_cmd::run(&args),
        Command::Study(args) => study::run(&args),
        Command::Tune(args) => tune::run(&args),
        Command::Patient(args) => patient_cmd::run(&args),
        Command::Report(args) => patient_report::run(&args),
        Command::Analyze(args) => analyze_cmd::run(&args),
        Command::Model { robot, json } => {
            let model = model_cmd::load_robot(&robot)?;
            let summary = model_cmd::summarize(&model);
            if json {
                let text = serde_json::to_string_pretty(&summary)
                    .map_err(|e| AppError::Robot(format!("cannot serialize the model summary: {e}")))?;
                println!("{text}");
            } else {
                print!("{}", model_cmd::render_text(&summary));
            }
            Ok(())
        }
    }
}
