//! The ports: every piece of state goes through these traits.

pub mod checked;
pub mod jobs;
pub mod objects;
pub mod push;
pub mod queue;
pub mod records;
pub mod topic;

use std::sync::Arc;

pub use checked::Checked;
pub use records::Paged;

/// One adapter for each port: what handlers, workers and functions are given.
#[derive(Clone)]
pub struct Backends {
    pub records: Arc<dyn records::RecordStore>,
    pub objects: Arc<dyn objects::ObjectStore>,
    pub queue: Arc<dyn queue::Queue>,
    pub topic: Arc<dyn topic::Topic>,
    pub jobs: Arc<dyn jobs::JobRunner>,
    /// Device push; [`push::NoPush`] where no platform application is configured.
    pub push: Arc<dyn push::Push>,
}

impl Backends {
    /// A family's adapters, the record and object stores behind the [`Checked`] layer, so
    /// every family refuses the same requests and no adapter checks them again.
    pub fn new(
        records: Arc<dyn records::RecordStore>,
        objects: Arc<dyn objects::ObjectStore>,
        queue: Arc<dyn queue::Queue>,
        topic: Arc<dyn topic::Topic>,
        jobs: Arc<dyn jobs::JobRunner>,
    ) -> Self {
        Self {
            records: Arc::new(Checked::new(records)),
            objects: Arc::new(Checked::new(objects)),
            queue,
            topic,
            jobs,
            push: Arc::new(push::NoPush),
        }
    }

    /// The same adapters with device push through `push`.
    pub fn with_push(mut self, push: Arc<dyn push::Push>) -> Self {
        self.push = push;
        self
    }
}
