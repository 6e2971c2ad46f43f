//! What every handler is given.

use std::sync::Arc;

use synth_core::accounts::Accounts;
use synth_core::datasets::Datasets;
use synth_core::generation::Generations;
use synth_core::notifications::Notifications;
use synth_core::stats::Stats;
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
    pub notifications: Notifications,
    pub stats: Stats,
    /// When each route last alerted the administrators of a slow call.
    pub slow_alerts: crate::metrics::SlowAlerts,
}

impl AppState {
    pub fn new(settings: Settings, backends: Backends, mode: &'static str) -> Self {
        let accounts = Accounts::new(
            backends.records.clone(),
            backends.objects.clone(),
            backends.topic.clone(),
            &settings,
        )
        .with_push(backends.push.clone());
        let datasets = Datasets::new(
            backends.records.clone(),
            backends.objects.clone(),
            &settings,
        )
        .with_topic(backends.topic.clone());
        let notifications =
            Notifications::new(backends.records.clone(), backends.push.clone(), &settings);
        let stats = Stats::new(backends.records.clone(), backends.queue.clone());
        let settings = Arc::new(settings);
        let generations = Generations::new(&backends, datasets.clone(), settings.clone());
        Self {
            settings,
            backends,
            mode,
            datasets,
            accounts,
            generations,
            notifications,
            stats,
            slow_alerts: Default::default(),
        }
    }
}
