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
pub fn check_optimization(model: &CheckedModel, config: &Value) -> Result<Value, Problem> {
    let field = "optimization_config";
    let Some(given) = config.as_object() else {
        return Err(Problem::new(field, "must be an object"));
    };
    let mut request = Map::new();
    for (k, v) in given {
        let k = match k.as_str() {
            "enabled" => continue,
            "metric" => "optimization_metric",
            "search_type" => "method",
            other => other,
        };
        request.insert(k.to_owned(), v.clone());
    }
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
            Problem::new(field, e.into_inner().to_string())
        })?;
    request
        .check()
        .map_err(|e| problem("optimization_config.", e))?;
    serde_json::to_value(&request).map_err(|e| Problem::new(field, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn the_description_gives_the_epochs_and_sample_sizes_this_platform_takes() {
        let vars = [
            ("MIN_EPOCHS", "20"),
            ("DEFAULT_EPOCHS", "60"),
            ("MAX_EPOCHS", "90"),
            ("MIN_SAMPLE_SIZE", "5"),
        ];
        let vars = vars.map(|(k, v)| (k.to_owned(), v.to_owned())).into();
        let d = describe(&Settings::from_map(&vars).unwrap());
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
        let r = check_optimization(
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
        let field = |c: Value| check_optimization(&m, &c).unwrap_err().field;
        assert_eq!(field(json!({"n_trials": 0})), "optimization_config");
        assert_eq!(
            field(json!({"method": "annealing"})),
            "optimization_config.method"
        );
        assert_eq!(field(json!("bayesian")), "optimization_config");
        let e = check_optimization(&m, &json!({"search_space": {"pac": [1, 2]}})).unwrap_err();
        assert!(e.message.contains("pac"), "{e:?}");
    }
}
