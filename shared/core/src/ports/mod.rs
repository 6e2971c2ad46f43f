//! The ports: every piece of state goes through these traits.

pub mod jobs;
pub mod objects;
pub mod queue;
pub mod records;
pub mod topic;

use std::sync::Arc;

/// One adapter for each port: what handlers, workers and functions are given.
#[derive(Clone)]
pub struct Backends {
    pub records: Arc<dyn records::RecordStore>,
    pub objects: Arc<dyn objects::ObjectStore>,
    pub queue: Arc<dyn queue::Queue>,
    pub topic: Arc<dyn topic::Topic>,
    pub jobs: Arc<dyn jobs::JobRunner>,
}
