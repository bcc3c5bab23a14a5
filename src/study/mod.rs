//! `plexo study`: courses and cohorts as researchers run them. A study file names controllers × patients ×
//! seeds × sessions per course ([`file`]); every course runs its sessions chained as `--resume` chains them,
//! headless, courses in parallel on all cores ([`run`]); the raw result of each course is kept
//! (`raw/course-NNNNN.toml`, [`raw`]) and the tables ([`tables`]), plots ([`plots`]) and report are generated
//! from the raw results — by the unsharded run itself or by `plexo study merge` over the folders of shards
//! (`--shard i/n`), which therefore writes exactly the unsharded outputs. Format and outputs: docs/studies.md.

pub mod criteria;
pub mod file;
pub mod plots;
pub mod raw;
pub mod run;
pub mod tables;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand};

use crate::AppError;
use file::Study;
use raw::CourseResult;

/// Options of `plexo study`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct StudyArgs {
    /// `merge`: combine the output folders of shards.
    #[command(subcommand)]
    pub command: Option<StudyCommand>,
    /// The study file (.toml; see docs/studies.md and assets/studies/).
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// Output folder (default: out/study-<file stem>). Its raw/ folder is replaced.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Run only slice i of n (1-based): courses whose index ≡ i − 1 (mod n); writes the raw results only, to be
    /// combined with `plexo study merge`. Without it: SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT (minus
    /// SLURM_ARRAY_TASK_MIN), or JOB_COMPLETION_INDEX with PLEXO_SHARDS (Kubernetes Indexed Job), else 1/1.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Subcommands of `plexo study`.
#[derive(Subcommand, Debug, Clone)]
pub enum StudyCommand {
    /// Combine the output folders of the shards of one study into the study's outputs (tables, plots, report):
    /// byte for byte those of an unsharded run.
    Merge {
        /// The shards' output folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Which slice of the courses this process runs: shard `index` (1-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl Shard {
    /// Does course `course` belong to this shard?
    pub fn has(&self, course: usize) -> bool {
        course % self.count == self.index - 1
    }
}

fn shard_error(key: &str, reason: String) -> AppError {
    AppError::Config { file: "(command line / environment)".into(), key: key.into(), reason }
}

/// The shard from `--shard`, else from the environment (`env` looks a variable up), else 1/1.
pub fn shard(arg: Option<&str>, env: impl Fn(&str) -> Option<String>) -> Result<Shard, AppError> {
    let number = |key: &str, v: &str| {
        v.trim().parse::<usize>().map_err(|_| shard_error(key, format!("`{v}` is not a non-negative integer")))
    };
    let checked = |key: &str, index: usize, count: usize| {
        if count == 0 || index == 0 || index > count {
            Err(shard_error(key, format!("shard {index} of {count}: needs 1 <= i <= n")))
        } else {
            Ok(Shard { index, count })
        }
    };
    if let Some(s) = arg {
        let (i, n) = s.split_once('/').ok_or_else(|| shard_error("--shard", format!("`{s}` is not I/N")))?;
        return checked("--shard", number("--shard", i)?, number("--shard", n)?);
    }
    if let (Some(id), Some(count)) = (env("SLURM_ARRAY_TASK_ID"), env("SLURM_ARRAY_TASK_COUNT")) {
        let min = env("SLURM_ARRAY_TASK_MIN").map_or(Ok(0), |m| number("SLURM_ARRAY_TASK_MIN", &m))?;
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        let offset = id
            .checked_sub(min)
            .ok_or_else(|| shard_error("SLURM_ARRAY_TASK_ID", format!("{id} is below SLURM_ARRAY_TASK_MIN {min}")))?;
        return checked("SLURM_ARRAY_TASK_ID", offset + 1, number("SLURM_ARRAY_TASK_COUNT", &count)?);
    }
    if let Some(index) = env("JOB_COMPLETION_INDEX") {
        let count = env("PLEXO_SHARDS").ok_or_else(|| {
            shard_error("PLEXO_SHARDS", "JOB_COMPLETION_INDEX is set: PLEXO_SHARDS must give the completions".into())
        })?;
        let index = number("JOB_COMPLETION_INDEX", &index)?;
        return checked("JOB_COMPLETION_INDEX", index + 1, number("PLEXO_SHARDS", &count)?);
    }
    Ok(Shard { index: 1, count: 1 })
}

/// Runs `plexo study`.
pub fn run(args: &StudyArgs) -> Result<(), AppError> {
    if let Some(StudyCommand::Merge { dirs, out }) = &args.command {
        let merged = merge(dirs, out)?;
        println!("merged {} courses from {} folders into {}", merged, dirs.len(), out.display());
        return Ok(());
    }
    let path = args.file.as_deref().ok_or_else(|| shard_error("FILE", "a study file is required".into()))?;
    let shard = shard(args.shard.as_deref(), |k| std::env::var(k).ok())?;
    // As every input: a regular file within the size limit (a FIFO is refused, not waited on).
    let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
    let study = Study::parse(&text, path)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!(
            "study-{}",
            path.file_stem().map_or_else(|| "study".into(), |s| s.to_string_lossy().into_owned())
        ))
    });
    crate::files::check_distinct(&[("FILE", path)], &[("--out", &out)])?;
    let prepared = run::prepare(study, path)?;
    let courses: Vec<_> = prepared.study().courses().into_iter().filter(|c| shard.has(c.index)).collect();
    // A fresh raw/ folder: no course of an earlier run is mixed into this one's results.
    for stale in raw::course_files(&out).unwrap_or_default() {
        std::fs::remove_file(&stale).map_err(|e| AppError::Io { path: stale.display().to_string(), source: e })?;
    }
    crate::files::write_atomically(&out.join("raw").join("study.toml"), text.as_bytes())?;
    let sessions = courses.len() as u64 * u64::from(prepared.study().sessions);
    if !args.quiet {
        println!(
            "study {}: {} of {} courses (shard {}/{}), {} sessions, {} plant",
            prepared.study().name,
            courses.len(),
            prepared.study().courses().len(),
            shard.index,
            shard.count,
            sessions,
            match prepared.study().plant {
                file::StudyPlant::Articulated => "articulated",
                file::StudyPlant::Rapier => "rapier",
            }
        );
    }
    let wall = Instant::now();
    let run_all = || prepared.run_courses(&courses, args.quiet, |c| c.save(&out));
    let results = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map_err(|e| shard_error("--threads", e.to_string()))?
            .install(run_all)?,
        None => run_all()?,
    };
    let wall = wall.elapsed().as_secs_f64();
    let simulated: f64 = results.iter().flat_map(|c| &c.sessions).map(|s| s.session_time_s).sum();
    println!(
        "{} sessions ({:.1} h of session time) in {:.1} s wall: {:.0} sessions/hour, {:.0}x real time",
        sessions,
        simulated / 3600.0,
        wall,
        sessions as f64 * 3600.0 / wall.max(1e-9),
        simulated / wall.max(1e-9)
    );
    if shard.count == 1 {
        merge(std::slice::from_ref(&out), &out)?;
        println!("outputs in {}: report.md, trials.csv, sessions.csv, cohort.csv, plots/, raw/", out.display());
    } else {
        println!(
            "shard {}/{}: raw results in {}; combine all shards with `plexo study merge <folders> --out <dir>`",
            shard.index,
            shard.count,
            out.join("raw").display()
        );
    }
    Ok(())
}

/// Reads the raw results of the folders, checks they are exactly one study's courses, each once, and writes
/// the outputs to `out`. Returns the number of courses. Not real-time safe.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<usize, AppError> {
    let mut study: Option<(String, PathBuf)> = None;
    let mut found: Vec<(CourseResult, PathBuf, String)> = Vec::new();
    for dir in dirs {
        let study_path = dir.join("raw").join("study.toml");
        let text = crate::files::read_input(&study_path, crate::files::MAX_CONFIG_BYTES)?;
        match &study {
            Some((first, first_path)) if *first != text => {
                return Err(AppError::Config {
                    file: study_path.display().to_string(),
                    key: "(study)".into(),
                    reason: format!(
                        "another study than {}: shards of different studies do not merge",
                        first_path.display()
                    ),
                });
            }
            Some(_) => {}
            None => study = Some((text, study_path.clone())),
        }
        for path in raw::course_files(dir)? {
            let bytes = crate::files::read_input(&path, raw::MAX_COURSE_BYTES)?;
            found.push((CourseResult::load(&path)?, path, bytes));
        }
    }
    let (text, study_path) = study.ok_or_else(|| shard_error("DIRS", "no folder given".into()))?;
    let study = Study::parse(&text, &study_path)?;
    let total = study.courses().len();
    found.sort_by_key(|(c, ..)| c.index);
    for (i, (c, path, _)) in found.iter().enumerate() {
        let bad =
            |reason: String| AppError::Config { file: path.display().to_string(), key: "(course)".into(), reason };
        if c.study != study.fingerprint || c.courses != total {
            return Err(bad(format!(
                "not a course of {} (study fingerprint {})",
                study_path.display(),
                study.fingerprint
            )));
        }
        if c.sessions.len() != study.sessions as usize {
            return Err(bad(format!("{} sessions, the study has {}", c.sessions.len(), study.sessions)));
        }
        if i > 0 && found[i - 1].0.index == c.index {
            return Err(bad(format!("course {} is also in {}", c.index, found[i - 1].1.display())));
        }
    }
    let missing: Vec<usize> =
        (0..total).filter(|i| found.binary_search_by_key(i, |(c, ..)| c.index).is_err()).collect();
    if !missing.is_empty() {
        return Err(AppError::Config {
            file: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            key: "(courses)".into(),
            reason: format!(
                "{} of {total} courses are missing (indices {:?}{}): run the missing shards",
                missing.len(),
                &missing[..missing.len().min(10)],
                if missing.len() > 10 { ", …" } else { "" }
            ),
        });
    }
    // The raw results travel with the outputs, as an unsharded run leaves them.
    crate::files::write_atomically(&out.join("raw").join("study.toml"), text.as_bytes())?;
    for (c, path, bytes) in &found {
        let target = raw::course_path(out, c.index);
        if !same_file(path, &target) {
            crate::files::write_atomically(&target, bytes.as_bytes())?;
        }
    }
    let courses: Vec<CourseResult> = found.into_iter().map(|(c, ..)| c).collect();
    write_outputs(&study, &courses, out)?;
    Ok(courses.len())
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Writes sessions.csv, cohort.csv, the plots and report.md from the courses (in course order). Not real-time
/// safe.
fn write_outputs(study: &Study, courses: &[CourseResult], out: &Path) -> Result<(), AppError> {
    crate::files::write_atomically(&out.join("trials.csv"), tables::trials_csv(courses).as_bytes())?;
    crate::files::write_atomically(&out.join("sessions.csv"), tables::sessions_csv(courses).as_bytes())?;
    let cells = tables::cells(courses);
    crate::files::write_atomically(&out.join("cohort.csv"), tables::cohort_csv(&cells).as_bytes())?;
    let controllers = tables::ordered(courses.iter().map(|c| c.controller.clone()));
    let patients = tables::ordered(courses.iter().map(|c| c.patient.clone()));
    let plots = plots::write_plots(out, &controllers, &patients, &cells)?;
    if let Err(why) = &plots {
        eprintln!("warning: no plots: {why}");
    }
    let mut report = report_md(study, courses.len(), &controllers, &patients, &cells, &plots);
    report.push_str(&criteria::criteria_md(courses, study.capacity_drop));
    report.push_str(&criteria::probes_md(courses));
    crate::files::write_atomically(&out.join("report.md"), report.as_bytes())
}

/// The Markdown report: what was run, the measures, and per patient the plot and the cohort table.
fn report_md(
    study: &Study,
    courses: usize,
    controllers: &[String],
    patients: &[String],
    cells: &[tables::Cell],
    plots: &Result<Vec<PathBuf>, String>,
) -> String {
    let mut s = format!("# Study: {}\n\n", study.name);
    if !study.description.is_empty() {
        s.push_str(&format!("{}\n\n", study.description.trim()));
    }
    s.push_str(&format!(
        "{courses} courses = {} controllers ({}) × {} patients ({}) × {} seeds ({}), {} sessions each, chained as \
         `--resume` chains them; protocol `{}`, robot `{}`, {} plant{}. Study file fingerprint {}.\n\n",
        controllers.len(),
        controllers.join(", "),
        patients.len(),
        patients.join(", "),
        study.seeds.len(),
        study.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        study.sessions,
        study.protocol,
        study.robot,
        match study.plant {
            file::StudyPlant::Articulated => "articulated",
            file::StudyPlant::Rapier => "rapier",
        },
        match (study.limits.trials, study.limits.duration) {
            (None, None) => String::new(),
            (t, d) => format!(
                "; sessions limited to{}{}",
                t.map_or_else(String::new, |t| format!(" {t} trials")),
                d.map_or_else(String::new, |d| format!(" {d} s"))
            ),
        },
        study.fingerprint
    ));
    s.push_str(
        "Files: `trials.csv` (one row per trial of every session, estimates next to the simulator's truth), \
         `sessions.csv` (one row per course × session × block, and the assisted blocks' aggregate), \
         `cohort.csv` (per controller × patient × session: mean and 95 % interval across seeds of each measure), \
         `raw/` (the raw result of every course; `plexo study merge` rebuilds these outputs from it). Columns and \
         units: docs/studies.md.\n\n\
         Measures are trial-weighted means over the active-assisted blocks of a session. Intervals are Student-t \
         95 % intervals of the mean across seeds, mean ± t(0.975, n−1)·s/√n (none for one seed). The effort share \
         is task-directed: ΣW_patient / (ΣW_patient + ΣW_assist), positive work along the desired motion \
         (plexo_controller::effort); the estimate comes from the observer minus the passive-tissue model, the true \
         share from the virtual patient's voluntary torque.\n\n",
    );
    if let Err(why) = plots {
        s.push_str(&format!("No plots were drawn: {why}.\n\n"));
    }
    for patient in patients {
        s.push_str(&format!("## Patient {patient}\n\n"));
        if plots.is_ok() {
            let stem = plots::stem(patient);
            s.push_str(&format!("![{patient}]({stem}.png)\n\n[SVG]({stem}.svg)\n\n"));
        }
        s.push_str(
            "| controller | session | success rate | assistance [Nm] | effort share (est.) | effort share (true) \
             | SPARC | stiffness [Nm/rad] | weight support | error [mm] |\n",
        );
        s.push_str("|---|---|---|---|---|---|---|---|---|---|\n");
        for ctrl in controllers {
            for c in cells.iter().filter(|c| &c.controller == ctrl && &c.patient == patient) {
                let v = |key: &str| {
                    let m = tables::MEASURES.iter().position(|(k, _)| *k == key).expect("a measure");
                    &c.values[m]
                };
                s.push_str(&format!(
                    "| {ctrl} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                    c.session,
                    tables::mean_ci_text(v("success_rate"), 2),
                    tables::mean_ci_text(v("assistance_nm"), 2),
                    tables::mean_ci_text(v("effort_share_est"), 2),
                    tables::mean_ci_text(v("effort_share_true"), 2),
                    tables::mean_ci_text(v("sparc"), 2),
                    tables::mean_ci_text(v("stiffness_nm_rad"), 1),
                    tables::mean_ci_text(v("arm_support"), 2),
                    tables::mean_ci_text(v("final_error_mm"), 1),
                ));
            }
        }
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn the_shard_comes_from_the_option_then_slurm_then_kubernetes() {
        assert_eq!(shard(Some("2/3"), env(&[])).unwrap(), Shard { index: 2, count: 3 });
        assert_eq!(shard(None, env(&[])).unwrap(), Shard { index: 1, count: 1 });
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_COUNT", "4"), ("SLURM_ARRAY_TASK_MIN", "2")]);
        assert_eq!(shard(None, slurm).unwrap(), Shard { index: 4, count: 4 });
        let k8s = env(&[("JOB_COMPLETION_INDEX", "0"), ("PLEXO_SHARDS", "8")]);
        assert_eq!(shard(None, k8s).unwrap(), Shard { index: 1, count: 8 });
        assert!(shard(None, env(&[("JOB_COMPLETION_INDEX", "0")])).unwrap_err().to_string().contains("PLEXO_SHARDS"));
        assert!(shard(Some("3/2"), env(&[])).is_err());
        assert!(shard(Some("0/2"), env(&[])).is_err());
        let s = Shard { index: 2, count: 3 };
        assert_eq!((0..7).filter(|c| s.has(*c)).collect::<Vec<_>>(), vec![1, 4]);
    }
}
