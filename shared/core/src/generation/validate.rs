//! Checking a generation request against the platform's limits, the model's parameters and
//! the dataset it names, before anything is stored: what `POST /generation-v2/validate`
//! answers, and what every start refuses on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use synth_table::{ColumnMetadata, ColumnProfile, Metadata, Profile, SdType};

use synth_constraints::{Constraint, OnViolation};

use super::{CheckedModel, GenerationInput, OutputFormat, RequestKind, models};
use crate::Settings;
use crate::datasets::{Dataset, DatasetStatus};

/// One thing wrong (or worth knowing) about a request, and the field it is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The outcome of checking a request: errors refuse it, warnings do not.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Validation {
    pub valid: bool,
    pub errors: Vec<Problem>,
    pub warnings: Vec<Problem>,
}

/// A request that passed: what the service stores.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Checked {
    pub model: CheckedModel,
    pub sample_size: u64,
    pub output_format: OutputFormat,
    /// Column → value, each value as the dataset spells it (text).
    pub conditions: BTreeMap<String, Value>,
    pub optimization: Option<Value>,
    pub constraints: Vec<Constraint>,
    pub on_violation: OnViolation,
}

/// Check `input` for `dataset` (whose profile is `profile`, once it is ready).
pub(crate) fn check(
    settings: &Settings,
    dataset: &Dataset,
    profile: Option<&Profile>,
    input: &GenerationInput,
) -> (Validation, Option<Checked>) {
    let mut v = Validation::default();
    v.errors
        .extend(input.unknown_fields.iter().map(|name| unknown_field(name)));
    v.errors.extend(check_dataset(dataset));
    let sample_size = input.sample_size.unwrap_or(settings.default_sample_size);
    if !(settings.min_sample_size..=settings.max_sample_size).contains(&sample_size) {
        v.errors.push(Problem::new(
            "sample_size",
            format!(
                "must be between MIN_SAMPLE_SIZE ({}) and MAX_SAMPLE_SIZE ({}), got {sample_size}",
                settings.min_sample_size, settings.max_sample_size
            ),
        ));
    }
    let output_format = output_format(input.output_format.as_deref(), &mut v);
    // The platform's DEFAULT_EPOCHS, not the model's own default, when none is given.
    let mut parameters = input.parameters.clone();
    parameters
        .entry("epochs")
        .or_insert_with(|| settings.default_epochs.into());
    // Constraints sit in the model configuration beside the model's own parameters.
    let (constraints, on_violation) = check_constraints(
        dataset,
        input,
        parameters.remove("constraints"),
        parameters.remove("on_violation"),
        &mut v,
    );
    let model = match models::check(&input.model_type, &parameters) {
        Ok(m) => {
            let batch_given = input.parameters.contains_key("batch_size");
            check_model(settings, dataset, &m, batch_given, &mut v);
            check_rare(profile, dataset.metadata.as_ref(), &m, &mut v);
            Some(m)
        }
        Err(problem) => {
            v.errors.push(problem);
            None
        }
    };
    warn_generated_text(dataset.metadata.as_ref(), &mut v);
    let conditions = check_conditions(dataset, profile, &input.conditions, &mut v);
    let optimization = model
        .as_ref()
        .and_then(|m| check_optimization(settings, m, input, &mut v));
    check_target(dataset, optimization.as_ref(), &mut v);
    v.valid = v.errors.is_empty();
    let checked = match (v.valid, model, output_format) {
        (true, Some(model), Some(output_format)) => Some(Checked {
            model,
            sample_size,
            output_format,
            conditions,
            optimization,
            constraints,
            on_violation,
        }),
        _ => None,
    };
    (v, checked)
}

/// A top-level field the request's route does not have.
fn unknown_field(name: &str) -> Problem {
    let message = if name == "model_type" {
        "on /generation/start the model goes in `model_config`: {\"model_config\": \
         {\"model_type\": …}}"
            .to_owned()
    } else if synth_models::is_parameter(name) {
        format!(
            "`{name}` is a model parameter, not a field of the request: send it with the \
             model, in `parameters` (`model_config` on /generation/start)"
        )
    } else {
        format!("unknown field `{name}`; see the route's request body in /openapi.json")
    };
    Problem::new(name, message)
}

/// Why a model cannot be trained on the dataset at all, if it cannot: not ready, nothing
/// to learn, too few rows.
fn check_dataset(dataset: &Dataset) -> Option<Problem> {
    let why = if dataset.status != DatasetStatus::Ready {
        format!("the dataset is {}, not ready", dataset.status.as_str())
    } else if !has_scored_column(dataset) {
        "the dataset has no numerical, categorical, boolean or datetime column, only keys, \
         free text and personal data: nothing a model learns and a report scores. Set a \
         column's sdtype with PUT /upload/datasets/{id}/metadata"
            .to_owned()
    } else if let Some(rows) = dataset
        .n_rows
        .filter(|&n| n < synth_models::MIN_TRAINING_ROWS as u64)
    {
        let least = synth_models::MIN_TRAINING_ROWS;
        format!(
            "the dataset has {rows} rows: a model needs at least {least} to learn \
             from rather than copy them"
        )
    } else {
        return None;
    };
    Some(Problem::new("dataset_id", why))
}

/// Whether a column besides the primary key has a type the models learn and the report
/// scores (personal data is generated, not learned).
fn has_scored_column(dataset: &Dataset) -> bool {
    let Some(m) = &dataset.metadata else {
        return false;
    };
    m.columns.iter().any(|(name, c)| {
        m.primary_key.as_deref() != Some(name) && c.sdtype.is_statistical() && !c.is_personal()
    })
}

fn output_format(raw: Option<&str>, v: &mut Validation) -> Option<OutputFormat> {
    let Some(raw) = raw else {
        return Some(OutputFormat::default());
    };
    match serde_json::from_value(Value::String(raw.to_ascii_lowercase())) {
        Ok(f) => Some(f),
        Err(_) => {
            v.errors.push(Problem::new(
                "output_format",
                format!("unknown output format {raw:?}; use csv, json, parquet or xlsx"),
            ));
            None
        }
    }
}

/// `batch_given`: the caller chose the batch size (a default one larger than a small table
/// is no news: every model trains on what rows there are).
fn check_model(
    settings: &Settings,
    dataset: &Dataset,
    m: &CheckedModel,
    batch_given: bool,
    v: &mut Validation,
) {
    if m.epochs > settings.max_epochs {
        v.errors.push(Problem::new(
            "parameters.epochs",
            format!(
                "epochs above MAX_EPOCHS ({}): {}",
                settings.max_epochs, m.epochs
            ),
        ));
    } else if m.epochs < settings.min_epochs {
        v.errors.push(Problem::new(
            "parameters.epochs",
            format!(
                "epochs below MIN_EPOCHS ({}): {}",
                settings.min_epochs, m.epochs
            ),
        ));
    }
    if let Some(rows) = dataset.n_rows
        && batch_given
        && m.batch_size > rows
    {
        v.warnings.push(Problem::new(
            "batch_size",
            format!(
                "the dataset has {rows} rows: batch_size {} is larger than the data",
                m.batch_size
            ),
        ));
    }
}

/// Free text is personal unless its metadata says otherwise: generated in its values'
/// shapes, not learned. Said before anything trains, with how to have it learned instead.
fn warn_generated_text(metadata: Option<&Metadata>, v: &mut Validation) {
    let Some(m) = metadata else {
        return;
    };
    for (name, c) in &m.columns {
        if c.sdtype == SdType::Text && c.is_personal() && m.primary_key.as_deref() != Some(name) {
            v.warnings.push(Problem::new(
                format!("columns.{name}"),
                format!(
                    "column {name:?} is free text, kept private: it is written as random \
                     letters and digits in the shapes of its values, not learned; its metadata \
                     with \"pii\": false has it learned as categories (real values)"
                ),
            ));
        }
    }
}

/// argn never writes a category seen in fewer than `rare_threshold` rows (their rows take the
/// column's other values; a column with none left writes `_RARE_`, or a missing value): a
/// column where that is a tenth of the values or more gets a warning before anything trains.
fn check_rare(
    profile: Option<&Profile>,
    metadata: Option<&Metadata>,
    m: &CheckedModel,
    v: &mut Validation,
) {
    use synth_models::Params;
    use synth_models::argn::RARE_TEXT;
    let Some(profile) = profile.filter(|_| m.model_type == synth_models::ArgnParams::NAME) else {
        return;
    };
    let given = m.parameters["rare_threshold"].as_u64().map(|k| k as usize);
    let k = synth_models::argn::rare_threshold(given, profile.n_rows);
    // The columns argn learns as categories, as the metadata (overrides included) says.
    let categorical = |c: &&ColumnProfile| {
        let meta = metadata.and_then(|m| m.column(&c.name));
        let key = metadata.is_some_and(|m| m.primary_key.as_deref() == Some(c.name.as_str()));
        let sdtype = meta.map_or(c.sdtype, |m| m.sdtype);
        let personal = meta.map_or_else(
            || ColumnMetadata::new(sdtype).is_personal(),
            ColumnMetadata::is_personal,
        );
        !key && !personal && !matches!(sdtype, SdType::Numerical | SdType::Datetime | SdType::Id)
    };
    for col in profile.columns.iter().filter(categorical) {
        let rare = rare_values(col, k);
        if rare > 0 && rare * 10 >= col.count {
            v.warnings.push(Problem::new(
                "parameters.rare_threshold",
                format!(
                    "column {:?}: about {rare} of its {} values are categories seen in fewer \
                     than {k} rows, which argn does not write, to keep them private: their rows \
                     take the column's other values (a column with none left writes \
                     {RARE_TEXT}, or a missing value); rare_threshold 1 writes them",
                    col.name, col.count
                ),
            ));
        }
    }
}

/// How many of a column's values are categories seen in fewer than `k` rows, as far as its
/// profile tells: the listed (most frequent) categories exactly; the others, all rarer than
/// the least listed, are counted rare when it is, or when they average fewer than `k` rows.
fn rare_values(col: &ColumnProfile, k: usize) -> usize {
    let listed: usize = col.top.iter().map(|c| c.count).sum();
    let rare_listed: usize = col
        .top
        .iter()
        .filter(|c| c.count < k)
        .map(|c| c.count)
        .sum();
    let (rest_rows, rest_categories) = (
        col.count.saturating_sub(listed),
        col.distinct.saturating_sub(col.top.len()),
    );
    let rest_rare = col.top.iter().any(|c| c.count < k)
        || (rest_categories > 0 && rest_rows < rest_categories.saturating_mul(k));
    rare_listed + if rest_rare { rest_rows } else { 0 }
}

/// Conditions name columns of the dataset: a discrete column equals a value it holds; a
/// numerical or datetime column equals a value or lies in a range (`{">=": a, "<": b}`).
/// Returns them with each value as text (how the engine reads them).
fn check_conditions(
    dataset: &Dataset,
    profile: Option<&Profile>,
    conditions: &BTreeMap<String, Value>,
    v: &mut Validation,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (column, value) in conditions {
        let field = format!("conditions.{column}");
        let Some(meta) = dataset.metadata.as_ref().and_then(|m| m.column(column)) else {
            v.errors.push(Problem::new(
                field,
                format!("condition column {column:?} is not in the dataset"),
            ));
            continue;
        };
        let ordered = matches!(meta.sdtype, SdType::Numerical | SdType::Datetime);
        if meta.is_personal() && meta.sdtype.is_statistical() {
            v.errors.push(Problem::new(
                field,
                format!("column {column:?} is personal data (pii): its values are generated, not learned, so a condition cannot hold them"),
            ));
            continue;
        }
        if !meta.sdtype.is_statistical() {
            v.errors.push(Problem::new(
                field,
                format!(
                    "column {column:?} is {}: conditions take categorical, boolean, numerical and datetime columns",
                    meta.sdtype.as_str()
                ),
            ));
            continue;
        }
        let checked = match value {
            Value::Object(ops) if ordered => range(ops),
            Value::Object(_) => Err(format!(
                "column {column:?} is categorical: a range applies to numerical and datetime columns"
            )),
            other => scalar_text(other)
                .map(Value::String)
                .ok_or_else(|| "a condition's value is a string, a number or a boolean".to_owned()),
        };
        let checked = match checked {
            Ok(c) if meta.sdtype == SdType::Numerical => numeric_condition(profile, column, c),
            Ok(c) if meta.sdtype == SdType::Datetime => datetime_condition(meta, column, c),
            other => other,
        };
        match checked {
            Ok(Value::String(text)) if !ordered => {
                check_category(profile, column, &text, &field, v);
                out.insert(column.clone(), Value::String(text));
            }
            Ok(checked) => {
                out.insert(column.clone(), checked);
            }
            Err(message) => v.errors.push(Problem::new(field, message)),
        }
    }
    out
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `{">=": a, "<": b}`: one or two ends, each a number or a date string; numbers in order.
fn range(ops: &serde_json::Map<String, Value>) -> Result<Value, String> {
    let mut out = serde_json::Map::new();
    for (op, end) in ops {
        if !matches!(op.as_str(), ">" | ">=" | "<" | "<=") {
            return Err(format!("unknown range operator {op:?}: use >, >=, < or <="));
        }
        let text = scalar_text(end)
            .filter(|_| !end.is_boolean())
            .ok_or_else(|| format!("the {op} end of a range is a number or a date"))?;
        out.insert(op.clone(), Value::String(text));
    }
    let lows = ops.keys().filter(|k| k.starts_with('>')).count();
    let highs = ops.keys().filter(|k| k.starts_with('<')).count();
    if ops.is_empty() || lows > 1 || highs > 1 {
        return Err(
            "a range has one low end (> or >=), one high end (< or <=), or both, and no more"
                .into(),
        );
    }
    let number = |prefix: char| {
        ops.iter()
            .find(|(k, _)| k.starts_with(prefix))
            .and_then(|(_, v)| v.as_f64())
    };
    if let (Some(low), Some(high)) = (number('>'), number('<'))
        && low > high
    {
        return Err(format!("the low end {low} is above the high end {high}"));
    }
    Ok(Value::Object(out))
}

/// A numerical column's condition (a value or a range, its ends as text): every end is a
/// number, and some value between the column's least and greatest could meet it, since no
/// model writes one outside them. Returns the condition as given.
fn numeric_condition(profile: Option<&Profile>, column: &str, c: Value) -> Result<Value, String> {
    let number = |op: &str, v: &Value| {
        let text = v.as_str().unwrap_or_default();
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .map(|x| (op.to_owned(), x))
            .ok_or_else(|| format!("{text:?} is not a number (column {column:?} is numerical)"))
    };
    let ends: Vec<(String, f64)> = match &c {
        Value::Object(ops) => ops.iter().map(|(op, v)| number(op, v)).collect(),
        v => number("==", v).map(|e| vec![e]),
    }?;
    let profiled = profile.and_then(|p| p.columns.iter().find(|col| col.name == column));
    let whole = profiled.is_some_and(|col| col.decimals == Some(0));
    if let Some((_, x)) = ends.iter().find(|(op, x)| op == "==" && x.fract() != 0.0)
        && whole
    {
        return Err(format!(
            "column {column:?} holds whole numbers: no value of it is {x}"
        ));
    }
    let Some(s) = profiled.and_then(|col| col.numeric.as_ref()) else {
        return Ok(c);
    };
    let possible = ends.iter().all(|(op, x)| match op.as_str() {
        ">" => *x < s.max,
        ">=" => *x <= s.max,
        "<" => *x > s.min,
        "<=" => *x >= s.min,
        _ => (s.min..=s.max).contains(x),
    });
    if possible {
        Ok(c)
    } else {
        Err(format!(
            "no value of column {column:?} meets it: its values run from {} to {}",
            s.min, s.max
        ))
    }
}

/// A datetime condition's dates must read in the column's format or ISO 8601, as the job
/// reads them; a range's ends in order.
fn datetime_condition(meta: &ColumnMetadata, column: &str, c: Value) -> Result<Value, String> {
    use synth_constraints::{spec::Scalar, values::scalar};
    let read = |op: &str, v: &Value| {
        let text = v.as_str().unwrap_or_default();
        scalar(&Scalar::Text(text.to_owned()), column, meta)
            .map(|t| (op.to_owned(), t))
            .map_err(|_| {
                let format = meta.datetime_format.as_deref().unwrap_or("%Y-%m-%d");
                format!("{text:?} is not a date of column {column:?} ({format}, or ISO 8601)")
            })
    };
    let ends: Vec<(String, f64)> = match &c {
        Value::Object(ops) => ops.iter().map(|(op, v)| read(op, v)).collect(),
        v => read("==", v).map(|e| vec![e]),
    }?;
    let end = |prefix: char| {
        ends.iter()
            .find(|(op, _)| op.starts_with(prefix))
            .map(|e| e.1)
    };
    match (end('>'), end('<')) {
        (Some(low), Some(high)) if low > high => Err(format!(
            "the range of column {column:?} is inverted: its low end is after its high end"
        )),
        _ => Ok(c),
    }
}

/// A category the profile shows the column never holds is an error; one beyond its most
/// frequent values, a warning (the job checks it).
fn check_category(
    profile: Option<&Profile>,
    column: &str,
    text: &str,
    field: &str,
    v: &mut Validation,
) {
    let Some(col) = profile.and_then(|p| p.columns.iter().find(|c| c.name == column)) else {
        return;
    };
    let seen = col.top.iter().any(|c| c.value == text);
    if !seen && col.top.len() >= col.distinct {
        v.errors.push(Problem::new(
            field,
            format!("value {text:?} never occurs in column {column:?}"),
        ));
    } else if !seen {
        v.warnings.push(Problem::new(
            field,
            format!(
                "value {text:?} is not among the {} most frequent of column {column:?}; \
                 the job checks it",
                col.top.len()
            ),
        ));
    }
}

/// `constraints` (a list in SDV's constraint JSON) name the dataset's columns with types
/// their classes take; none given, the dataset's accepted ones apply (`[]` or `null`: none).
/// `on_violation` is `fail` (the default) or `drop`.
fn check_constraints(
    dataset: &Dataset,
    input: &GenerationInput,
    constraints: Option<Value>,
    on_violation: Option<Value>,
    v: &mut Validation,
) -> (Vec<Constraint>, OnViolation) {
    const FIELD: &str = "parameters.constraints";
    let policy = match on_violation.map(serde_json::from_value::<OnViolation>) {
        None => OnViolation::default(),
        Some(Ok(p)) => p,
        Some(Err(_)) => {
            v.errors.push(Problem::new(
                "parameters.on_violation",
                "on_violation is fail or drop",
            ));
            OnViolation::default()
        }
    };
    let items = match constraints {
        // None given: the dataset's own (what its owner accepted), except for a search.
        None if input.kind == RequestKind::Optimization => return (Vec::new(), policy),
        None => return (dataset.constraints.clone(), policy),
        Some(Value::Null) => return (Vec::new(), policy),
        Some(Value::Array(items)) => items,
        Some(_) => {
            v.errors.push(Problem::new(
                FIELD,
                "constraints is a list of {constraint_class, constraint_parameters}",
            ));
            return (Vec::new(), policy);
        }
    };
    let checked = synth_constraints::from_values(items).and_then(|cs| {
        if let Some(metadata) = dataset.metadata.as_ref() {
            synth_constraints::validate(&cs, metadata)?;
        }
        Ok(cs)
    });
    match checked {
        Ok(cs) if !cs.is_empty() && input.kind == RequestKind::Optimization => {
            v.errors.push(Problem::new(
                FIELD,
                "constraints apply to generation requests: a search scores its trials unconstrained",
            ));
            (Vec::new(), policy)
        }
        Ok(cs) => (cs, policy),
        Err(e) => {
            v.errors.push(Problem::new(FIELD, e.to_string()));
            (Vec::new(), policy)
        }
    }
}

/// A search's `ml_efficacy` target must be a column of the dataset.
fn check_target(dataset: &Dataset, optimization: Option<&Value>, v: &mut Validation) {
    let target = optimization
        .and_then(|o| o.get("target"))
        .and_then(Value::as_str);
    let (Some(target), Some(metadata)) = (target, dataset.metadata.as_ref()) else {
        return;
    };
    if metadata.column(target).is_none() {
        v.errors.push(Problem::new(
            "optimization_config.target",
            format!("the target {target:?} is not a column of the dataset"),
        ));
    }
}

pub(crate) fn check_optimization(
    settings: &Settings,
    model: &CheckedModel,
    input: &GenerationInput,
    v: &mut Validation,
) -> Option<Value> {
    let config = input.optimization.as_ref()?;
    if config.get("enabled").and_then(Value::as_bool) == Some(false) {
        return None;
    }
    match models::check_optimization(settings, model, config) {
        Ok(checked) => {
            let request = serde_json::from_value::<synth_models::OptimizeRequest>(checked.clone());
            let searched = request.ok().and_then(|r| r.searched_parameters().ok());
            for name in searched.into_iter().flatten() {
                if input.parameters.contains_key(&name) {
                    v.warnings.push(Problem::new(
                        format!("parameters.{name}"),
                        format!("the search sets {name}; this value is not used"),
                    ));
                }
            }
            let trials = checked.get("n_trials").and_then(Value::as_u64).unwrap_or(0);
            if trials > settings.max_optimization_trials {
                v.errors.push(Problem::new(
                    "optimization_config.n_trials",
                    format!(
                        "n_trials above MAX_OPTIMIZATION_TRIALS ({}): {trials}",
                        settings.max_optimization_trials
                    ),
                ));
            }
            Some(checked)
        }
        Err(problem) => {
            v.errors.push(problem);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A profile of `rows` rows with one categorical column whose categories have `counts`
    /// (the most frequent 20 listed, as profiles list them).
    fn profile(counts: &[usize]) -> Profile {
        let rows: usize = counts.iter().sum();
        let mut sorted = counts.to_vec();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let top: Vec<Value> = sorted
            .iter()
            .take(20)
            .enumerate()
            .map(|(i, c)| json!({"value": format!("c{i}"), "count": c, "frequency": 0.0}))
            .collect();
        serde_json::from_value(json!({
            "n_rows": rows, "n_columns": 1, "preview": [],
            "columns": [{"name": "city", "sdtype": "categorical", "count": rows, "nulls": 0,
                         "distinct": counts.len(), "top": top}],
        }))
        .unwrap()
    }

    fn warnings(p: &Profile, parameters: Value) -> Vec<String> {
        let m = models::check("argn", parameters.as_object().unwrap()).unwrap();
        let mut v = Validation::default();
        check_rare(Some(p), None, &m, &mut v);
        v.warnings.into_iter().map(|w| w.message).collect()
    }

    #[test]
    fn datetime_conditions_read_as_the_job_reads_them() {
        let meta = ColumnMetadata {
            datetime_format: Some("%d.%m.%Y".into()),
            ..ColumnMetadata::new(SdType::Datetime)
        };
        let ok = |c: Value| datetime_condition(&meta, "signup", c).is_ok();
        assert!(ok(json!("26.09.2021")));
        assert!(ok(json!("2021-09-26")));
        assert!(ok(json!({">=": "01.01.2021", "<": "2022-01-01"})));
        assert!(!ok(json!("26/09/2021")));
        assert!(!ok(json!({">=": "garbage"})));
        assert!(!ok(json!({">=": "2022-01-01", "<": "01.01.2021"})));
    }

    #[test]
    fn a_parameter_both_given_and_searched_is_warned_of() {
        let parameters = json!({"epochs": 30, "batch_size": 100});
        let input = GenerationInput {
            model_type: "tvae".into(),
            parameters: parameters.as_object().unwrap().clone(),
            optimization: Some(json!({"search_space": {"epochs": [20, 40]}})),
            ..GenerationInput::default()
        };
        let m = models::check("tvae", &input.parameters).unwrap();
        let mut v = Validation::default();
        let checked = check_optimization(&Settings::for_tests(), &m, &input, &mut v);
        assert!(checked.is_some() && v.errors.is_empty(), "{v:?}");
        let fields: Vec<&str> = v.warnings.iter().map(|w| w.field.as_str()).collect();
        assert_eq!(fields, ["parameters.epochs"]);
        // The default space searches epochs too; CTGAN's learning_rate sets both rates.
        let warned = |model: &str, parameters: Value, optimization: Value| {
            let input = GenerationInput {
                model_type: model.into(),
                parameters: parameters.as_object().unwrap().clone(),
                optimization: Some(optimization),
                ..GenerationInput::default()
            };
            let m = models::check(model, &input.parameters).unwrap();
            let mut v = Validation::default();
            check_optimization(&Settings::for_tests(), &m, &input, &mut v);
            let mut fields: Vec<String> = v.warnings.into_iter().map(|w| w.field).collect();
            fields.sort();
            fields
        };
        assert_eq!(
            warned("tvae", json!({"epochs": 30}), json!({"n_trials": 2})),
            ["parameters.epochs"]
        );
        let lr = json!({"search_space": {"learning_rate": [1e-4, 1e-3]}});
        assert_eq!(
            warned("ctgan", json!({"generator_lr": 1e-4}), lr),
            ["parameters.generator_lr"]
        );
    }

    #[test]
    fn argn_warns_when_rare_categories_are_a_tenth_of_a_column() {
        // 300 rows (threshold 3): 10 categories of 25, then 25 seen twice.
        let mostly_common = profile(&[vec![25; 10], vec![2; 25]].concat());
        let w = warnings(&mostly_common, json!({}));
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("50 of its 300 values"), "{w:?}");
        assert!(w[0].contains("_RARE_"), "{w:?}");
        // Turning the protection off, or a column with few rare rows, warns of nothing.
        assert!(warnings(&mostly_common, json!({"rare_threshold": 1})).is_empty());
        let few_rare = profile(&[vec![50; 10], vec![1; 20]].concat());
        assert!(warnings(&few_rare, json!({})).is_empty());
        // CTGAN and TVAE write every category.
        let m = models::check("ctgan", &serde_json::Map::new()).unwrap();
        let mut v = Validation::default();
        check_rare(Some(&mostly_common), None, &m, &mut v);
        assert!(v.warnings.is_empty());
    }

    #[test]
    fn free_text_generated_rather_than_learned_is_said() {
        let learned = ColumnMetadata {
            pii: Some(false),
            ..ColumnMetadata::new(SdType::Text)
        };
        let m = Metadata::new(vec![
            ("note".into(), ColumnMetadata::new(SdType::Text)),
            ("memo".into(), learned),
            ("mail".into(), ColumnMetadata::new(SdType::Email)),
        ]);
        let mut v = Validation::default();
        warn_generated_text(Some(&m), &mut v);
        let fields: Vec<&str> = v.warnings.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["columns.note"]);
        assert!(v.warnings[0].message.contains("\"pii\": false"));
    }

    #[test]
    fn argn_warns_of_unique_text_learned_but_not_of_personal_data() {
        let p: Profile = serde_json::from_value(json!({
            "n_rows": 200, "n_columns": 1, "preview": [],
            "columns": [{"name": "note", "sdtype": "text", "count": 200, "nulls": 0,
                         "distinct": 200}],
        }))
        .unwrap();
        let m = models::check("argn", &serde_json::Map::new()).unwrap();
        let warned = |metadata: Option<&Metadata>| {
            let mut v = Validation::default();
            check_rare(Some(&p), metadata, &m, &mut v);
            v.warnings.len()
        };
        // Free text is personal unless its metadata says `pii: false`: generated, not learned.
        assert_eq!(warned(None), 0);
        let mut learned = ColumnMetadata::new(SdType::Text);
        learned.pii = Some(false);
        assert_eq!(
            warned(Some(&Metadata::new(vec![("note".into(), learned)]))),
            1
        );
        let personal = Metadata::new(vec![("note".into(), ColumnMetadata::new(SdType::Email))]);
        assert_eq!(warned(Some(&personal)), 0);
        let numbers = Metadata::new(vec![(
            "note".into(),
            ColumnMetadata::new(SdType::Numerical),
        )]);
        assert_eq!(warned(Some(&numbers)), 0);
    }

    #[test]
    fn rare_values_are_counted_past_the_listed_categories() {
        // Complete list: exactly the categories under the threshold.
        let rare = |counts: &[usize], k| rare_values(&profile(counts).columns[0], k);
        assert_eq!(rare(&[10, 10, 2, 1], 3), 3);
        // 20 listed of 60; the least listed (2) is rare, so all 40 unlisted (1 each) are.
        assert_eq!(
            rare(&[vec![30; 10], vec![2; 10], vec![1; 40]].concat(), 3),
            20 + 40
        );
        // The least listed is common: the unlisted count as rare when they average fewer
        // than k rows (5 of 2 rows each), not otherwise (5 of 4).
        assert_eq!(rare(&[vec![30; 20], vec![2; 5]].concat(), 3), 10);
        assert_eq!(rare(&[vec![30; 20], vec![4; 5]].concat(), 3), 0);
    }
}
