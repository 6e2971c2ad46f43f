//! What every handler is given.

use std::sync::Arc;

use synth_core::accounts::Accounts;
use synth_core::datasets::Datasets;
use synth_core::generation::Generations;
use synth_core::{Backends, Settings};

/// Shared, cheaply cloned application state.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub backends: Backends,
    /// Which deployment serves this state ("embedded" or "aws"), reported by `/health`.
    pub mode: &'static str,
    pub accounts: Accounts,
    pub datasets: Datasets,
    pub generations: Generations,
}

impl AppState {
    pub fn new(settings: Settings, backends: Backends, mode: &'static str) -> Self {
        let accounts = Accounts::new(
            backends.records.clone(),
            backends.objects.clone(),
            backends.topic.clone(),
            &settings,
        );
        let datasets = Datasets::new(
            backends.records.clone(),
            backends.objects.clone(),
            &settings,
        );
        let settings = Arc::new(settings);
        let generations = Generations::new(&backends, datasets.clone(), settings.clone());
        Self {
            settings,
            backends,
            mode,
            datasets,
            accounts,
            generations,
        }
    }
}
