//! The candidates of a search, as points u ∈ [0, 1]ⁿ of the normalised space (one coordinate per numeric
//! parameter: linear or logarithmic in the value, integers rounded; a categorical parameter's coordinate picks
//! its choice) mapped to parameter values. Random and grid searches list every candidate up front from the
//! seed; CMA-ES is replayed generation by generation from the seed and the ranking of the earlier generations'
//! evaluations, so a process that evaluates generation g (a shard, or the next step of a cluster job) needs only
//! the merged evaluations of generations 1..g−1, not a state file.

use nalgebra::{DMatrix, DVector};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::file::{Choice, Kind, Method, Parameter, Range, Scale, Tuning};

/// A parameter's value in a candidate (as stored in the raw evaluations and written to the CSV).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Value {
    /// An integer parameter.
    Int(i64),
    /// A real parameter.
    Real(f64),
    /// A boolean choice.
    Bool(bool),
    /// A string choice (or a law).
    Text(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Real(x) => write!(f, "{x}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => write!(f, "{t}"),
        }
    }
}

impl Value {
    /// The number plotted on a parameter's axis: the value, or a choice's index.
    pub fn axis(&self, parameter: &Parameter) -> f64 {
        match (self, &parameter.range) {
            (Value::Int(i), _) => *i as f64,
            (Value::Real(x), _) => *x,
            (v, Range::Choices(choices)) => {
                choices.iter().position(|c| choice_value(c) == *v).map_or(f64::NAN, |i| i as f64)
            }
            _ => f64::NAN,
        }
    }
}

/// A choice as a value.
pub fn choice_value(c: &Choice) -> Value {
    match c {
        Choice::Bool(b) => Value::Bool(*b),
        Choice::Text(t) => Value::Text(t.clone()),
    }
}

/// The value of `parameter` at normalised coordinate `u` (clamped to [0, 1]).
pub fn value_at(parameter: &Parameter, u: f64) -> Value {
    let u = u.clamp(0.0, 1.0);
    match &parameter.range {
        Range::Numeric { min, max, scale, kind, .. } => {
            let x = match scale {
                Scale::Linear => min + u * (max - min),
                Scale::Log if u == 1.0 => *max,
                Scale::Log => (min.ln() + u * (max.ln() - min.ln())).exp().clamp(*min, *max),
            };
            match kind {
                Kind::Real => Value::Real(x),
                Kind::Int => Value::Int(x.round() as i64),
            }
        }
        Range::Choices(choices) => {
            let i = ((u * choices.len() as f64).floor() as usize).min(choices.len() - 1);
            choice_value(&choices[i])
        }
    }
}

/// The normalised coordinate of a numeric value (clamped to [0, 1]); `None` for a categorical parameter.
pub fn coordinate_of(parameter: &Parameter, x: f64) -> Option<f64> {
    match &parameter.range {
        Range::Numeric { min, max, scale, .. } => Some(match scale {
            Scale::Linear => ((x - min) / (max - min)).clamp(0.0, 1.0),
            Scale::Log => ((x.max(*min).ln() - min.ln()) / (max.ln() - min.ln())).clamp(0.0, 1.0),
        }),
        Range::Choices(_) => None,
    }
}

/// The values of the point `u`.
pub fn values_at(tuning: &Tuning, u: &[f64]) -> Vec<Value> {
    tuning.parameters.iter().zip(u).map(|(p, u)| value_at(p, *u)).collect()
}

/// Every candidate of a random search, in evaluation order (evaluation 1, 2, …): independent uniform draws of
/// each coordinate from the tuning's seed.
pub fn random_candidates(tuning: &Tuning) -> Vec<Vec<Value>> {
    let mut rng = StdRng::seed_from_u64(tuning.seed);
    (0..tuning.evaluations)
        .map(|_| {
            let u: Vec<f64> = tuning.parameters.iter().map(|_| rng.random::<f64>()).collect();
            values_at(tuning, &u)
        })
        .collect()
}

/// Every point of the grid, the first parameter varying slowest. Numeric levels are evenly spaced in the
/// normalised coordinate (so log ranges get geometric levels); choices are taken in order.
pub fn grid_candidates(tuning: &Tuning) -> Vec<Vec<Value>> {
    let levels: Vec<usize> = tuning.parameters.iter().map(Parameter::levels).collect();
    let mut out = Vec::with_capacity(tuning.grid_size());
    for mut n in 0..tuning.grid_size() {
        let mut point = vec![Value::Int(0); levels.len()];
        for (i, p) in tuning.parameters.iter().enumerate().rev() {
            let k = n % levels[i];
            n /= levels[i];
            point[i] = match &p.range {
                Range::Choices(c) => choice_value(&c[k]),
                Range::Numeric { .. } => value_at(p, k as f64 / (levels[i] - 1) as f64),
            };
        }
        out.push(point);
    }
    out
}

/// The candidates of a random or grid search (not the start).
pub fn listed_candidates(tuning: &Tuning) -> Vec<Vec<Value>> {
    match tuning.method {
        Method::Random => random_candidates(tuning),
        Method::Grid => grid_candidates(tuning),
        Method::Cmaes => Vec::new(),
    }
}

/// CMA-ES with rank-μ and rank-one update and cumulative step-size adaptation, as in N. Hansen, "The CMA
/// Evolution Strategy: A Tutorial", arXiv:1604.00772 (2016), Algorithm 1 ("(μ/μ_W, λ)-CMA-ES") with the default
/// parameters of its Table 1 restricted to positive recombination weights (no active update). Bounds: each
/// sample is reflected into the box [0, 1]ⁿ and the reflected point is the one evaluated and used in the update
/// (a repair, tutorial §B.3 lists it among the boundary handlings).
#[derive(Clone, Debug)]
pub struct Cmaes {
    mean: DVector<f64>,
    sigma: f64,
    c: DMatrix<f64>,
    b: DMatrix<f64>,
    d: DVector<f64>,
    p_sigma: DVector<f64>,
    p_c: DVector<f64>,
    weights: Vec<f64>,
    mu_eff: f64,
    c_sigma: f64,
    d_sigma: f64,
    c_c: f64,
    c_1: f64,
    c_mu: f64,
    chi_n: f64,
    lambda: usize,
    generation: u32,
    /// The last generation's samples y = (x − m)/σ, in the order `ask` returned them.
    last: Vec<DVector<f64>>,
}

fn reflect(x: f64) -> f64 {
    let r = x.rem_euclid(2.0);
    if r > 1.0 { 2.0 - r } else { r }
}

impl Cmaes {
    /// A new strategy at `mean` with step size `sigma` and population `lambda`.
    pub fn new(mean: &[f64], sigma: f64, lambda: usize) -> Self {
        let n = mean.len().max(1);
        let nf = n as f64;
        let mu = lambda / 2;
        // Table 1: w'_i = ln((λ+1)/2) − ln i, normalised to sum 1 over the μ best.
        let raw: Vec<f64> = (1..=mu).map(|i| ((lambda as f64 + 1.0) / 2.0).ln() - (i as f64).ln()).collect();
        let sum: f64 = raw.iter().sum();
        let weights: Vec<f64> = raw.iter().map(|w| w / sum).collect();
        let mu_eff = 1.0 / weights.iter().map(|w| w * w).sum::<f64>();
        let c_sigma = (mu_eff + 2.0) / (nf + mu_eff + 5.0);
        let d_sigma = 1.0 + 2.0 * (((mu_eff - 1.0) / (nf + 1.0)).sqrt() - 1.0).max(0.0) + c_sigma;
        let c_c = (4.0 + mu_eff / nf) / (nf + 4.0 + 2.0 * mu_eff / nf);
        let c_1 = 2.0 / ((nf + 1.3).powi(2) + mu_eff);
        let c_mu = (1.0 - c_1).min(2.0 * (mu_eff - 2.0 + 1.0 / mu_eff) / ((nf + 2.0).powi(2) + mu_eff));
        Self {
            mean: DVector::from_column_slice(mean),
            sigma,
            c: DMatrix::identity(n, n),
            b: DMatrix::identity(n, n),
            d: DVector::from_element(n, 1.0),
            p_sigma: DVector::zeros(n),
            p_c: DVector::zeros(n),
            weights,
            mu_eff,
            c_sigma,
            d_sigma,
            c_c,
            c_1,
            c_mu,
            // E‖N(0, I)‖ ≈ √n (1 − 1/(4n) + 1/(21n²)) (tutorial, after eq. 44).
            chi_n: nf.sqrt() * (1.0 - 1.0 / (4.0 * nf) + 1.0 / (21.0 * nf * nf)),
            lambda,
            generation: 0,
            last: Vec::new(),
        }
    }

    /// The current step size σ.
    pub fn sigma(&self) -> f64 {
        self.sigma
    }

    /// Samples one generation (λ points in [0, 1]ⁿ), x = m + σ B D z with z ~ N(0, I) drawn from `rng`.
    pub fn ask(&mut self, rng: &mut StdRng) -> Vec<Vec<f64>> {
        let n = self.mean.len();
        let bd = &self.b * DMatrix::from_diagonal(&self.d);
        let mut points = Vec::with_capacity(self.lambda);
        self.last.clear();
        for _ in 0..self.lambda {
            let z = DVector::from_fn(n, |_, _| rng.sample::<f64, _>(StandardNormal));
            let x = &self.mean + self.sigma * (&bd * z);
            let repaired = x.map(reflect);
            self.last.push((&repaired - &self.mean) / self.sigma);
            points.push(repaired.iter().copied().collect());
        }
        points
    }

    /// Updates the strategy from the ranking of the last `ask`: `order[k]` is the position (in `ask`'s list) of
    /// the k-th best sample.
    pub fn tell(&mut self, order: &[usize]) {
        let n = self.mean.len();
        self.generation += 1;
        let selected: Vec<&DVector<f64>> = order.iter().take(self.weights.len()).map(|&i| &self.last[i]).collect();
        let mut y_w = DVector::zeros(n);
        for (w, y) in self.weights.iter().zip(&selected) {
            y_w += *w * *y;
        }
        // Eq. 41: m ← m + c_m σ y_w with c_m = 1.
        self.mean += self.sigma * &y_w;
        // Eq. 43: p_σ ← (1 − c_σ) p_σ + √(c_σ(2 − c_σ) μ_eff) C^{-1/2} y_w, with C^{-1/2} = B D⁻¹ Bᵀ.
        let c_inv_sqrt = &self.b * DMatrix::from_diagonal(&self.d.map(|d| 1.0 / d)) * self.b.transpose();
        self.p_sigma = (1.0 - self.c_sigma) * &self.p_sigma
            + (self.c_sigma * (2.0 - self.c_sigma) * self.mu_eff).sqrt() * (c_inv_sqrt * &y_w);
        // Eq. 44: σ ← σ exp((c_σ/d_σ)(‖p_σ‖ / E‖N(0, I)‖ − 1)).
        self.sigma *= ((self.c_sigma / self.d_sigma) * (self.p_sigma.norm() / self.chi_n - 1.0)).exp();
        // h_σ (the Heaviside function after eq. 45) stalls p_c while ‖p_σ‖ is large.
        let denominator = (1.0 - (1.0 - self.c_sigma).powi(2 * self.generation as i32)).sqrt();
        let h_sigma = self.p_sigma.norm() / denominator < (1.4 + 2.0 / (n as f64 + 1.0)) * self.chi_n;
        let h = if h_sigma { 1.0 } else { 0.0 };
        // Eq. 45: p_c ← (1 − c_c) p_c + h_σ √(c_c(2 − c_c) μ_eff) y_w.
        self.p_c = (1.0 - self.c_c) * &self.p_c + h * (self.c_c * (2.0 - self.c_c) * self.mu_eff).sqrt() * &y_w;
        // Eq. 47 with positive weights (Σw = 1): C ← (1 + c_1 δ(h_σ) − c_1 − c_μ) C + c_1 p_c p_cᵀ + c_μ Σ w y yᵀ.
        let delta = (1.0 - h) * self.c_c * (2.0 - self.c_c);
        let mut rank_mu = DMatrix::zeros(n, n);
        for (w, y) in self.weights.iter().zip(&selected) {
            rank_mu += *w * (*y * y.transpose());
        }
        self.c = (1.0 + self.c_1 * delta - self.c_1 - self.c_mu) * &self.c
            + self.c_1 * (&self.p_c * self.p_c.transpose())
            + self.c_mu * rank_mu;
        // Keep C symmetric, then C = B D² Bᵀ.
        self.c = (&self.c + self.c.transpose()) * 0.5;
        let eigen = self.c.clone().symmetric_eigen();
        self.b = eigen.eigenvectors;
        self.d = eigen.eigenvalues.map(|l| l.max(1e-20).sqrt());
    }
}

/// The random-number generator of CMA-ES generation `generation` (1-based): its own stream from the tuning's
/// seed, so a generation can be sampled without the earlier generations' draws.
pub fn generation_rng(seed: u64, generation: u32) -> StdRng {
    StdRng::seed_from_u64(seed ^ u64::from(generation).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// The points of CMA-ES generation `generation` (1-based), replaying the strategy from `start` (the start
/// configuration's coordinates) through the earlier generations; `ranking(g)` gives generation g's order
/// (positions in its list, best first) from its evaluations.
pub fn cmaes_generation<E>(
    tuning: &Tuning,
    start: &[f64],
    generation: u32,
    mut ranking: impl FnMut(u32) -> Result<Vec<usize>, E>,
) -> Result<(Vec<Vec<f64>>, f64), E> {
    let mut strategy = Cmaes::new(start, tuning.sigma, tuning.population);
    for g in 1..generation {
        strategy.ask(&mut generation_rng(tuning.seed, g));
        strategy.tell(&ranking(g)?);
    }
    let sigma = strategy.sigma();
    Ok((strategy.ask(&mut generation_rng(tuning.seed, generation)), sigma))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sphere_run(seed: u64) -> f64 {
        // A 3-D sphere centred at 0.7 in the box: CMA-ES must close in from a corner.
        let target = [0.7, 0.2, 0.55];
        let f = |x: &[f64]| x.iter().zip(target).map(|(a, b)| (a - b).powi(2)).sum::<f64>();
        let mut s = Cmaes::new(&[0.05, 0.95, 0.05], 0.3, 8);
        let mut best = f64::INFINITY;
        for g in 1..=40 {
            let points = s.ask(&mut generation_rng(seed, g));
            let mut order: Vec<usize> = (0..points.len()).collect();
            order.sort_by(|a, b| f(&points[*a]).total_cmp(&f(&points[*b])));
            best = best.min(f(&points[order[0]]));
            s.tell(&order);
        }
        best
    }

    #[test]
    fn cmaes_finds_the_minimum_of_a_sphere_in_the_box_reproducibly() {
        let best = sphere_run(3);
        assert!(best < 1e-6, "{best}");
        assert_eq!(best, sphere_run(3), "same seed, same run");
    }

    #[test]
    fn samples_are_reflected_into_the_box() {
        assert_eq!(reflect(1.25), 0.75);
        assert_eq!(reflect(-0.25), 0.25);
        let mut s = Cmaes::new(&[0.0, 1.0], 2.0, 20);
        for p in s.ask(&mut generation_rng(1, 1)) {
            assert!(p.iter().all(|u| (0.0..=1.0).contains(u)), "{p:?}");
        }
    }

    #[test]
    fn values_map_linear_log_int_and_choices() {
        let tuning = super::super::file::tests_support::tuning();
        let grid = grid_candidates(&tuning);
        assert_eq!(grid.len(), tuning.grid_size());
        // log range 50..2000 with 5 points: geometric levels.
        let gains: Vec<f64> = grid.iter().take(10).map(|c| c[1].axis(&tuning.parameters[1])).collect();
        // The law varies fastest: levels come in pairs; the ends are the bounds exactly.
        assert!((gains[4] - (50.0f64 * 2000.0).sqrt()).abs() < 1e-6, "{gains:?}");
        assert_eq!((gains[0], gains[8]), (50.0, 2000.0));
        assert_eq!(grid[0][2], Value::Text("emken".into()));
        assert_eq!(grid[1][2], Value::Text("rbf".into()));
        assert_eq!(random_candidates(&tuning), random_candidates(&tuning));
        let p = &tuning.parameters[1];
        assert!((coordinate_of(p, value_at(p, 0.3).axis(p)).unwrap() - 0.3).abs() < 1e-12);
    }
}
