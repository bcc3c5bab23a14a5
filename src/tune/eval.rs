//! Evaluating candidates on the study engine: a candidate's values are written into the base controller TOML
//! at their dotted keys; the text must parse and pass the same validation `plexo check` runs
//! ([`crate::study::run::prepare_with`] builds the session for every patient) — a candidate that does not is
//! recorded with the error, not run. The valid candidates of a batch are the controllers of one study (cohort
//! patients × seeds × sessions), whose courses run in parallel on all cores; each candidate's metrics are the
//! means over its courses of per-course measures (the efficacy criteria of [`crate::study::criteria`] and the
//! assisted blocks' aggregates). The raw evaluation (`raw/eval-NNNNN.toml`) is the only input of the outputs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use plexo_controller::{AanLaw, ControllerConfig, Mode};
use serde::{Deserialize, Serialize};

use super::file::{METRICS, Target, Tuning};
use super::search::{Value, choice_value, coordinate_of};
use crate::AppError;
use crate::setup::Loaded;
use crate::study::file::{ControllerEntry, Study, StudyPlant};
use crate::study::raw::CourseResult;
use crate::study::{criteria, run, tables};

/// One evaluated candidate, as stored in `raw/eval-NNNNN.toml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// The tuning file's fingerprint.
    pub tuning: String,
    /// Evaluation index: 0 is the start configuration, then the search's candidates in order.
    pub index: usize,
    /// CMA-ES generation (1-based; the start and random/grid candidates: 0 and 1).
    pub generation: u32,
    /// The parameters' values, in the tuning file's order.
    pub values: Vec<Value>,
    /// Why the candidate was not run (its configuration failed validation), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Metric means over the cohort's courses ([`METRICS`]); a metric no course defines is absent.
    pub metrics: BTreeMap<String, f64>,
    /// Sessions run.
    pub sessions: usize,
    /// Session time simulated [s].
    pub session_time_s: f64,
}

/// Largest evaluation file `merge` reads [bytes].
pub const MAX_EVALUATION_BYTES: u64 = 1 << 20;

/// Where evaluation `index` is stored under an output folder.
pub fn evaluation_path(dir: &Path, index: usize) -> PathBuf {
    dir.join("raw").join(format!("eval-{index:05}.toml"))
}

impl Evaluation {
    /// Writes the evaluation atomically under `dir/raw/`. Not real-time safe.
    pub fn save(&self, dir: &Path) -> Result<(), AppError> {
        crate::study::raw::save_raw(&evaluation_path(dir, self.index), self, "(evaluation)")
    }

    /// Reads an evaluation file; errors name it. Not real-time safe.
    pub fn load(path: &Path) -> Result<Self, AppError> {
        crate::study::raw::load_raw(path, MAX_EVALUATION_BYTES, "(evaluation)")
    }
}

/// Every evaluation file under `dir/raw/`, sorted by name. Not real-time safe.
pub fn evaluation_files(dir: &Path) -> Result<Vec<PathBuf>, AppError> {
    crate::study::raw::raw_files(dir, "eval-")
}

/// A candidate waiting to be evaluated.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// Evaluation index.
    pub index: usize,
    /// Generation.
    pub generation: u32,
    /// Values.
    pub values: Vec<Value>,
}

/// The objective of an evaluation: Σ weight × metric, and how far it is from meeting the constraints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    /// The weighted sum (minimised); `None` when the candidate did not run or a weighted metric is undefined.
    pub objective: Option<f64>,
    /// Σ of the constraint violations in metric units (0: feasible; ∞: not run or a constrained metric undefined).
    pub violation: f64,
}

impl Score {
    /// Meets every constraint and has an objective.
    pub fn feasible(&self) -> bool {
        self.objective.is_some() && self.violation == 0.0
    }
}

/// Scores an evaluation against the tuning's objective.
pub fn score(tuning: &Tuning, e: &Evaluation) -> Score {
    if e.error.is_some() {
        return Score { objective: None, violation: f64::INFINITY };
    }
    let objective = tuning.objective.weights.iter().try_fold(0.0, |sum, (m, w)| e.metrics.get(m).map(|v| sum + w * v));
    let violation = tuning.objective.constraints.iter().fold(0.0, |sum, (m, c)| match e.metrics.get(m) {
        None => f64::INFINITY,
        Some(v) => sum + c.min.map_or(0.0, |lo| (lo - v).max(0.0)) + c.max.map_or(0.0, |hi| (v - hi).max(0.0)),
    });
    Score { objective, violation }
}

/// Orders evaluations best first: candidates with an objective before those without, then by constraint
/// violation (feasible first), then by objective, then by index (the ranking CMA-ES uses and the "best").
pub fn better(tuning: &Tuning, a: &Evaluation, b: &Evaluation) -> std::cmp::Ordering {
    let (sa, sb) = (score(tuning, a), score(tuning, b));
    sa.objective
        .is_none()
        .cmp(&sb.objective.is_none())
        .then(sa.violation.total_cmp(&sb.violation))
        .then(sa.objective.unwrap_or(0.0).total_cmp(&sb.objective.unwrap_or(0.0)))
        .then(a.index.cmp(&b.index))
}

/// The metrics of one course ([`METRICS`] order; `None` where undefined).
pub fn course_metrics(course: &CourseResult) -> [Option<f64>; METRICS.len()] {
    let c = criteria::course_criteria(course, None);
    let assisted: Vec<_> = course.sessions.iter().filter_map(|s| tables::assisted(&s.blocks)).collect();
    let mean = |xs: Vec<f64>| (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64);
    let stops =
        course.sessions.iter().filter(|s| s.end.starts_with("SAFETY STOP") || s.end.starts_with("ROBOT ERROR")).count();
    [
        c.assistance_change,
        c.mean_true_effort_share,
        c.mean_effort_share,
        c.success,
        mean(assisted.iter().map(|b| b.rms_error_rad).collect()),
        mean(assisted.iter().map(|b| 1000.0 * b.final_error_m).collect()),
        mean(assisted.iter().filter_map(|b| b.sparc).collect()),
        (!course.sessions.is_empty()).then(|| stops as f64 / course.sessions.len() as f64),
    ]
}

/// Metric means over `courses` (a metric is the mean over the courses that define it; absent if none does).
pub fn cohort_metrics<'a>(courses: impl Iterator<Item = &'a CourseResult>) -> BTreeMap<String, f64> {
    let mut sums = [(0.0, 0usize); METRICS.len()];
    for course in courses {
        for (sum, v) in sums.iter_mut().zip(course_metrics(course)) {
            if let Some(v) = v.filter(|v| v.is_finite()) {
                *sum = (sum.0 + v, sum.1 + 1);
            }
        }
    }
    METRICS
        .iter()
        .zip(sums)
        .filter(|(_, (_, n))| *n > 0)
        .map(|((key, ..), (sum, n))| ((*key).to_owned(), sum / n as f64))
        .collect()
}

/// The base configuration and everything needed to turn values into controller configurations.
pub struct Context {
    /// The tuning.
    pub tuning: Tuning,
    /// The tuning file.
    pub path: PathBuf,
    /// The base controller TOML as a table.
    base: toml::Table,
    /// Where the base came from.
    pub base_source: String,
    /// The law of the protocol's first active-assisted block (the start's `law`).
    protocol_law: Option<AanLaw>,
}

fn param_error(path: &Path, i: usize, reason: String) -> AppError {
    AppError::Config { file: path.display().to_string(), key: format!("parameters[{i}].key"), reason }
}

/// The TOML value at `path` (and `index`) of `table`.
fn lookup<'a>(table: &'a toml::Table, path: &[String], index: Option<usize>) -> Option<&'a toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for p in parents {
        t = t.get(p)?.as_table()?;
    }
    let v = t.get(last)?;
    match index {
        Some(i) => v.as_array()?.get(i),
        None => Some(v),
    }
}

fn lookup_mut<'a>(table: &'a mut toml::Table, path: &[String]) -> Option<&'a mut toml::Value> {
    let (last, parents) = path.split_last()?;
    let mut t = table;
    for p in parents {
        t = t.get_mut(p)?.as_table_mut()?;
    }
    t.get_mut(last)
}

/// `value` in the TOML type of `like` (a real into a float field, an integer into an integer field, …).
fn toml_value(value: &Value, like: &toml::Value) -> Result<toml::Value, String> {
    Ok(match (value, like) {
        (Value::Real(x), toml::Value::Float(_)) => toml::Value::Float(*x),
        (Value::Int(i), toml::Value::Float(_)) => toml::Value::Float(*i as f64),
        (Value::Int(i), toml::Value::Integer(_)) => toml::Value::Integer(*i),
        (Value::Bool(b), toml::Value::Boolean(_)) => toml::Value::Boolean(*b),
        (Value::Text(t), toml::Value::String(_)) => toml::Value::String(t.clone()),
        (v, like) => return Err(format!("{v} does not fit the configuration's {} value", like.type_str())),
    })
}

impl Context {
    /// Loads the base configuration (the tuning's `base`, or the robot's embedded configuration with the
    /// simulated actuators' friction, as `plexo sim` without `--controller`) and checks every parameter's key
    /// exists in it with a fitting type. Not real-time safe.
    pub fn new(tuning: Tuning, path: &Path) -> Result<Self, AppError> {
        let (text, base_source) = match &tuning.base {
            Some(p) => (crate::files::read_input(p, crate::files::MAX_CONFIG_BYTES)?, p.display().to_string()),
            None => {
                let (text, asset) =
                    plexo_controller::default_controller_toml(&tuning.robot).ok_or_else(|| AppError::Config {
                        file: path.display().to_string(),
                        key: "base".into(),
                        reason: format!("robot `{}` has no embedded controller configuration: name one", tuning.robot),
                    })?;
                (text.to_owned(), format!("{asset} (embedded) + identified sim friction"))
            }
        };
        let mut base: toml::Table = text.parse().map_err(|e: toml::de::Error| AppError::Config {
            file: base_source.clone(),
            key: "(document)".into(),
            reason: e.message().to_owned(),
        })?;
        if tuning.base.is_none() {
            // As `plexo sim` and `plexo study` without a configuration: the simulated actuators' friction is the
            // identified friction; baked into the TOML so the best configuration behaves the same in `plexo sim`.
            let model = crate::setup::load_session_robot(&tuning.robot)?.value.0;
            let motor = plexo_sim::MotorParams::default();
            let n = model.nv();
            let floats = |x: f64| toml::Value::Array(vec![toml::Value::Float(x); n]);
            let mut friction = toml::Table::new();
            friction.insert("coulomb".into(), floats(motor.coulomb));
            friction.insert("viscous".into(), floats(motor.viscous));
            friction.insert("smoothing_velocity".into(), toml::Value::Float(motor.coulomb_velocity));
            base.insert("friction".into(), toml::Value::Table(friction));
            if let Some(observer) = base.get_mut("observer").and_then(toml::Value::as_table_mut) {
                observer.insert("subtract_friction".into(), toml::Value::Boolean(true));
            }
        }
        for s in &tuning.start {
            let bad = |reason: String| AppError::Config {
                file: path.display().to_string(),
                key: format!("start.\"{}\"", s.key),
                reason,
            };
            let slot = lookup_mut(&mut base, &s.path).ok_or_else(|| bad(format!("not a key of {base_source}")))?;
            let fits = |old: &toml::Value| match (old, &s.value) {
                (toml::Value::Float(_), toml::Value::Integer(i)) => Ok(toml::Value::Float(*i as f64)),
                (old, new) if old.same_type(new) => Ok(new.clone()),
                (old, _) => Err(bad(format!("the configuration's value is a {}", old.type_str()))),
            };
            match (slot, s.index) {
                (toml::Value::Array(a), Some(i)) => {
                    let e = a.get_mut(i).ok_or_else(|| bad(format!("no element {i}")))?;
                    *e = fits(e)?;
                }
                (toml::Value::Array(a), None) if !s.value.is_array() => {
                    for e in a.iter_mut() {
                        *e = fits(e)?;
                    }
                }
                (slot, _) => *slot = fits(slot)?,
            }
        }
        for (i, p) in tuning.parameters.iter().enumerate() {
            if let Target::Config { path: keys, index } = &p.target {
                let found = lookup(&base, keys, *index).ok_or_else(|| {
                    param_error(path, i, format!("`{}` is not a key of the base configuration {base_source}", p.key))
                })?;
                let sample = match &p.range {
                    super::file::Range::Choices(c) => choice_value(&c[0]),
                    super::file::Range::Numeric { kind: super::file::Kind::Int, .. } => Value::Int(0),
                    super::file::Range::Numeric { .. } => Value::Real(0.0),
                };
                let like = match found {
                    toml::Value::Array(a) => a.first().ok_or_else(|| param_error(path, i, "an empty array".into()))?,
                    v => v,
                };
                toml_value(&sample, like).map_err(|e| param_error(path, i, format!("`{}`: {e}", p.key)))?;
            }
        }
        let protocol = crate::setup::load_protocol(&tuning.cohort.protocol)?;
        let protocol_law = protocol.value.blocks.iter().find(|b| b.mode == Mode::ActiveAssisted).map(|b| b.law);
        Ok(Self { tuning, path: path.to_owned(), base, base_source, protocol_law })
    }

    /// A context over an already-built base table (`plexo tune merge`: the base the search ran on, read back
    /// from `raw/base.toml`); it writes configurations but runs nothing.
    pub fn offline(tuning: Tuning, base: toml::Table) -> Self {
        Self { tuning, path: PathBuf::new(), base, base_source: "raw/base.toml".into(), protocol_law: None }
    }

    /// The base configuration as TOML (what `raw/base.toml` keeps).
    pub fn base_text(&self) -> String {
        toml::to_string(&self.base).unwrap_or_default()
    }

    /// The start configuration's values (the base's values at the keys; for `law`, the protocol's).
    pub fn start_values(&self) -> Vec<Value> {
        self.tuning
            .parameters
            .iter()
            .map(|p| match &p.target {
                Target::Law => Value::Text(self.protocol_law.map_or_else(|| "none".into(), law_name)),
                Target::Config { path, index } => {
                    let v = lookup(&self.base, path, *index);
                    let v = match v {
                        Some(toml::Value::Array(a)) => a.first(),
                        v => v,
                    };
                    match v {
                        Some(toml::Value::Float(x)) => Value::Real(*x),
                        Some(toml::Value::Integer(i)) => Value::Int(*i),
                        Some(toml::Value::Boolean(b)) => Value::Bool(*b),
                        Some(toml::Value::String(s)) => Value::Text(s.clone()),
                        _ => Value::Text("?".into()),
                    }
                }
            })
            .collect()
    }

    /// The start's normalised coordinates (CMA-ES's initial mean), clamped into the ranges.
    pub fn start_point(&self) -> Vec<f64> {
        self.tuning
            .parameters
            .iter()
            .zip(self.start_values())
            .map(|(p, v)| coordinate_of(p, v.axis(p)).unwrap_or(0.5))
            .collect()
    }

    /// The controller TOML of a candidate (the base with the values at their keys).
    pub fn config_text(&self, values: &[Value]) -> Result<String, String> {
        let mut table = self.base.clone();
        for (p, v) in self.tuning.parameters.iter().zip(values) {
            let Target::Config { path, index } = &p.target else { continue };
            let slot = lookup_mut(&mut table, path).ok_or_else(|| format!("{}: not in the base", p.key))?;
            match (slot, index) {
                (toml::Value::Array(a), Some(i)) => {
                    let e = a.get_mut(*i).ok_or_else(|| format!("{}: no element {i}", p.key))?;
                    *e = toml_value(v, e).map_err(|e| format!("{}: {e}", p.key))?;
                }
                (toml::Value::Array(a), None) => {
                    for e in a.iter_mut() {
                        *e = toml_value(v, e).map_err(|e| format!("{}: {e}", p.key))?;
                    }
                }
                (slot, _) => *slot = toml_value(v, slot).map_err(|e| format!("{}: {e}", p.key))?,
            }
        }
        toml::to_string(&table).map_err(|e| e.to_string())
    }

    /// The law a candidate sets (its `law` value), if the law is searched.
    pub fn law(&self, values: &[Value]) -> Option<AanLaw> {
        self.tuning.parameters.iter().zip(values).find(|(p, _)| p.target == Target::Law).and_then(|(_, v)| match v {
            Value::Text(t) => toml::Value::String(t.clone()).try_into().ok(),
            _ => None,
        })
    }

    /// A study of `candidates` (name, law) on `patients`, on `plant`.
    fn study(&self, candidates: Vec<(String, Option<AanLaw>)>, patients: &[String], plant: StudyPlant) -> Study {
        let t = &self.tuning;
        Study {
            name: t.name.clone(),
            description: String::new(),
            robot: t.robot.clone(),
            protocol: t.cohort.protocol.clone(),
            plant,
            sessions: t.cohort.sessions,
            seeds: t.cohort.seeds.clone(),
            patients: patients.to_vec(),
            controllers: candidates
                .into_iter()
                .map(|(name, law)| ControllerEntry {
                    name,
                    config: None,
                    law,
                    stiffness: None,
                    progression: None,
                    protocol: None,
                })
                .collect(),
            limits: t.cohort.limits.clone(),
            capacity_drop: None,
            fingerprint: t.fingerprint.clone(),
        }
    }

    /// The candidate's configuration, validated as `plexo check` validates (parsed, then the session built for
    /// every cohort patient); `Err`: why not.
    pub fn candidate(&self, index: usize, values: &[Value]) -> Result<Loaded<ControllerConfig>, String> {
        let source = format!("candidate eval-{index:05}");
        let text = self.config_text(values)?;
        let config = ControllerConfig::from_toml_str(&text, &source).map_err(|e| e.to_string())?;
        let loaded = Loaded { value: config, source: source.clone() };
        let single =
            self.study(vec![(source, self.law(values))], &self.tuning.cohort.patients, StudyPlant::Articulated);
        run::prepare_with(
            single,
            &self.path,
            Some(vec![Loaded { value: loaded.value.clone(), source: loaded.source.clone() }]),
        )
        .map_err(|e| e.to_string())?;
        Ok(loaded)
    }

    /// Runs `configs` (name, configuration, law) over `patients` on `plant`, courses in parallel; returns each
    /// configuration's course results. Not real-time safe.
    pub fn run_configs(
        &self,
        configs: Vec<(String, Loaded<ControllerConfig>, Option<AanLaw>)>,
        patients: &[String],
        plant: StudyPlant,
        bar: &ProgressBar,
    ) -> Result<Vec<Vec<CourseResult>>, AppError> {
        let n = configs.len();
        let (named, loaded): (Vec<_>, Vec<_>) = configs.into_iter().map(|(name, c, law)| ((name, law), c)).unzip();
        let study = self.study(named, patients, plant);
        let prepared = run::prepare_with(study, &self.path, Some(loaded))?;
        let courses = prepared.study().courses();
        let per = courses.len() / n.max(1);
        let results = prepared.run_courses_on(&courses, bar, |_| Ok(()))?;
        let mut out: Vec<Vec<CourseResult>> = vec![Vec::new(); n];
        for r in results {
            out[r.index / per.max(1)].push(r);
        }
        Ok(out)
    }

    /// Evaluates a batch: invalid candidates are recorded with their error, the valid ones run as one study on
    /// the tuning cohort; `done` is called with each evaluation (in index order). Not real-time safe.
    pub fn evaluate(
        &self,
        batch: &[Pending],
        bar: &ProgressBar,
        done: impl Fn(&Evaluation) -> Result<(), AppError>,
    ) -> Result<Vec<Evaluation>, AppError> {
        let record = |p: &Pending, error: Option<String>, courses: &[CourseResult]| Evaluation {
            tuning: self.tuning.fingerprint.clone(),
            index: p.index,
            generation: p.generation,
            values: p.values.clone(),
            error,
            metrics: cohort_metrics(courses.iter()),
            sessions: courses.iter().map(|c| c.sessions.len()).sum(),
            // A fold from +0 (an empty f64 `sum` is −0, which would print as "-0").
            session_time_s: courses.iter().flat_map(|c| &c.sessions).fold(0.0, |t, s| t + s.session_time_s),
        };
        let mut out = Vec::new();
        let mut valid = Vec::new();
        let mut runs = Vec::new();
        for p in batch {
            match self.candidate(p.index, &p.values) {
                Ok(config) => {
                    runs.push((format!("eval-{:05}", p.index), config, self.law(&p.values)));
                    valid.push(p);
                }
                Err(why) => {
                    bar.inc(self.sessions_per_candidate());
                    out.push(record(p, Some(why), &[]));
                }
            }
        }
        if !runs.is_empty() {
            let results = self.run_configs(runs, &self.tuning.cohort.patients, self.tuning.plant, bar)?;
            for (p, courses) in valid.into_iter().zip(results) {
                out.push(record(p, None, &courses));
            }
        }
        out.sort_by_key(|e| e.index);
        for e in &out {
            done(e)?;
        }
        Ok(out)
    }

    /// Sessions one candidate runs on the tuning cohort.
    pub fn sessions_per_candidate(&self) -> u64 {
        let c = &self.tuning.cohort;
        (c.patients.len() * c.seeds.len()) as u64 * u64::from(c.sessions)
    }
}

/// The TOML name of a law (`emken`).
pub fn law_name(law: AanLaw) -> String {
    toml::Value::try_from(law).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{law:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(index: usize, metrics: &[(&str, f64)], error: Option<&str>) -> Evaluation {
        Evaluation {
            tuning: "t".into(),
            index,
            generation: 1,
            values: Vec::new(),
            error: error.map(str::to_owned),
            metrics: metrics.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            sessions: 2,
            session_time_s: 1.0,
        }
    }

    #[test]
    fn feasible_candidates_rank_before_infeasible_ones_and_invalid_ones_last() {
        // objective = assistance_change − success, subject to success ≥ 0.9 (the test file's).
        let tuning = super::super::file::tests_support::tuning();
        let feasible = evaluation(1, &[("assistance_change", 0.2), ("success", 0.95)], None);
        let better_but_infeasible = evaluation(2, &[("assistance_change", -0.5), ("success", 0.8)], None);
        let invalid = evaluation(3, &[], Some("aan.emken.gain: allowed range …"));
        let undefined = evaluation(4, &[("success", 1.0)], None);
        let s = score(&tuning, &better_but_infeasible);
        assert!((s.objective.unwrap() - (-0.5 - 0.8)).abs() < 1e-12 && (s.violation - 0.1).abs() < 1e-12);
        assert!(!s.feasible() && score(&tuning, &feasible).feasible());
        assert_eq!(score(&tuning, &invalid), Score { objective: None, violation: f64::INFINITY });
        assert_eq!(score(&tuning, &undefined).objective, None, "a weighted metric is undefined");
        let mut all = [invalid.clone(), undefined.clone(), better_but_infeasible.clone(), feasible.clone()];
        all.sort_by(|a, b| better(&tuning, a, b));
        assert_eq!(all.iter().map(|e| e.index).collect::<Vec<_>>(), vec![1, 2, 4, 3]);
    }

    #[test]
    fn values_go_to_their_keys_in_the_type_of_the_configuration() {
        let text = super::super::file::tests_support::tuning_text()
            .replace("key = \"aan.emken.gain\"", "key = \"aan.damping[3]\"")
            .replace("key = \"law\"\nvalues = [\"emken\", \"rbf\"]", "key = \"aan.emken.continuous\"\nvalues = [true]");
        let tuning = Tuning::parse(&text, Path::new("t.toml")).unwrap();
        let base: toml::Table = plexo_controller::default_controller_toml("plexo-arm4").unwrap().0.parse().unwrap();
        let ctx = Context::offline(tuning, base);
        let out = ctx.config_text(&[Value::Real(0.5), Value::Real(2.5), Value::Bool(true)]).unwrap();
        let config = ControllerConfig::from_toml_str(&out, "candidate").unwrap();
        assert_eq!(config.aan.emken.forgetting, 0.5);
        assert_eq!(config.aan.damping, vec![3.0, 3.0, 1.0, 2.5], "only element 3");
        assert!(config.aan.emken.continuous);
        // A whole array without an index, and a value that does not fit the field's type.
        let mut whole = ctx.tuning.clone();
        whole.parameters[1].target = Target::Config { path: vec!["aan".into(), "damping".into()], index: None };
        let ctx = Context::offline(whole, ctx.base.clone());
        let out = ctx.config_text(&[Value::Real(0.5), Value::Real(2.0), Value::Bool(false)]).unwrap();
        assert_eq!(ControllerConfig::from_toml_str(&out, "c").unwrap().aan.damping, vec![2.0; 4]);
        let e = ctx.config_text(&[Value::Text("x".into()), Value::Real(2.0), Value::Bool(false)]).unwrap_err();
        assert!(e.contains("aan.emken.forgetting"), "{e}");
    }

    #[test]
    fn an_evaluation_round_trips_through_its_file_exactly() {
        let dir = std::env::temp_dir().join(format!("plexo-tune-eval-{}", std::process::id()));
        let mut e = evaluation(7, &[("success", 0.1 + 0.2), ("sparc", -2.123456789012345)], None);
        e.values = vec![Value::Real(0.1 + 0.7), Value::Int(16), Value::Text("rbf".into()), Value::Bool(true)];
        e.save(&dir).unwrap();
        assert_eq!(Evaluation::load(&evaluation_path(&dir, 7)).unwrap(), e);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
