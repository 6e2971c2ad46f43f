//! The models a request may name, checked with `synth-models` (light: no engine), so a
//! request the trainer would refuse is refused here, before anything is stored.

use serde_json::{Map, Value, json};
use synth_models::{ModelParams, OptimizeRequest, ParamError};

use super::Problem;
use crate::Settings;

/// One model's parameters, checked, with every default filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedModel {
    /// `ctgan`, `tvae`, …
    pub model_type: String,
    /// Every parameter of the model (the given ones and the defaults).
    pub parameters: Map<String, Value>,
    pub epochs: u64,
    /// Rows per training step.
    pub batch_size: u64,
}

/// Every model with each parameter's default, bounds and description, as this platform
/// applies them: `epochs` defaults to DEFAULT_EPOCHS within MIN_EPOCHS..=MAX_EPOCHS, whatever
/// the model's own default; and the `sample_size` a request may ask for.
pub fn describe(settings: &Settings) -> Value {
    let mut all = synth_models::describe();
    let models = all["models"].as_array_mut().into_iter().flatten();
    let parameters = models.flat_map(|m| m["parameters"].as_array_mut().into_iter().flatten());
    for p in parameters.filter(|p| p["name"] == "epochs") {
        p["default"] = settings.default_epochs.into();
        p["minimum"] = settings.min_epochs.into();
        p["maximum"] = settings.max_epochs.into();
    }
    all["sample_size"] = json!({
        "default": settings.default_sample_size,
        "minimum": settings.min_sample_size,
        "maximum": settings.max_sample_size,
    });
    all
}

fn problem(prefix: &str, e: ParamError) -> Problem {
    match e {
        ParamError::Invalid { name, message } => {
            let field = if name == "model_type" || name == "parameters" {
                name.to_owned()
            } else {
                format!("{prefix}{name}")
            };
            Problem::new(field, message)
        }
        ParamError::Search(m) => Problem::new(prefix.trim_end_matches('.'), m),
        ParamError::SearchField { field, message } => {
            Problem::new(format!("{prefix}{field}"), message)
        }
    }
}

/// Check a model's parameters: an unknown model or parameter, a wrong type, a value out of
/// bounds or inconsistent with another (`batch_size` not a multiple of `pac`) is a problem
/// naming its field (`parameters.{name}`, or `model_type`).
pub fn check(model_type: &str, parameters: &Map<String, Value>) -> Result<CheckedModel, Problem> {
    let params = ModelParams::parse(model_type, parameters)
        .and_then(|p| p.validate().map(|()| p))
        .map_err(|e| problem("parameters.", e))?;
    let mut parameters = match serde_json::to_value(&params) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    parameters.remove("model");
    Ok(CheckedModel {
        model_type: params.model_name().to_owned(),
        parameters,
        epochs: params.epochs() as u64,
        batch_size: params.batch_size() as u64,
    })
}

/// Check a hyperparameter search for a model, in the seed platform's shape (`{enabled,
/// method, n_trials, metric, search_space, acquisition_function, random_state, …}`), and
/// return it as the trainer runs it: a whole [`OptimizeRequest`] whose fixed parameters
/// are the model's.
pub fn check_optimization(
    settings: &Settings,
    model: &CheckedModel,
    config: &Value,
) -> Result<Value, Problem> {
    let field = "optimization_config";
    let Some(given) = config.as_object() else {
        return Err(Problem::new(field, "must be an object"));
    };
    // The seed platform's names for two of the engine's, kept to name a field at fault.
    let renamed = [("metric", "optimization_metric"), ("search_type", "method")];
    let mut request = Map::new();
    for (k, v) in given.iter().filter(|(k, _)| *k != "enabled") {
        let k = renamed
            .iter()
            .find(|(seed, _)| seed == k)
            .map_or(k.as_str(), |(_, engine)| engine);
        request.insert(k.to_owned(), v.clone());
    }
    let seed_name = |mut p: Problem| {
        let given_as = renamed.iter().find(|(seed, engine)| {
            given.contains_key(*seed) && p.field == format!("{field}.{engine}")
        });
        if let Some((seed, _)) = given_as {
            p.field = format!("{field}.{seed}");
        }
        p
    };
    let epochs = [settings.min_epochs, settings.max_epochs];
    request.insert("epoch_bounds".into(), json!(epochs));
    request.insert("model".into(), Value::String(model.model_type.clone()));
    request
        .entry("params")
        .or_insert_with(|| Value::Object(model.parameters.clone()));
    let request: OptimizeRequest = serde_path_to_error::deserialize(Value::Object(request))
        .map_err(|e| {
            let path = e.path().to_string();
            let field = match path.as_str() {
                "." => field.to_owned(),
                path => format!("{field}.{path}"),
            };
            seed_name(Problem::new(field, e.into_inner().to_string()))
        })?;
    request
        .check()
        .map_err(|e| seed_name(problem("optimization_config.", e)))?;
    serde_json::to_value(&request).map_err(|e| Problem::new(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn settings(vars: &[(&str, &str)]) -> Settings {
        let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        Settings::from_map(&vars.collect()).unwrap()
    }

    #[test]
    fn the_description_gives_the_epochs_and_sample_sizes_this_platform_takes() {
        let d = describe(&settings(&[
            ("MIN_EPOCHS", "20"),
            ("DEFAULT_EPOCHS", "60"),
            ("MAX_EPOCHS", "90"),
            ("MIN_SAMPLE_SIZE", "5"),
        ]));
        let models = d["models"].as_array().unwrap();
        assert_eq!(models.len(), 3);
        for m in models {
            let parameters = m["parameters"].as_array().unwrap();
            let epochs = parameters.iter().find(|p| p["name"] == "epochs").unwrap();
            assert_eq!(
                (&epochs["default"], &epochs["minimum"], &epochs["maximum"]),
                (&json!(60), &json!(20), &json!(90)),
                "{m}"
            );
            // The model's other parameters keep their own defaults.
            let batch = parameters
                .iter()
                .find(|p| p["name"] == "batch_size")
                .unwrap();
            assert!(batch["default"].as_u64().is_some_and(|b| b > 1), "{m}");
        }
        assert_eq!(
            d["sample_size"],
            json!({"default": 1000, "minimum": 5, "maximum": 100_000})
        );
    }

    #[test]
    fn models_are_checked_with_their_fields_named() {
        let m = check("CTGAN", &obj(json!({"epochs": 5}))).unwrap();
        assert_eq!(
            (m.model_type.as_str(), m.epochs, m.batch_size),
            ("ctgan", 5, 500)
        );
        assert_eq!(m.parameters["pac"], 10);
        let field = |t: &str, p: Value| check(t, &obj(p)).unwrap_err().field;
        assert_eq!(field("gan", json!({})), "model_type");
        assert_eq!(
            field("ctgan", json!({"batch_size": 505})),
            "parameters.batch_size"
        );
        assert_eq!(
            field("ctgan", json!({"epochs": "five"})),
            "parameters.epochs"
        );
        assert_eq!(field("tvae", json!({"pac": 10})), "parameters.pac");
        assert_eq!(
            field("tvae", json!({"loss_factor": -1})),
            "parameters.loss_factor"
        );
    }

    #[test]
    fn a_search_in_the_seed_shape_becomes_the_trainers_request() {
        let m = check("tvae", &obj(json!({"epochs": 3}))).unwrap();
        let s = settings(&[
            ("MIN_EPOCHS", "1"),
            ("DEFAULT_EPOCHS", "60"),
            ("MAX_EPOCHS", "90"),
        ]);
        let r = check_optimization(
            &s,
            &m,
            &json!({"enabled": true, "method": "random", "n_trials": 2, "metric": "column_shapes",
                    "search_space": {"epochs": [1, 4]}}),
        )
        .unwrap();
        let r: OptimizeRequest = serde_json::from_value(r).unwrap();
        assert_eq!((r.model.as_str(), r.n_trials), ("tvae", 2));
        assert_eq!(
            r.optimization_metric,
            synth_models::Metric::ColumnShapes.into()
        );
        assert_eq!(r.params["epochs"], 3);
        assert_eq!(r.epoch_bounds, Some([1, 90]));
        let field = |c: Value| check_optimization(&s, &m, &c).unwrap_err().field;
        assert_eq!(field(json!("bayesian")), "optimization_config");
        for (config, at) in [
            (json!({"n_trials": 0}), "n_trials"),
            (json!({"method": "annealing"}), "method"),
            (json!({"search_type": "annealing"}), "search_type"),
            (json!({"timeout": -1}), "timeout"),
            (json!({"metric": "ml_efficacy"}), "metric"),
            (
                json!({"optimization_metric": "ml_efficacy"}),
                "optimization_metric",
            ),
            (json!({"metric": 5}), "metric"),
            (json!({"search_space": {}}), "search_space"),
            (json!({"search_space": {"pac": [1, 2]}}), "search_space.pac"),
            // Past the platform's epochs, or a model this size cannot train.
            (
                json!({"search_space": {"epochs": [1, 20000]}}),
                "search_space.epochs",
            ),
            (
                json!({"search_space": {"epochs": [0, 5]}}),
                "search_space.epochs",
            ),
            (
                json!({"search_space": {"epochs": [5, 50, 500]}}),
                "search_space.epochs",
            ),
            (
                json!({"search_space": {"embedding_dim": [8, 1_000_000_000]}}),
                "search_space.embedding_dim",
            ),
            (
                json!({"search_space": {"batch_size": [10, 1_000_000_000]}}),
                "search_space.batch_size",
            ),
        ] {
            assert_eq!(field(config), format!("optimization_config.{at}"));
        }
    }

    #[test]
    fn the_default_search_space_trains_within_the_platforms_epochs() {
        let m = check("ctgan", &obj(json!({}))).unwrap();
        let s = settings(&[
            ("MIN_EPOCHS", "5"),
            ("DEFAULT_EPOCHS", "20"),
            ("MAX_EPOCHS", "40"),
        ]);
        let r = check_optimization(&s, &m, &json!({"n_trials": 2})).unwrap();
        let r: OptimizeRequest = serde_json::from_value(r).unwrap();
        let space = r.space(&r.base_params().unwrap()).unwrap();
        let epochs = space.dims.iter().find(|d| d.name == "epochs").unwrap();
        assert_eq!(
            serde_json::to_value(&epochs.domain).unwrap(),
            json!({"type": "int", "low": 40, "high": 40})
        );
    }
}
