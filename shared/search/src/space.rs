//! Search spaces: the hyperparameters a search may change and the values each may take —
//! integer and float ranges (floats optionally on a log scale) and lists of choices — with
//! the maps the search methods need: onto the unit cube (for the Gaussian process and for
//! uniform sampling) and onto a grid.
//!
//! Every point maps to the unit cube and back; integers and choices cover equal bins of
//! [0, 1], so a uniform draw gives each value the same chance and nearby unit coordinates
//! land on nearby values.

use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, SearchError};

/// The type of a model parameter as a search sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Int,
    Float,
    /// A positive float searched on a log scale (learning rates, decays).
    LogFloat,
    /// Only a list of values (layer shapes, flags).
    Choice,
}

/// A parameter a search may change, with its type.
pub type Tunable = (&'static str, ParamKind);

/// The values one dimension may take.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Domain {
    /// Whole numbers from `low` to `high`, both included.
    Int { low: i64, high: i64 },
    /// Reals from `low` to `high`; with `log`, uniform in log space.
    Float { low: f64, high: f64, log: bool },
    /// One of these JSON values.
    Choice { values: Vec<Value> },
}

/// A named dimension of a search space.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dimension {
    pub name: String,
    #[serde(flatten)]
    pub domain: Domain,
}

impl Dimension {
    pub fn int(name: &str, low: i64, high: i64) -> Self {
        Self::new(name, Domain::Int { low, high })
    }

    pub fn float(name: &str, low: f64, high: f64) -> Self {
        Self::new(
            name,
            Domain::Float {
                low,
                high,
                log: false,
            },
        )
    }

    pub fn log_float(name: &str, low: f64, high: f64) -> Self {
        Self::new(
            name,
            Domain::Float {
                low,
                high,
                log: true,
            },
        )
    }

    pub fn choice(name: &str, values: Vec<Value>) -> Self {
        Self::new(name, Domain::Choice { values })
    }

    fn new(name: &str, domain: Domain) -> Self {
        Self {
            name: name.to_owned(),
            domain,
        }
    }
}

/// A point of a search space: one value per dimension, in the space's order.
pub type Point = Vec<Value>;

/// Equal bins of [0, 1] for `n` discrete values: the bin of `u`.
fn bin(u: f64, n: usize) -> usize {
    ((u.clamp(0.0, 1.0) * n as f64) as usize).min(n.saturating_sub(1))
}

/// The centre of bin `i` of `n`.
fn bin_centre(i: usize, n: usize) -> f64 {
    (i as f64 + 0.5) / n as f64
}

impl Domain {
    /// How many values it holds, when finite.
    pub fn cardinality(&self) -> Option<usize> {
        match self {
            Domain::Int { low, high } => Some((high - low) as usize + 1),
            Domain::Float { low, high, .. } => (low == high).then_some(1),
            Domain::Choice { values } => Some(values.len()),
        }
    }

    /// The value at unit coordinate `u` ∈ [0, 1].
    pub fn from_unit(&self, u: f64) -> Value {
        let u = u.clamp(0.0, 1.0);
        match self {
            Domain::Int { low, high } => {
                Value::from(low + bin(u, (high - low) as usize + 1) as i64)
            }
            Domain::Float { low, high, log } => {
                let v = if *log {
                    (low.ln() + u * (high.ln() - low.ln())).exp()
                } else {
                    low + u * (high - low)
                };
                Value::from(v.clamp(*low, *high))
            }
            Domain::Choice { values } => values[bin(u, values.len())].clone(),
        }
    }

    /// The unit coordinate of `v` (clamped into the domain; an unknown choice is 0.5).
    pub fn to_unit(&self, v: &Value) -> f64 {
        match self {
            Domain::Int { low, high } => {
                let n = (high - low) as usize + 1;
                let x = v.as_f64().unwrap_or(*low as f64).round() as i64;
                bin_centre((x.clamp(*low, *high) - low) as usize, n)
            }
            Domain::Float { low, high, log } => {
                let x = v.as_f64().unwrap_or(*low).clamp(*low, *high);
                if high == low {
                    0.5
                } else if *log {
                    (x.ln() - low.ln()) / (high.ln() - low.ln())
                } else {
                    (x - low) / (high - low)
                }
            }
            Domain::Choice { values } => values
                .iter()
                .position(|c| c == v)
                .map_or(0.5, |i| bin_centre(i, values.len())),
        }
    }

    /// `resolution` evenly spaced values (log-spaced on a log scale), ends included;
    /// integers without repeats, and every choice whatever the resolution.
    pub fn grid(&self, resolution: usize) -> Vec<Value> {
        let r = resolution.max(1);
        let at = |i: usize| {
            if r == 1 {
                0.5
            } else {
                i as f64 / (r - 1) as f64
            }
        };
        match self {
            Domain::Int { low, high } => {
                let mut v: Vec<i64> = (0..r)
                    .map(|i| (*low as f64 + at(i) * (high - low) as f64).round() as i64)
                    .collect();
                v.dedup();
                v.into_iter().map(Value::from).collect()
            }
            Domain::Float { low, high, log } => {
                if low == high {
                    return vec![Value::from(*low)];
                }
                (0..r)
                    .map(|i| {
                        let v = if *log {
                            (low.ln() + at(i) * (high.ln() - low.ln())).exp()
                        } else {
                            low + at(i) * (high - low)
                        };
                        // Exact ends, whatever the rounding of exp(ln(x)).
                        Value::from(if i == 0 && r > 1 {
                            *low
                        } else if i + 1 == r && r > 1 {
                            *high
                        } else {
                            v
                        })
                    })
                    .collect()
            }
            Domain::Choice { values } => values.clone(),
        }
    }
}

/// The dimensions a search explores; every other parameter keeps its base value.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct SearchSpace {
    pub dims: Vec<Dimension>,
}

impl SearchSpace {
    pub fn new(dims: Vec<Dimension>) -> Self {
        Self { dims }
    }

    /// The point at unit coordinates `u` (one per dimension).
    pub fn from_unit(&self, u: &[f64]) -> Point {
        self.dims
            .iter()
            .zip(u)
            .map(|(d, &u)| d.domain.from_unit(u))
            .collect()
    }

    /// The unit coordinates of a point.
    pub fn to_unit(&self, point: &[Value]) -> Vec<f64> {
        self.dims
            .iter()
            .zip(point)
            .map(|(d, v)| d.domain.to_unit(v))
            .collect()
    }

    /// Unit coordinates moved onto the values they stand for (integers, choices).
    pub fn snap(&self, u: &[f64]) -> Vec<f64> {
        self.to_unit(&self.from_unit(u))
    }

    /// A uniformly drawn point.
    pub fn sample(&self, rng: &mut impl Rng) -> Point {
        let u: Vec<f64> = self.dims.iter().map(|_| rng.random::<f64>()).collect();
        self.from_unit(&u)
    }

    /// How many points it holds, when finite.
    pub fn cardinality(&self) -> Option<usize> {
        self.dims
            .iter()
            .try_fold(1usize, |n, d| n.checked_mul(d.domain.cardinality()?))
    }

    pub fn is_empty(&self) -> bool {
        self.dims.is_empty()
    }

    /// Every point of the grid with `resolution` values per numeric dimension, the first
    /// dimension varying slowest.
    pub fn grid(&self, resolution: usize) -> Vec<Point> {
        let mut points: Vec<Point> = vec![Vec::new()];
        for d in &self.dims {
            let values = d.domain.grid(resolution);
            points = points
                .into_iter()
                .flat_map(|p| {
                    values.iter().map(move |v| {
                        let mut p = p.clone();
                        p.push(v.clone());
                        p
                    })
                })
                .collect();
        }
        points
    }

    /// How many points the grid of `resolution` holds.
    pub fn grid_len(&self, resolution: usize) -> usize {
        self.dims
            .iter()
            .map(|d| d.domain.grid(resolution).len())
            .fold(1usize, usize::saturating_mul)
    }

    /// The finest resolution (at least 2) whose grid has at most `budget` points.
    pub fn resolution_for(&self, budget: usize) -> usize {
        let mut r = 2;
        // Past 1000 values a dimension, a finer grid changes nothing a search could use.
        while r < 1000 && self.grid_len(r + 1) <= budget && self.grid_len(r + 1) > self.grid_len(r)
        {
            r += 1;
        }
        r
    }

    /// A point as `{"name": value, …}`.
    pub fn to_map(&self, point: &[Value]) -> Map<String, Value> {
        self.dims
            .iter()
            .zip(point)
            .map(|(d, v)| (d.name.clone(), v.clone()))
            .collect()
    }

    /// The point of a `{"name": value, …}` map (missing names take the domain's middle).
    pub fn from_map(&self, map: &Map<String, Value>) -> Point {
        self.dims
            .iter()
            .map(|d| {
                map.get(&d.name)
                    .cloned()
                    .unwrap_or_else(|| d.domain.from_unit(0.5))
            })
            .collect()
    }

    /// A user's search space in the seed platform's JSON, `{"epochs": [50, 200],
    /// "generator_dim": [[128, 128], [256, 256]], …}`: a pair of numbers is a range of a
    /// numeric parameter (on a log scale for log-float ones), any other list is the values
    /// to choose from, and a single value fixes the parameter. Names must be in `tunables`.
    pub fn parse(json: &Value, model: &str, tunables: &[Tunable]) -> Result<Self> {
        let bad = |m: String| SearchError::Invalid(m);
        let Some(obj) = json.as_object() else {
            return Err(bad(
                "the search space must be a JSON object of parameter names".into(),
            ));
        };
        if obj.is_empty() {
            return Err(bad("the search space names no parameter".into()));
        }
        // In name order whatever the map's own order (serde_json keeps insertion order when
        // another crate in the build enables its `preserve_order`), so that a seed draws the
        // same points in every build.
        let mut entries: Vec<(&String, &Value)> = obj.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(b.0));
        let mut dims = Vec::with_capacity(obj.len());
        for (name, spec) in entries {
            let Some(&(_, kind)) = tunables.iter().find(|(n, _)| n == name) else {
                let known: Vec<&str> = tunables.iter().map(|(n, _)| *n).collect();
                return Err(bad(format!(
                    "{model} has no parameter {name:?} to search; it has {}",
                    known.join(", ")
                )));
            };
            dims.push(parse_dimension(name, kind, spec).map_err(|m| bad(format!("{name}: {m}")))?);
        }
        Ok(Self { dims })
    }
}

fn parse_dimension(name: &str, kind: ParamKind, spec: &Value) -> Result<Dimension, String> {
    let values = match spec {
        Value::Array(v) => v.clone(),
        // A single value fixes the parameter.
        other => vec![other.clone()],
    };
    if values.is_empty() {
        return Err("the list is empty".into());
    }
    if kind == ParamKind::Choice {
        return Ok(Dimension::choice(name, values));
    }
    let numbers = values
        .iter()
        .map(|v| v.as_f64().ok_or_else(|| format!("{v} is not a number")))
        .collect::<Result<Vec<f64>, String>>()?;
    if numbers.iter().any(|x| !x.is_finite()) {
        return Err("bounds must be finite".into());
    }
    if kind == ParamKind::Int
        && let Some(x) = numbers.iter().find(|x| x.fract() != 0.0)
    {
        return Err(format!("{x} is not a whole number"));
    }
    if numbers.len() != 2 {
        let values = numbers
            .iter()
            .map(|&x| match kind {
                ParamKind::Int => Value::from(x as i64),
                _ => Value::from(x),
            })
            .collect();
        return Ok(Dimension::choice(name, values));
    }
    let (low, high) = (numbers[0], numbers[1]);
    if low > high {
        return Err(format!("the range [{low}, {high}] is inverted"));
    }
    Ok(match kind {
        ParamKind::Int => Dimension::int(name, low as i64, high as i64),
        ParamKind::Float => Dimension::float(name, low, high),
        ParamKind::LogFloat => {
            if low <= 0.0 {
                return Err(format!(
                    "a log-scale range needs positive bounds, got [{low}, {high}]"
                ));
            }
            Dimension::log_float(name, low, high)
        }
        ParamKind::Choice => unreachable!("choices returned above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use serde_json::json;

    fn space() -> SearchSpace {
        SearchSpace::new(vec![
            Dimension::int("epochs", 1, 3),
            Dimension::float("x", 0.0, 1.0),
            Dimension::log_float("lr", 1e-4, 1e-2),
            Dimension::choice("dims", vec![json!([64]), json!([128, 128])]),
        ])
    }

    #[test]
    fn the_grid_enumerates_exactly_the_expected_points() {
        let s = space();
        let grid = s.grid(3);
        assert_eq!(grid.len(), 3 * 3 * 3 * 2);
        assert_eq!(s.grid_len(3), grid.len());
        let values = |i: usize| {
            let mut v: Vec<String> = grid.iter().map(|p| p[i].to_string()).collect();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(values(0), ["1", "2", "3"]);
        assert_eq!(values(1), ["0.0", "0.5", "1.0"]);
        let lrs: Vec<f64> = s.dims[2]
            .domain
            .grid(3)
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(lrs[0], 1e-4);
        assert!((lrs[1] - 1e-3).abs() < 1e-12, "{lrs:?}");
        assert_eq!(lrs[2], 1e-2);
        assert_eq!(values(3), ["[128,128]", "[64]"]);
        // Every combination once: no point repeats.
        let mut keys: Vec<String> = grid.iter().map(|p| format!("{p:?}")).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), grid.len());
        // The first dimension varies slowest.
        assert_eq!(grid[0][0], json!(1));
        assert_eq!(grid[grid.len() - 1][0], json!(3));
        // Integers do not repeat when the resolution exceeds the range.
        assert_eq!(Dimension::int("e", 1, 3).domain.grid(10).len(), 3);
        assert_eq!(
            Dimension::int("e", 0, 100).domain.grid(5),
            [json!(0), json!(25), json!(50), json!(75), json!(100)]
        );
    }

    #[test]
    fn the_resolution_fits_the_budget() {
        let s = SearchSpace::new(vec![
            Dimension::float("a", 0.0, 1.0),
            Dimension::float("b", 0.0, 1.0),
        ]);
        assert_eq!(s.resolution_for(20), 4);
        assert_eq!(s.resolution_for(25), 5);
        assert_eq!(s.resolution_for(3), 2);
        // Integers stop growing the grid once every value is in it.
        let s = SearchSpace::new(vec![Dimension::int("a", 1, 3)]);
        assert_eq!(s.grid(s.resolution_for(100)).len(), 3);
    }

    #[test]
    fn random_points_respect_bounds_and_types_and_follow_the_seed() {
        let s = space();
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..300).map(|_| s.sample(&mut rng)).collect::<Vec<_>>()
        };
        let points = draw(3);
        assert_eq!(points, draw(3));
        assert_ne!(points, draw(4));
        let mut seen_epochs = [false; 3];
        for p in &points {
            let e = p[0].as_i64().expect("an integer");
            assert!((1..=3).contains(&e));
            seen_epochs[(e - 1) as usize] = true;
            let x = p[1].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&x));
            let lr = p[2].as_f64().unwrap();
            assert!((1e-4..=1e-2).contains(&lr));
            assert!(p[3] == json!([64]) || p[3] == json!([128, 128]));
            // Back and forth through the unit cube gives the same point.
            assert_eq!(s.from_unit(&s.to_unit(p)), *p);
        }
        assert_eq!(seen_epochs, [true; 3]);
        // Log scale: about half the draws fall below the geometric middle.
        let below = points
            .iter()
            .filter(|p| p[2].as_f64().unwrap() < 1e-3)
            .count();
        assert!((100..200).contains(&below), "{below}");
    }

    #[test]
    fn user_spaces_in_the_seed_format_parse_with_clear_errors() {
        let tunables: &[Tunable] = &[
            ("epochs", ParamKind::Int),
            ("learning_rate", ParamKind::LogFloat),
            ("loss_factor", ParamKind::Float),
            ("generator_dim", ParamKind::Choice),
        ];
        let s = SearchSpace::parse(
            &json!({"epochs": [50, 200], "learning_rate": [1e-4, 1e-2],
                    "generator_dim": [[128, 128], [256, 256]], "loss_factor": 2.5}),
            "ctgan",
            tunables,
        )
        .unwrap();
        // Dimensions in name order.
        assert_eq!(s.dims[0], Dimension::int("epochs", 50, 200));
        assert_eq!(
            s.dims[1],
            Dimension::choice("generator_dim", vec![json!([128, 128]), json!([256, 256])])
        );
        assert_eq!(s.dims[2], Dimension::log_float("learning_rate", 1e-4, 1e-2));
        assert_eq!(
            s.dims[3],
            Dimension::choice("loss_factor", vec![json!(2.5)])
        );
        // Three numbers are choices, not a range.
        let s = SearchSpace::parse(&json!({"epochs": [1, 5, 9]}), "ctgan", tunables).unwrap();
        assert_eq!(
            s.dims[0],
            Dimension::choice("epochs", vec![json!(1), json!(5), json!(9)])
        );
        let err = |j: Value| match SearchSpace::parse(&j, "ctgan", tunables) {
            Err(SearchError::Invalid(m)) => m,
            other => panic!("expected an error for {j}, got {other:?}"),
        };
        assert!(err(json!({"epoch": [1, 2]})).contains("no parameter \"epoch\""));
        assert!(err(json!({"epochs": [200, 50]})).contains("inverted"));
        assert!(err(json!({"epochs": []})).contains("empty"));
        assert!(err(json!({"epochs": [1.5, 3]})).contains("whole number"));
        assert!(err(json!({"epochs": ["a", 3]})).contains("not a number"));
        assert!(err(json!({"learning_rate": [0, 1e-2]})).contains("positive"));
        assert!(err(json!({})).contains("no parameter"));
        assert!(err(json!([1, 2])).contains("JSON object"));
    }
}
