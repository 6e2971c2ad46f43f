//! What the engine's end-to-end tests share: tables from columns, and models by their
//! epochs and batch size.

mod table;

pub use table::table_of;

use serde_json::json;
use synth_engine::ModelParams;

/// The model `name` (as in the JSON's `"model"`) for `epochs` of `batch_size` rows, with
/// defaults otherwise.
pub fn model(name: &str, epochs: usize, batch_size: usize) -> ModelParams {
    let params = json!({"epochs": epochs, "batch_size": batch_size});
    ModelParams::parse(name, params.as_object().unwrap()).unwrap()
}
