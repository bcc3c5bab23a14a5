//! `plexo tune`: controller parameter search over a virtual cohort, built on the study engine. A tuning file
//! ([`file`]) names parameters of the controller configuration with ranges, a cohort, an objective and a budget;
//! the search ([`search`]: random, grid, CMA-ES) proposes candidates, each candidate is validated as `plexo
//! check` validates and run as a controller of a study over the cohort ([`eval`]), and its raw evaluation is
//! kept (`raw/eval-NNNNN.toml`). Every output — evaluations.csv, the best configuration, the plots
//! ([`plots`]) and report.md — is generated from the raw evaluations, by the unsharded run itself or by `plexo
//! tune merge` over the folders of shards, which therefore writes exactly the unsharded outputs. `verify` runs
//! the start and the best configurations on the held-out profiles and/or the rapier plant. Format, workflow and
//! columns: docs/tuning.md.

pub mod eval;
pub mod file;
pub mod plots;
pub mod search;

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};

use crate::AppError;
use crate::study::file::StudyPlant;
use crate::study::{run::session_bar, shard};
use eval::{Context, Evaluation, Pending, better, score};
use file::{METRICS, Method, Tuning};
use search::Value;

/// Candidates evaluated per batch of a random or grid search (bounds the course results held in memory).
const BATCH: usize = 16;

/// The plant of the final check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CheckPlant {
    /// The articulated-body plant.
    Articulated,
    /// The rapier3d plant.
    Rapier,
}

impl From<CheckPlant> for StudyPlant {
    fn from(p: CheckPlant) -> Self {
        match p {
            CheckPlant::Articulated => StudyPlant::Articulated,
            CheckPlant::Rapier => StudyPlant::Rapier,
        }
    }
}

/// Options of `plexo tune`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct TuneArgs {
    /// `merge`, `verify`.
    #[command(subcommand)]
    pub command: Option<TuneCommand>,
    /// The tuning file (.toml; see docs/tuning.md and assets/tuning/).
    #[arg(required = true)]
    pub file: Option<PathBuf>,
    /// Output folder (default: out/tune-<file stem>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Evaluate only slice i of n (1-based): evaluations whose index ≡ i − 1 (mod n); writes the raw
    /// evaluations only, to be combined with `plexo tune merge`. Without it: SLURM_ARRAY_TASK_ID/COUNT, or
    /// JOB_COMPLETION_INDEX with PLEXO_SHARDS, else 1/1. CMA-ES shards one generation at a time (`--generation`).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// CMA-ES: evaluate only this generation (1-based), replaying the strategy from the merged evaluations of
    /// the earlier generations in `--from`.
    #[arg(long, value_name = "G")]
    pub generation: Option<u32>,
    /// CMA-ES with `--generation` > 1: the folder holding the merged evaluations of the earlier generations.
    #[arg(long, value_name = "DIR")]
    pub from: Option<PathBuf>,
    /// Plant of the final check of the start and best configurations (default: the search's plant); the check
    /// runs after an unsharded search when the file has held-out profiles or this option is given.
    #[arg(long, value_enum)]
    pub plant: Option<CheckPlant>,
    /// Best configurations in the final check.
    #[arg(long, default_value_t = 1)]
    pub top: usize,
    /// Worker threads (default: all cores). Results do not depend on it.
    #[arg(long)]
    pub threads: Option<usize>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Subcommands of `plexo tune`.
#[derive(Subcommand, Debug, Clone)]
pub enum TuneCommand {
    /// Combine the output folders of shards (and of earlier CMA-ES generations) into the tuning's outputs:
    /// byte for byte those of an unsharded run.
    Merge {
        /// The folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Output folder (may be one of the folders).
        #[arg(long)]
        out: PathBuf,
    },
    /// Run the start and the best configurations of a finished tuning on the cohort and the held-out profiles
    /// (verify.csv, verify.md).
    Verify {
        /// The tuning file.
        file: PathBuf,
        /// The tuning's output folder.
        dir: PathBuf,
        /// Plant (default: the search's plant).
        #[arg(long, value_enum)]
        plant: Option<CheckPlant>,
        /// Best configurations checked.
        #[arg(long, default_value_t = 1)]
        top: usize,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
}

fn cli_error(key: &str, reason: impl Into<String>) -> AppError {
    AppError::Config { file: "(command line)".into(), key: key.into(), reason: reason.into() }
}

fn in_pool<T>(threads: Option<usize>, f: impl FnOnce() -> T + Send) -> Result<T, AppError>
where
    T: Send,
{
    match threads {
        Some(n) => Ok(rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .map_err(|e| cli_error("--threads", e.to_string()))?
            .install(f)),
        None => Ok(f()),
    }
}

/// Runs `plexo tune`.
pub fn run(args: &TuneArgs) -> Result<(), AppError> {
    match &args.command {
        Some(TuneCommand::Merge { dirs, out }) => {
            let n = merge(dirs, out)?;
            println!("merged {n} evaluations from {} folders into {}", dirs.len(), out.display());
            return Ok(());
        }
        Some(TuneCommand::Verify { file, dir, plant, top, threads, quiet }) => {
            let tuning = Tuning::load(file)?;
            let ctx = Context::new(tuning, file)?;
            in_pool(*threads, || verify(&ctx, dir, *plant, *top, *quiet))??;
            println!("check in {}: verify.md, verify.csv", dir.display());
            return Ok(());
        }
        None => {}
    }
    let path = args.file.as_deref().ok_or_else(|| cli_error("FILE", "a tuning file is required"))?;
    let shard = shard(args.shard.as_deref(), |k| std::env::var(k).ok())?;
    let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
    let tuning = Tuning::parse(&text, path)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("out").join(format!(
            "tune-{}",
            path.file_stem().map_or_else(|| "tune".into(), |s| s.to_string_lossy().into_owned())
        ))
    });
    crate::files::check_distinct(&[("FILE", path)], &[("--out", &out)])?;
    if tuning.method != Method::Cmaes && (args.generation.is_some() || args.from.is_some()) {
        return Err(cli_error("--generation", "generations are CMA-ES's: a random or grid search is one batch"));
    }
    if tuning.method == Method::Cmaes && shard.count > 1 && args.generation.is_none() {
        return Err(cli_error(
            "--shard",
            "CMA-ES shards one generation at a time: give --generation G (and --from DIR for G > 1); docs/tuning.md",
        ));
    }
    if let Some(g) = args.generation
        && !(1..=tuning.generations()).contains(&g)
    {
        return Err(cli_error("--generation", format!("{g} is not in 1..={}", tuning.generations())));
    }
    let ctx = Context::new(tuning, path)?;
    let tuning = &ctx.tuning;
    // The history CMA-ES replays: the merged evaluations of the earlier generations.
    let history: Vec<Evaluation> = match (&args.from, args.generation) {
        (Some(from), Some(_)) => load_evaluations(std::slice::from_ref(from), Some(&text))?.1,
        (None, Some(g)) if g > 1 => {
            return Err(cli_error("--from", format!("generation {g} needs the merged evaluations of 1..{g}")));
        }
        _ => Vec::new(),
    };
    // A fresh raw/ folder for a whole search; one generation replaces only its own evaluations.
    if args.generation.is_none() {
        let checks = ["verify.csv", "verify.md"].map(|f| out.join(f)).into_iter().filter(|p| p.exists());
        for stale in eval::evaluation_files(&out).unwrap_or_default().into_iter().chain(checks) {
            std::fs::remove_file(&stale).map_err(|e| AppError::Io { path: stale.display().to_string(), source: e })?;
        }
    }
    crate::files::write_atomically(&out.join("raw").join("tune.toml"), text.as_bytes())?;
    crate::files::write_atomically(&out.join("raw").join("base.toml"), ctx.base_text().as_bytes())?;
    let per = ctx.sessions_per_candidate();
    let planned = match tuning.method {
        Method::Cmaes => match args.generation {
            Some(g) => {
                (0..tuning.total_evaluations()).filter(|i| generation_of(tuning, *i) == g && shard.has(*i)).count()
            }
            None => tuning.total_evaluations(),
        },
        _ => (0..tuning.total_evaluations()).filter(|i| shard.has(*i)).count(),
    };
    if !args.quiet {
        println!(
            "tune {}: {} search, {} of {} evaluations (shard {}/{}{}), {} sessions each ({} patients × {} seeds × {}), {} plant",
            tuning.name,
            method_name(tuning.method),
            planned,
            tuning.total_evaluations(),
            shard.index,
            shard.count,
            args.generation.map_or_else(String::new, |g| format!(", generation {g}")),
            per,
            tuning.cohort.patients.len(),
            tuning.cohort.seeds.len(),
            tuning.cohort.sessions,
            plant_name(tuning.plant),
        );
    }
    let wall = Instant::now();
    let bar = session_bar(planned as u64 * per, args.quiet);
    let save = |e: &Evaluation| e.save(&out);
    let evaluations = in_pool(args.threads, || -> Result<Vec<Evaluation>, AppError> {
        match tuning.method {
            Method::Random | Method::Grid => {
                let mut all = vec![Pending { index: 0, generation: 0, values: ctx.start_values() }];
                all.extend(search::listed_candidates(tuning).into_iter().enumerate().map(|(i, values)| Pending {
                    index: i + 1,
                    generation: 1,
                    values,
                }));
                let mine: Vec<Pending> = all.into_iter().filter(|p| shard.has(p.index)).collect();
                let mut done = Vec::new();
                for batch in mine.chunks(BATCH) {
                    done.extend(ctx.evaluate(batch, &bar, save)?);
                }
                Ok(done)
            }
            Method::Cmaes => {
                let generations = match args.generation {
                    Some(g) => g..=g,
                    None => 1..=tuning.generations(),
                };
                let mut known = history;
                let mut done = Vec::new();
                for g in generations {
                    let batch: Vec<Pending> =
                        cmaes_batch(&ctx, g, &known)?.into_iter().filter(|p| shard.has(p.index)).collect();
                    let evaluated = ctx.evaluate(&batch, &bar, save)?;
                    known.extend(evaluated.iter().cloned());
                    done.extend(evaluated);
                }
                Ok(done)
            }
        }
    })??;
    bar.finish_and_clear();
    let wall = wall.elapsed().as_secs_f64();
    let sessions: usize = evaluations.iter().map(|e| e.sessions).sum();
    let simulated: f64 = evaluations.iter().map(|e| e.session_time_s).sum();
    println!(
        "{} evaluations ({} sessions, {:.1} h of session time) in {:.1} s wall: {:.0} evaluations/hour",
        evaluations.len(),
        sessions,
        simulated / 3600.0,
        wall,
        evaluations.len() as f64 * 3600.0 / wall.max(1e-9)
    );
    if shard.count == 1 && args.generation.is_none() {
        merge(std::slice::from_ref(&out), &out)?;
        println!("outputs in {}: report.md, evaluations.csv, best-controller.toml, plots/, raw/", out.display());
        if !tuning.cohort.holdout.is_empty() || args.plant.is_some() {
            in_pool(args.threads, || verify(&ctx, &out, args.plant, args.top, args.quiet))??;
            println!("final check in {}: verify.md, verify.csv", out.display());
        }
    } else {
        println!(
            "raw evaluations in {}; combine with `plexo tune merge <folders> --out <dir>`",
            out.join("raw").display()
        );
    }
    Ok(())
}

fn method_name(m: Method) -> &'static str {
    match m {
        Method::Random => "random",
        Method::Grid => "grid",
        Method::Cmaes => "CMA-ES",
    }
}

fn plant_name(p: StudyPlant) -> &'static str {
    match p {
        StudyPlant::Articulated => "articulated",
        StudyPlant::Rapier => "rapier",
    }
}

/// The generation of evaluation `index`: CMA-ES generation g holds 1 + (g − 1)λ ..= gλ, and the start (0) is
/// evaluated with generation 1; random and grid candidates are generation 1, the start 0.
pub fn generation_of(tuning: &Tuning, index: usize) -> u32 {
    match (tuning.method, index) {
        (Method::Cmaes, 0) => 1,
        (Method::Cmaes, i) => ((i - 1) / tuning.population) as u32 + 1,
        (_, 0) => 0,
        _ => 1,
    }
}

/// The candidates of CMA-ES generation `g` (with the start for g = 1), from the evaluations of 1..g−1.
fn cmaes_batch(ctx: &Context, g: u32, known: &[Evaluation]) -> Result<Vec<Pending>, AppError> {
    let tuning = &ctx.tuning;
    let lambda = tuning.population;
    let ranking = |generation: u32| -> Result<Vec<usize>, AppError> {
        let first = 1 + (generation as usize - 1) * lambda;
        let mut members: Vec<&Evaluation> =
            known.iter().filter(|e| (first..first + lambda).contains(&e.index)).collect();
        if members.len() != lambda {
            return Err(cli_error(
                "--from",
                format!(
                    "generation {generation} has {} of its {lambda} evaluations: merge all its shards first",
                    members.len()
                ),
            ));
        }
        members.sort_by(|a, b| better(tuning, a, b));
        Ok(members.iter().map(|e| e.index - first).collect())
    };
    let (points, _sigma) = search::cmaes_generation(tuning, &ctx.start_point(), g, ranking)?;
    let first = 1 + (g as usize - 1) * lambda;
    let mut batch = Vec::new();
    if g == 1 {
        batch.push(Pending { index: 0, generation: 1, values: ctx.start_values() });
    }
    batch.extend(points.into_iter().enumerate().map(|(k, u)| Pending {
        index: first + k,
        generation: g,
        values: search::values_at(tuning, &u),
    }));
    Ok(batch)
}

/// Reads `raw/tune.toml` (all folders must hold the same text; and `expect`'s if given) and every evaluation of
/// the folders, sorted by index; duplicates are errors. Not real-time safe.
fn load_evaluations(dirs: &[PathBuf], expect: Option<&str>) -> Result<(String, Vec<Evaluation>, PathBuf), AppError> {
    let mut first: Option<(String, PathBuf)> = None;
    let mut found: Vec<(Evaluation, PathBuf)> = Vec::new();
    for dir in dirs {
        let tune_path = dir.join("raw").join("tune.toml");
        let text = crate::files::read_input(&tune_path, crate::files::MAX_CONFIG_BYTES)?;
        let reference = expect.map(|e| (e.to_owned(), PathBuf::from("FILE"))).or_else(|| first.clone());
        if let Some((t, p)) = &reference
            && *t != text
        {
            return Err(AppError::Config {
                file: tune_path.display().to_string(),
                key: "(tuning)".into(),
                reason: format!("another tuning than {}: evaluations of different tunings do not merge", p.display()),
            });
        }
        first.get_or_insert((text, tune_path));
        for path in eval::evaluation_files(dir)? {
            let e = Evaluation::load(&path)?;
            // The same evaluation may be listed twice when the output folder is also an input.
            if let Some((_, other)) = found.iter().find(|(o, _)| o.index == e.index) {
                if same_file(other, &path) {
                    continue;
                }
                return Err(AppError::Config {
                    file: path.display().to_string(),
                    key: "(evaluation)".into(),
                    reason: format!("evaluation {} is also in {}", e.index, other.display()),
                });
            }
            found.push((e, path));
        }
    }
    let (text, path) = first.ok_or_else(|| cli_error("DIRS", "no folder given"))?;
    found.sort_by_key(|(e, _)| e.index);
    Ok((text, found.into_iter().map(|(e, _)| e).collect(), path))
}

fn same_file(a: &Path, b: &Path) -> bool {
    matches!((a.canonicalize(), b.canonicalize()), (Ok(x), Ok(y)) if x == y)
}

/// Reads the raw evaluations of the folders, checks they are exactly one tuning's evaluations (a random or grid
/// search complete; CMA-ES complete up to its last generation), and writes the outputs to `out`. Returns the
/// number of evaluations. Not real-time safe.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<usize, AppError> {
    let (text, evaluations, tune_path) = load_evaluations(dirs, None)?;
    let tuning = Tuning::parse(&text, &tune_path)?;
    let base_text = crate::files::read_input(&tune_path.with_file_name("base.toml"), crate::files::MAX_CONFIG_BYTES)?;
    for e in &evaluations {
        if e.tuning != tuning.fingerprint || e.values.len() != tuning.parameters.len() {
            return Err(AppError::Config {
                file: eval::evaluation_path(out, e.index).display().to_string(),
                key: "(evaluation)".into(),
                reason: format!("not an evaluation of {} (fingerprint {})", tune_path.display(), tuning.fingerprint),
            });
        }
    }
    let expected = match tuning.method {
        Method::Cmaes => {
            let last = evaluations.iter().map(|e| generation_of(&tuning, e.index)).max().unwrap_or(1);
            1 + last as usize * tuning.population
        }
        _ => tuning.total_evaluations(),
    };
    let missing: Vec<usize> =
        (0..expected).filter(|i| evaluations.binary_search_by_key(i, |e| e.index).is_err()).collect();
    if !missing.is_empty() || evaluations.len() != expected {
        return Err(AppError::Config {
            file: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
            key: "(evaluations)".into(),
            reason: format!(
                "{} of {expected} evaluations are missing (indices {:?}{}): run the missing shards",
                missing.len(),
                &missing[..missing.len().min(10)],
                if missing.len() > 10 { ", …" } else { "" }
            ),
        });
    }
    crate::files::write_atomically(&out.join("raw").join("tune.toml"), text.as_bytes())?;
    crate::files::write_atomically(&out.join("raw").join("base.toml"), base_text.as_bytes())?;
    for e in &evaluations {
        if !eval::evaluation_path(out, e.index).exists() {
            e.save(out)?;
        }
    }
    let base: toml::Table = base_text.parse().map_err(|e: toml::de::Error| AppError::Config {
        file: tune_path.with_file_name("base.toml").display().to_string(),
        key: "(document)".into(),
        reason: e.message().to_owned(),
    })?;
    write_outputs(&tuning, &base, &evaluations, out)?;
    Ok(evaluations.len())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\"").replace('\n', " "))
    } else {
        s.to_owned()
    }
}

fn number(x: Option<f64>) -> String {
    x.map_or_else(String::new, |x| format!("{x}"))
}

/// evaluations.csv: one row per evaluation in index order (columns: docs/tuning.md).
pub fn evaluations_csv(tuning: &Tuning, evaluations: &[Evaluation]) -> String {
    let mut s = String::from("index,generation,status");
    for p in &tuning.parameters {
        s.push(',');
        s.push_str(&p.key);
    }
    s.push_str(",objective,feasible,violation");
    for (m, ..) in METRICS {
        s.push(',');
        s.push_str(m);
    }
    s.push_str(",sessions,session_time_s,error\n");
    for e in evaluations {
        let sc = score(tuning, e);
        let status = if e.error.is_some() {
            "invalid"
        } else if sc.objective.is_none() {
            "undefined"
        } else {
            "ok"
        };
        s.push_str(&format!("{},{},{status}", e.index, e.generation));
        for v in &e.values {
            s.push(',');
            s.push_str(&csv_field(&v.to_string()));
        }
        s.push_str(&format!(
            ",{},{},{}",
            number(sc.objective),
            u8::from(sc.feasible()),
            if sc.violation.is_finite() { format!("{}", sc.violation) } else { String::new() }
        ));
        for (m, ..) in METRICS {
            s.push(',');
            s.push_str(&number(e.metrics.get(m).copied()));
        }
        s.push_str(&format!(",{},{},{}\n", e.sessions, e.session_time_s, csv_field(e.error.as_deref().unwrap_or(""))));
    }
    s
}

/// The evaluations best first ([`better`]).
fn ranked<'a>(tuning: &Tuning, evaluations: &'a [Evaluation]) -> Vec<&'a Evaluation> {
    let mut r: Vec<&Evaluation> = evaluations.iter().collect();
    r.sort_by(|a, b| better(tuning, a, b));
    r
}

fn describe(tuning: &Tuning, values: &[Value]) -> String {
    tuning.parameters.iter().zip(values).map(|(p, v)| format!("{} = {v}", p.key)).collect::<Vec<_>>().join(", ")
}

/// The best configuration's controller TOML with a header saying where it comes from.
fn best_toml(tuning: &Tuning, base: &toml::Table, best: &Evaluation) -> Result<String, AppError> {
    let ctx = Context::offline(tuning.clone(), base.clone());
    let body = ctx.config_text(&best.values).map_err(|e| AppError::Config {
        file: "best-controller.toml".into(),
        key: "(candidate)".into(),
        reason: e,
    })?;
    let sc = score(tuning, best);
    let mut s = format!(
        "# plexo tune `{}`: the best of its evaluations, eval-{:05} (objective {}, {}).\n# {}\n",
        tuning.name,
        best.index,
        number(sc.objective),
        if sc.feasible() { "meets every constraint" } else { "does NOT meet every constraint" },
        describe(tuning, &best.values)
    );
    if let Some(law) = ctx.law(&best.values) {
        s.push_str(&format!(
            "# The law is not a controller setting: run it with law = \"{}\" in the protocol's assisted blocks (or a \
             study's controllers[].law).\n",
            eval::law_name(law)
        ));
    }
    s.push('\n');
    s.push_str(&body);
    Ok(s)
}

/// Writes evaluations.csv, best-controller.toml, the plots and report.md from the evaluations (index order).
fn write_outputs(tuning: &Tuning, base: &toml::Table, evaluations: &[Evaluation], out: &Path) -> Result<(), AppError> {
    crate::files::write_atomically(&out.join("evaluations.csv"), evaluations_csv(tuning, evaluations).as_bytes())?;
    let ranking = ranked(tuning, evaluations);
    let best = ranking.first().copied().filter(|e| score(tuning, e).objective.is_some());
    if let Some(best) = best {
        crate::files::write_atomically(&out.join("best-controller.toml"), best_toml(tuning, base, best)?.as_bytes())?;
    }
    let points: Vec<plots::Point> =
        evaluations.iter().map(|e| plots::Point { eval: e, score: score(tuning, e) }).collect();
    let plots = plots::write_plots(out, tuning, &points, best.map(|b| b.index))?;
    if let Err(why) = &plots {
        eprintln!("warning: no plots: {why}");
    }
    crate::files::write_atomically(
        &out.join("report.md"),
        report_md(tuning, evaluations, &ranking, best, &plots).as_bytes(),
    )
}

fn metric_cells(e: &Evaluation) -> String {
    METRICS
        .iter()
        .map(|(m, ..)| format!(" {} |", e.metrics.get(*m).map_or_else(|| "–".into(), |v| format!("{v:.3}"))))
        .collect()
}

fn report_md(
    tuning: &Tuning,
    evaluations: &[Evaluation],
    ranking: &[&Evaluation],
    best: Option<&Evaluation>,
    plots: &Result<Vec<PathBuf>, String>,
) -> String {
    let c = &tuning.cohort;
    let mut s = format!("# Tuning: {}\n\n", tuning.name);
    if !tuning.description.is_empty() {
        s.push_str(&format!("{}\n\n", tuning.description.trim()));
    }
    let invalid = evaluations.iter().filter(|e| e.error.is_some()).count();
    let feasible = evaluations.iter().filter(|e| score(tuning, e).feasible()).count();
    s.push_str(&format!(
        "{} search, seed {}, {} evaluations (evaluation 0 is the start configuration), {} invalid (refused by the \
         configuration's validation, not run), {} meeting every constraint. Cohort: {} patients ({}) × {} seeds \
         ({}) × {} sessions per course, protocol `{}`, robot `{}`, {} plant{}. Tuning file fingerprint {}.\n\n",
        method_name(tuning.method),
        tuning.seed,
        evaluations.len(),
        invalid,
        feasible,
        c.patients.len(),
        c.patients.iter().map(|p| stem_of(p)).collect::<Vec<_>>().join(", "),
        c.seeds.len(),
        c.seeds.iter().map(u64::to_string).collect::<Vec<_>>().join(", "),
        c.sessions,
        stem_of(&c.protocol),
        tuning.robot,
        plant_name(tuning.plant),
        match (c.limits.trials, c.limits.duration) {
            (None, None) => String::new(),
            (t, d) => format!(
                "; sessions limited to{}{}",
                t.map_or_else(String::new, |t| format!(" {t} trials")),
                d.map_or_else(String::new, |d| format!(" {d} s"))
            ),
        },
        tuning.fingerprint
    ));
    let weights: Vec<String> = tuning.objective.weights.iter().map(|(m, w)| format!("{w} × {m}")).collect();
    let constraints: Vec<String> = tuning
        .objective
        .constraints
        .iter()
        .map(|(m, b)| match (b.min, b.max) {
            (Some(lo), Some(hi)) => format!("{lo} ≤ {m} ≤ {hi}"),
            (Some(lo), None) => format!("{m} ≥ {lo}"),
            (None, Some(hi)) => format!("{m} ≤ {hi}"),
            (None, None) => String::new(),
        })
        .collect();
    s.push_str(&format!(
        "Objective (minimised): {}{}. Candidates are ranked feasible first, then by objective.\n\n",
        weights.join(" + "),
        if constraints.is_empty() { String::new() } else { format!(", subject to {}", constraints.join(", ")) }
    ));
    let start = evaluations.iter().find(|e| e.index == 0);
    if let (Some(start), Some(best)) = (start, best) {
        let (s0, s1) = (score(tuning, start), score(tuning, best));
        s.push_str(&format!(
            "**Start → best.** Objective {} → {} (eval-{:05}: {}); start {} the constraints, best {}. The best \
             configuration is `best-controller.toml`.\n\n",
            number(s0.objective),
            number(s1.objective),
            best.index,
            describe(tuning, &best.values),
            if s0.feasible() { "meets" } else { "does not meet" },
            if s1.feasible() { "meets them" } else { "does not" },
        ));
    }
    s.push_str("## Best evaluations\n\n| rank | eval | objective | feasible |");
    for p in &tuning.parameters {
        s.push_str(&format!(" {} |", p.key));
    }
    for (m, ..) in METRICS {
        s.push_str(&format!(" {m} |"));
    }
    s.push_str("\n|");
    s.push_str(&"---|".repeat(4 + tuning.parameters.len() + METRICS.len()));
    s.push('\n');
    let mut rows: Vec<(String, &Evaluation)> =
        ranking.iter().take(10).enumerate().map(|(i, e)| ((i + 1).to_string(), *e)).collect();
    if let Some(start) = start
        && !rows.iter().any(|(_, e)| e.index == 0)
    {
        rows.push(("start".into(), start));
    }
    for (rank, e) in rows {
        let sc = score(tuning, e);
        s.push_str(&format!(
            "| {rank} | {} | {} | {} |",
            e.index,
            sc.objective.map_or_else(|| "–".into(), |o| format!("{o:.4}")),
            if sc.feasible() { "yes" } else { "no" }
        ));
        for v in &e.values {
            s.push_str(&format!(
                " {} |",
                match v {
                    Value::Real(x) => format!("{x:.4}"),
                    v => v.to_string(),
                }
            ));
        }
        s.push_str(&metric_cells(e));
        s.push('\n');
    }
    s.push('\n');
    match plots {
        Ok(_) => s.push_str(
            "## Plots\n\n![objective against each parameter](plots/objective.png)\n\n[SVG](plots/objective.svg)\n\n\
             ![best so far](plots/best-so-far.png)\n\n[SVG](plots/best-so-far.svg)\n\n",
        ),
        Err(why) => s.push_str(&format!("No plots were drawn: {why}.\n\n")),
    }
    let errors: Vec<&Evaluation> = evaluations.iter().filter(|e| e.error.is_some()).take(5).collect();
    if !errors.is_empty() {
        s.push_str("## Invalid candidates (first 5)\n\n");
        for e in errors {
            s.push_str(&format!("- eval-{:05}: {}\n", e.index, e.error.as_deref().unwrap_or("")));
        }
        s.push('\n');
    }
    s.push_str(
        "Metrics: per course (one patient × seed, sessions chained as `--resume` chains them) over the assisted \
         blocks, then the mean over the cohort's courses; definitions and evaluations.csv's columns in \
         docs/tuning.md.\n",
    );
    s
}

fn stem_of(spec: &str) -> String {
    let p = Path::new(spec);
    if p.exists() {
        p.file_stem().map_or_else(|| spec.to_owned(), |s| s.to_string_lossy().into_owned())
    } else {
        spec.to_owned()
    }
}

/// Runs the start and the `top` best configurations of the tuning in `dir` on the cohort's and the held-out
/// profiles on `plant`, and writes verify.csv (one row per configuration × patient group and per patient) and
/// verify.md. Not real-time safe.
pub fn verify(ctx: &Context, dir: &Path, plant: Option<CheckPlant>, top: usize, quiet: bool) -> Result<(), AppError> {
    let tuning = &ctx.tuning;
    let (text, evaluations, _) = load_evaluations(&[dir.to_owned()], None)?;
    if crate::study::file::fingerprint(text.as_bytes()) != tuning.fingerprint {
        return Err(cli_error("DIR", format!("{} holds another tuning's evaluations", dir.display())));
    }
    let ranking = ranked(tuning, &evaluations);
    let mut chosen: Vec<(String, &Evaluation)> = ranking
        .iter()
        .filter(|e| score(tuning, e).objective.is_some())
        .take(top.max(1))
        .enumerate()
        .map(|(i, e)| (format!("best-{}", i + 1), *e))
        .collect();
    if let Some(start) = evaluations.iter().find(|e| e.index == 0) {
        chosen.insert(0, ("start".into(), start));
    }
    let plant: StudyPlant = plant.map_or(tuning.plant, Into::into);
    let patients: Vec<String> = tuning.cohort.patients.iter().chain(&tuning.cohort.holdout).cloned().collect();
    let mut configs = Vec::new();
    for (label, e) in &chosen {
        let config = ctx.candidate(e.index, &e.values).map_err(|why| AppError::Config {
            file: eval::evaluation_path(dir, e.index).display().to_string(),
            key: "(candidate)".into(),
            reason: why,
        })?;
        configs.push((label.clone(), config, ctx.law(&e.values)));
    }
    let sessions =
        (configs.len() * patients.len() * tuning.cohort.seeds.len()) as u64 * u64::from(tuning.cohort.sessions);
    let bar = session_bar(sessions, quiet);
    let results = ctx.run_configs(configs, &patients, plant, &bar)?;
    bar.finish_and_clear();
    let names: Vec<String> = patients.iter().map(|p| stem_of(p)).collect();
    let tuning_names: Vec<String> = tuning.cohort.patients.iter().map(|p| stem_of(p)).collect();
    let mut csv = String::from("config,eval,group,patient,objective,feasible,violation");
    for (m, ..) in METRICS {
        csv.push(',');
        csv.push_str(m);
    }
    csv.push('\n');
    let mut md = format!(
        "# Final check: {}\n\nThe start and the {} best configuration(s) on the {} plant: the tuning cohort ({}) and the \
         held-out profiles ({}), same seeds and sessions. Rows: the group's mean over its courses (for a group of more \
         than one patient), then per patient.\n\n\
         | config | eval | group | patient | objective | feasible |",
        tuning.name,
        chosen.len() - 1,
        plant_name(plant),
        tuning_names.join(", "),
        if tuning.cohort.holdout.is_empty() { "none".into() } else { names[tuning_names.len()..].join(", ") },
    );
    for (m, ..) in METRICS {
        md.push_str(&format!(" {m} |"));
    }
    md.push_str("\n|");
    md.push_str(&"---|".repeat(6 + METRICS.len()));
    md.push('\n');
    for ((label, e), courses) in chosen.iter().zip(&results) {
        let mut rows: Vec<(String, String, Vec<&crate::study::raw::CourseResult>)> = Vec::new();
        let tuned: Vec<_> = courses.iter().filter(|c| tuning_names.contains(&c.patient)).collect();
        let held: Vec<_> = courses.iter().filter(|c| !tuning_names.contains(&c.patient)).collect();
        // A group's mean row only where it has more than one patient (else it repeats the patient's row).
        if tuning.cohort.patients.len() > 1 {
            rows.push(("tuning".into(), "(all)".into(), tuned));
        }
        if tuning.cohort.holdout.len() > 1 {
            rows.push(("held-out".into(), "(all)".into(), held));
        }
        for name in &names {
            let group = if tuning_names.contains(name) { "tuning" } else { "held-out" };
            rows.push((group.into(), name.clone(), courses.iter().filter(|c| &c.patient == name).collect()));
        }
        for (group, patient, cs) in rows {
            let metrics = eval::cohort_metrics(cs.into_iter());
            let probe = Evaluation { metrics, ..(*e).clone() };
            let sc = score(tuning, &probe);
            csv.push_str(&format!(
                "{label},{},{group},{patient},{},{},{}",
                e.index,
                number(sc.objective),
                u8::from(sc.feasible()),
                if sc.violation.is_finite() { format!("{}", sc.violation) } else { String::new() }
            ));
            for (m, ..) in METRICS {
                csv.push(',');
                csv.push_str(&number(probe.metrics.get(m).copied()));
            }
            csv.push('\n');
            md.push_str(&format!(
                "| {label} | {} | {group} | {patient} | {} | {} |{}\n",
                e.index,
                sc.objective.map_or_else(|| "–".into(), |o| format!("{o:.4}")),
                if sc.feasible() { "yes" } else { "no" },
                metric_cells(&probe)
            ));
        }
    }
    crate::files::write_atomically(&dir.join("verify.csv"), csv.as_bytes())?;
    crate::files::write_atomically(&dir.join("verify.md"), md.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmaes_generations_number_their_evaluations() {
        let text = file::tests_support::tuning_text().replace("method = \"grid\"", "method = \"cmaes\"");
        let text = text.replace("[[parameters]]\nkey = \"law\"\nvalues = [\"emken\", \"rbf\"]\n", "");
        let mut t = Tuning::parse(&text.replace("[budget]", "[budget]\npopulation = 4"), Path::new("t.toml")).unwrap();
        t.evaluations = 12;
        assert_eq!(t.generations(), 3);
        assert_eq!(t.total_evaluations(), 13);
        let gens: Vec<u32> = (0..13).map(|i| generation_of(&t, i)).collect();
        assert_eq!(gens, vec![1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
