//! The tuning file (TOML): which parameters of the controller configuration are searched and over which ranges,
//! the cohort every candidate runs (the study engine's patients × seeds × sessions per course, protocol, plant,
//! limits), the objective (weighted study metrics and constraints), the method, the budget and the seed. Unknown
//! keys are errors; every error names the file and the key. Paths are relative to the file. Format:
//! docs/tuning.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use plexo_controller::AanLaw;
use serde::Deserialize;

use crate::AppError;
use crate::study::file::{Limits, Seeds, StudyPlant, default_protocol, default_robot, fingerprint};

/// The metrics a candidate is scored on: key, unit and meaning. Each is computed per course (one patient × seed,
/// its sessions chained) from the study engine's raw result, then averaged over the cohort's courses.
pub const METRICS: [(&str, &str, &str); 8] = [
    ("assistance_change", "-", "change of the RMS assistance torque, first session to last (efficacy (a))"),
    ("true_effort_share", "-", "the patient's true task-effort share, mean of the sessions (efficacy (b))"),
    ("effort_share", "-", "the clinic's estimate of the task-effort share, mean of the sessions"),
    ("success", "-", "targets reached over the assisted trials (efficacy (c))"),
    ("tracking_error_rad", "rad", "RMS joint tracking error of the assisted blocks, mean of the sessions"),
    ("final_error_mm", "mm", "final hand distance to the target in the assisted blocks, mean of the sessions"),
    ("sparc", "-", "spectral arc length of the hand speed in the assisted blocks (smoothness; higher is smoother)"),
    ("safety_stops", "-", "share of sessions that ended with a safety stop or a robot error"),
];

/// The search method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Independent uniform (or log-uniform) samples.
    Random,
    /// The full Cartesian grid.
    Grid,
    /// CMA-ES (Hansen 2016) on the normalised real and integer parameters.
    Cmaes,
}

/// How a numeric range is sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Uniform in the value.
    #[default]
    Linear,
    /// Uniform in the logarithm (ranges must be positive).
    Log,
}

/// The kind of a numeric parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A real number.
    #[default]
    Real,
    /// An integer (rounded to the nearest).
    Int,
}

/// A choice of a categorical parameter: a string or a boolean of the controller TOML, or an AAN law.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Choice {
    /// A boolean value.
    Bool(bool),
    /// A string value (or a law name).
    Text(String),
}

impl std::fmt::Display for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Bool(b) => write!(f, "{b}"),
            Choice::Text(t) => write!(f, "{t}"),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    key: String,
    #[serde(default)]
    min: Option<f64>,
    #[serde(default)]
    max: Option<f64>,
    #[serde(default)]
    scale: Scale,
    #[serde(default, rename = "type")]
    kind: Kind,
    #[serde(default)]
    values: Option<Vec<Choice>>,
    #[serde(default)]
    points: Option<usize>,
}

/// The range of a parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Range {
    /// A numeric range [min, max].
    Numeric {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
        /// Linear or log.
        scale: Scale,
        /// Real or integer.
        kind: Kind,
        /// Grid points (grid search).
        points: usize,
    },
    /// A list of choices.
    Choices(Vec<Choice>),
}

/// Where a parameter's value goes.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    /// A dotted key into the controller TOML, with an optional array index (`aan.damping[3]`); a key naming an
    /// array without an index sets every element.
    Config {
        /// The dotted path.
        path: Vec<String>,
        /// The array element, if any.
        index: Option<usize>,
    },
    /// The AAN law of every active-assisted block of the protocol (as a study's `law`); key `law`.
    Law,
}

/// One searched parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    /// The key as written (a column of evaluations.csv).
    pub key: String,
    /// Where it goes.
    pub target: Target,
    /// Its range.
    pub range: Range,
}

/// One `[start]` entry: the base's value at `key` replaced by `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct StartValue {
    /// The key as written.
    pub key: String,
    /// Its dotted path.
    pub path: Vec<String>,
    /// The array element, if any (none: every element).
    pub index: Option<usize>,
    /// The value.
    pub value: toml::Value,
}

/// A constraint on a metric (inclusive bounds).
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Constraint {
    /// Smallest allowed value.
    #[serde(default)]
    pub min: Option<f64>,
    /// Largest allowed value.
    #[serde(default)]
    pub max: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawObjective {
    weights: BTreeMap<String, f64>,
    #[serde(default)]
    constraints: BTreeMap<String, Constraint>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCohort {
    patients: Vec<String>,
    seeds: Seeds,
    sessions: u32,
    #[serde(default = "default_protocol")]
    protocol: String,
    #[serde(default)]
    limits: Limits,
    #[serde(default)]
    holdout: Vec<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    evaluations: usize,
    #[serde(default)]
    population: Option<usize>,
    #[serde(default)]
    sigma: Option<f64>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default = "default_robot")]
    robot: String,
    #[serde(default)]
    base: Option<PathBuf>,
    #[serde(default)]
    plant: StudyPlant,
    #[serde(default)]
    start: BTreeMap<String, toml::Value>,
    method: Method,
    seed: u64,
    parameters: Vec<RawParameter>,
    cohort: RawCohort,
    objective: RawObjective,
    budget: RawBudget,
}

/// The cohort every candidate runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Cohort {
    /// Patient profiles (paths resolved, or embedded names).
    pub patients: Vec<String>,
    /// Seeds.
    pub seeds: Vec<u64>,
    /// Sessions per course.
    pub sessions: u32,
    /// Protocol (path resolved, or embedded name).
    pub protocol: String,
    /// Per-session limits.
    pub limits: Limits,
    /// Held-out profiles for the final check (not searched on).
    pub holdout: Vec<String>,
}

/// The objective: minimise Σ weight × metric subject to the constraints.
#[derive(Clone, Debug, PartialEq)]
pub struct Objective {
    /// Weights by metric key (negative: the metric is maximised).
    pub weights: BTreeMap<String, f64>,
    /// Constraints by metric key.
    pub constraints: BTreeMap<String, Constraint>,
}

/// A validated tuning file.
#[derive(Clone, Debug, PartialEq)]
pub struct Tuning {
    /// Name (report title).
    pub name: String,
    /// Free text for the report.
    pub description: String,
    /// Robot (URDF path or embedded name).
    pub robot: String,
    /// The starting controller configuration (resolved path); `None`: the embedded one with the simulated
    /// actuators' friction, as `plexo sim` without `--controller`.
    pub base: Option<PathBuf>,
    /// The plant the search runs on.
    pub plant: StudyPlant,
    /// Changes to the base that make the start configuration (dotted key, its path and index, the value): a
    /// deliberately bad start, or last tuning's result, without writing a whole configuration.
    pub start: Vec<StartValue>,
    /// Search method.
    pub method: Method,
    /// Seed of the search (candidates); the cohort's seeds seed the sessions.
    pub seed: u64,
    /// Searched parameters.
    pub parameters: Vec<Parameter>,
    /// The cohort.
    pub cohort: Cohort,
    /// The objective.
    pub objective: Objective,
    /// Evaluations of the search (the start configuration is evaluated in addition).
    pub evaluations: usize,
    /// CMA-ES population λ per generation.
    pub population: usize,
    /// CMA-ES initial step size σ0 in normalised units (each range is [0, 1]).
    pub sigma: f64,
    /// FNV-1a of the file's text: shards of one tuning carry it; `merge` refuses a mix.
    pub fingerprint: String,
}

fn err(file: &Path, key: &str, reason: impl Into<String>) -> AppError {
    AppError::Config { file: file.display().to_string(), key: key.into(), reason: reason.into() }
}

fn resolve(dir: &Path, spec: &str) -> String {
    let p = dir.join(spec);
    if Path::new(spec).is_relative() && p.exists() { p.display().to_string() } else { spec.to_owned() }
}

/// Parses `aan.damping[3]` into its path and index.
fn parse_key(key: &str) -> Option<(Vec<String>, Option<usize>)> {
    let (path, index) = match key.strip_suffix(']') {
        Some(k) => {
            let (path, i) = k.split_once('[')?;
            (path, Some(i.parse().ok()?))
        }
        None => (key, None),
    };
    let parts: Vec<String> = path.split('.').map(str::to_owned).collect();
    parts
        .iter()
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then_some((parts, index))
}

impl Tuning {
    /// Reads and validates a tuning file. Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        let text = crate::files::read_input(path, crate::files::MAX_CONFIG_BYTES)?;
        Self::parse(&text, path)
    }

    /// Parses and validates the text of a tuning file; `path` names it in errors and resolves relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Self, AppError> {
        let raw: Raw = crate::study::file::parse_toml(text, path)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if raw.name.is_empty() || raw.name.contains(['\n', '|']) {
            return Err(err(path, "name", "must be non-empty, without line breaks or `|`"));
        }
        if raw.parameters.is_empty() {
            return Err(err(path, "parameters", "the list is empty: name at least one parameter"));
        }
        let mut parameters = Vec::new();
        for (i, p) in raw.parameters.iter().enumerate() {
            let key = |k: &str| format!("parameters[{i}].{k}");
            if raw.parameters[..i].iter().any(|o| o.key == p.key) {
                return Err(err(path, &key("key"), format!("`{}` is searched twice", p.key)));
            }
            let target = if p.key == "law" {
                Target::Law
            } else {
                let (path_parts, index) = parse_key(&p.key).ok_or_else(|| {
                    err(
                        path,
                        &key("key"),
                        format!("`{}` is not a dotted key such as aan.emken.gain or aan.damping[3]", p.key),
                    )
                })?;
                Target::Config { path: path_parts, index }
            };
            let range = match (&p.values, p.min, p.max) {
                (Some(values), None, None) => {
                    if values.is_empty() {
                        return Err(err(path, &key("values"), "the list is empty"));
                    }
                    if p.points.is_some() || p.scale != Scale::Linear || p.kind != Kind::Real {
                        return Err(err(
                            path,
                            &key("values"),
                            "a categorical parameter takes no points, scale or type",
                        ));
                    }
                    if target == Target::Law {
                        for (j, v) in values.iter().enumerate() {
                            law_of(v).ok_or_else(|| {
                                err(
                                    path,
                                    &format!("parameters[{i}].values[{j}]"),
                                    format!("`{v}` is not an AAN law (fixed, emken, rbf, tunnel)"),
                                )
                            })?;
                        }
                    }
                    Range::Choices(values.clone())
                }
                (None, Some(min), Some(max)) => {
                    if target == Target::Law {
                        return Err(err(path, &key("values"), "`law` is categorical: give values = [\"emken\", …]"));
                    }
                    if !(min.is_finite() && max.is_finite() && min < max) {
                        return Err(err(
                            path,
                            &key("max"),
                            format!("[{min}, {max}] is not a finite range with min < max"),
                        ));
                    }
                    if p.scale == Scale::Log && min <= 0.0 {
                        return Err(err(path, &key("min"), format!("{min}: a log range must be positive")));
                    }
                    if p.kind == Kind::Int && (min.fract() != 0.0 || max.fract() != 0.0) {
                        return Err(err(path, &key("min"), "an integer range has integer bounds"));
                    }
                    let points = p.points.unwrap_or(5);
                    if points < 2 {
                        return Err(err(path, &key("points"), format!("{points}: a grid needs at least 2 points")));
                    }
                    Range::Numeric { min, max, scale: p.scale, kind: p.kind, points }
                }
                _ => {
                    return Err(err(
                        path,
                        &key("min"),
                        "give either min and max (a numeric range) or values (a categorical parameter)",
                    ));
                }
            };
            parameters.push(Parameter { key: p.key.clone(), target, range });
        }
        let mut start = Vec::new();
        for (key, value) in &raw.start {
            let (path_parts, index) = parse_key(key).ok_or_else(|| {
                err(path, &format!("start.\"{key}\""), "not a dotted key such as aan.emken.forgetting")
            })?;
            start.push(StartValue { key: key.clone(), path: path_parts, index, value: value.clone() });
        }
        let c = &raw.cohort;
        if c.sessions == 0 {
            return Err(err(path, "cohort.sessions", "must be at least 1"));
        }
        let seeds = match &c.seeds {
            Seeds::Count(0) => return Err(err(path, "cohort.seeds", "must be at least 1")),
            Seeds::Count(n) => (1..=*n).collect(),
            Seeds::List(v) if v.is_empty() => return Err(err(path, "cohort.seeds", "the list is empty")),
            Seeds::List(v) => v.clone(),
        };
        if let Some((i, s)) = seeds.iter().enumerate().find(|(i, s)| seeds[..*i].contains(s)) {
            return Err(err(path, &format!("cohort.seeds[{i}]"), format!("seed {s} is listed twice")));
        }
        if c.patients.is_empty() {
            return Err(err(path, "cohort.patients", "the list is empty"));
        }
        let patients: Vec<String> = c.patients.iter().map(|p| resolve(dir, p)).collect();
        if let Some((i, p)) = patients.iter().enumerate().find(|(i, p)| patients[..*i].contains(p)) {
            return Err(err(path, &format!("cohort.patients[{i}]"), format!("`{p}` is listed twice")));
        }
        let holdout: Vec<String> = c.holdout.iter().map(|p| resolve(dir, p)).collect();
        if let Some((i, p)) = holdout.iter().enumerate().find(|(_, p)| patients.contains(p)) {
            return Err(err(
                path,
                &format!("cohort.holdout[{i}]"),
                format!("`{p}` is also a tuning patient: not held out"),
            ));
        }
        if c.limits.trials == Some(0) {
            return Err(err(path, "cohort.limits.trials", "must be at least 1"));
        }
        if let Some(d) = c.limits.duration
            && !(d.is_finite() && d > 0.0)
        {
            return Err(err(path, "cohort.limits.duration", format!("{d} is not a finite duration > 0 s")));
        }
        let o = &raw.objective;
        if o.weights.is_empty() {
            return Err(err(path, "objective.weights", "no metric is weighted"));
        }
        let known = || METRICS.iter().map(|(k, ..)| *k).collect::<Vec<_>>().join(", ");
        for (metric, w) in &o.weights {
            if !METRICS.iter().any(|(k, ..)| k == metric) {
                return Err(err(
                    path,
                    &format!("objective.weights.{metric}"),
                    format!("not a metric; metrics: {}", known()),
                ));
            }
            if !w.is_finite() {
                return Err(err(path, &format!("objective.weights.{metric}"), "must be finite"));
            }
        }
        for (metric, bound) in &o.constraints {
            let key = format!("objective.constraints.{metric}");
            if !METRICS.iter().any(|(k, ..)| k == metric) {
                return Err(err(path, &key, format!("not a metric; metrics: {}", known())));
            }
            match (bound.min, bound.max) {
                (None, None) => return Err(err(path, &key, "give min, max or both")),
                (Some(lo), Some(hi)) if lo > hi => return Err(err(path, &key, format!("min {lo} > max {hi}"))),
                (lo, hi) if lo.is_some_and(|v| !v.is_finite()) || hi.is_some_and(|v| !v.is_finite()) => {
                    return Err(err(path, &key, "bounds must be finite"));
                }
                _ => {}
            }
        }
        if c.sessions < 2
            && (o.weights.contains_key("assistance_change") || o.constraints.contains_key("assistance_change"))
        {
            return Err(err(
                path,
                "objective.weights.assistance_change",
                "needs cohort.sessions >= 2 (first to last session)",
            ));
        }
        let b = &raw.budget;
        if b.evaluations == 0 {
            return Err(err(path, "budget.evaluations", "must be at least 1"));
        }
        let numeric = parameters.iter().filter(|p| matches!(p.range, Range::Numeric { .. })).count();
        let population = match raw.method {
            Method::Cmaes => {
                if let Some(p) = parameters.iter().position(|p| matches!(p.range, Range::Choices(_))) {
                    return Err(err(
                        path,
                        &format!("parameters[{p}].values"),
                        "CMA-ES searches numeric parameters only: use method = \"random\" or \"grid\", or fix this one in the base configuration",
                    ));
                }
                // Hansen 2016, Table 1: λ = 4 + ⌊3 ln n⌋.
                let default = 4 + (3.0 * (numeric as f64).ln()).floor() as usize;
                let population = b.population.unwrap_or(default);
                if population < 2 {
                    return Err(err(path, "budget.population", "must be at least 2"));
                }
                if b.evaluations < population {
                    return Err(err(
                        path,
                        "budget.evaluations",
                        format!("{} is less than one generation ({population})", b.evaluations),
                    ));
                }
                population
            }
            _ => {
                if b.population.is_some() || b.sigma.is_some() {
                    return Err(err(path, "budget.population", "population and sigma are CMA-ES settings"));
                }
                0
            }
        };
        let sigma = b.sigma.unwrap_or(0.3);
        if !(sigma.is_finite() && sigma > 0.0 && sigma <= 1.0) {
            return Err(err(path, "budget.sigma", format!("{sigma} is not in (0, 1] (normalised units)")));
        }
        let tuning = Self {
            name: raw.name,
            description: raw.description,
            robot: resolve(dir, &raw.robot),
            base: raw.base.map(|p| if p.is_relative() { dir.join(p) } else { p }),
            plant: raw.plant,
            start,
            method: raw.method,
            seed: raw.seed,
            parameters,
            cohort: Cohort {
                patients,
                seeds,
                sessions: c.sessions,
                protocol: resolve(dir, &c.protocol),
                limits: c.limits.clone(),
                holdout,
            },
            objective: Objective { weights: o.weights.clone(), constraints: o.constraints.clone() },
            evaluations: b.evaluations,
            population,
            sigma,
            fingerprint: fingerprint(text.as_bytes()),
        };
        if tuning.method == Method::Grid {
            let size = tuning.grid_size();
            if size > tuning.evaluations {
                return Err(err(
                    path,
                    "budget.evaluations",
                    format!(
                        "the grid has {size} points, more than the budget of {}: raise it or use fewer points",
                        tuning.evaluations
                    ),
                ));
            }
        }
        Ok(tuning)
    }

    /// Number of points of the grid (product of the parameters' points or choices).
    pub fn grid_size(&self) -> usize {
        self.parameters.iter().map(|p| p.levels()).fold(1usize, |a, n| a.saturating_mul(n))
    }

    /// CMA-ES generations within the budget.
    pub fn generations(&self) -> u32 {
        if self.method == Method::Cmaes { (self.evaluations / self.population) as u32 } else { 1 }
    }

    /// Evaluations the search makes in all (the start configuration included).
    pub fn total_evaluations(&self) -> usize {
        1 + match self.method {
            Method::Random => self.evaluations,
            Method::Grid => self.grid_size(),
            Method::Cmaes => self.generations() as usize * self.population,
        }
    }
}

impl Parameter {
    /// Grid levels (points of a numeric range; integers: at most the integers in it).
    pub fn levels(&self) -> usize {
        match &self.range {
            Range::Numeric { min, max, kind: Kind::Int, points, .. } => (*points).min((max - min) as usize + 1),
            Range::Numeric { points, .. } => *points,
            Range::Choices(v) => v.len(),
        }
    }
}

/// The AAN law a choice names.
pub fn law_of(choice: &Choice) -> Option<AanLaw> {
    match choice {
        Choice::Text(t) => toml::Value::String(t.clone()).try_into().ok(),
        Choice::Bool(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const GOOD: &str = r#"
name = "t"
method = "random"
seed = 7
[[parameters]]
key = "aan.emken.forgetting"
min = 0.5
max = 1.0
[[parameters]]
key = "aan.emken.gain"
min = 50.0
max = 2000.0
scale = "log"
[[parameters]]
key = "law"
values = ["emken", "rbf"]
[cohort]
patients = ["mild"]
seeds = 2
sessions = 2
[objective.weights]
assistance_change = 1.0
success = -1.0
[objective.constraints]
success = { min = 0.9 }
[budget]
evaluations = 10
"#;

    fn parse(text: &str) -> Result<Tuning, String> {
        Tuning::parse(text, Path::new("t.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_good_file_parses_with_its_ranges() {
        let t = parse(GOOD).unwrap();
        assert_eq!(t.parameters.len(), 3);
        assert_eq!(t.parameters[2].target, Target::Law);
        assert_eq!(
            t.parameters[0].target,
            Target::Config { path: vec!["aan".into(), "emken".into(), "forgetting".into()], index: None }
        );
        assert_eq!(t.cohort.seeds, vec![1, 2]);
        assert_eq!(t.total_evaluations(), 11);
        let indexed = parse(&GOOD.replace("key = \"aan.emken.gain\"", "key = \"aan.damping[3]\"")).unwrap();
        assert_eq!(
            indexed.parameters[1].target,
            Target::Config { path: vec!["aan".into(), "damping".into()], index: Some(3) }
        );
    }

    #[test]
    fn the_shipped_tuning_files_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/tuning");
        let mut files = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let t = Tuning::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!t.cohort.holdout.is_empty() && !t.start.is_empty(), "{}", path.display());
            files += 1;
        }
        assert!(files >= 1);
    }

    #[test]
    fn errors_name_the_key() {
        for (from, to, key) in [
            ("seed = 7", "seed = 7\nsed = 1", "sed"),
            ("min = 50.0", "min = -50.0", "parameters[1].min"),
            ("values = [\"emken\", \"rbf\"]", "values = [\"emken\", \"pid\"]", "parameters[2].values[1]"),
            ("assistance_change = 1.0", "assistance = 1.0", "objective.weights.assistance"),
            ("success = { min = 0.9 }", "success = { min = 0.9, max = 0.5 }", "objective.constraints.success"),
            ("sessions = 2", "sessions = 1", "objective.weights.assistance_change"),
            ("evaluations = 10", "evaluations = 0", "budget.evaluations"),
            ("key = \"aan.emken.gain\"", "key = \"aan..gain\"", "parameters[1].key"),
            ("method = \"random\"", "method = \"cmaes\"", "parameters[2].values"),
        ] {
            let e = parse(&GOOD.replace(from, to)).unwrap_err();
            assert!(e.contains("t.toml") && e.contains(key), "{from} -> {to}: {e}");
        }
        let grid = GOOD.replace("method = \"random\"", "method = \"grid\"");
        let e = parse(&grid).unwrap_err();
        assert!(e.contains("budget.evaluations") && e.contains("50 points"), "{e}");
        assert_eq!(parse(&grid.replace("evaluations = 10", "evaluations = 50")).unwrap().total_evaluations(), 51);
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The test file's text as a grid search over its 5 × 5 × 2 points.
    pub fn tuning_text() -> String {
        tests::GOOD.replace("method = \"random\"", "method = \"grid\"").replace("evaluations = 10", "evaluations = 50")
    }

    /// The test file as a grid search over its 5 × 5 × 2 points.
    pub fn tuning() -> Tuning {
        Tuning::parse(&tuning_text(), Path::new("t.toml")).unwrap()
    }
}
