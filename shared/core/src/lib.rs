//! Synth's domain core: configuration, the response envelope, errors, and the ports —
//! the traits through which every piece of state flows (records, objects, queue, topic,
//! job runner). No AWS, no HTTP framework, no ML: adapters live in `synth-aws` and
//! `synth-embedded` and implement these traits.

pub mod accounts;
pub mod config;
pub mod datasets;
pub mod dispatch;
pub mod error;
pub mod generation;
pub mod notifications;
pub mod ports;
pub mod service;
pub mod stats;

pub use config::{ConfigError, DevicePreference, Environment, Settings};
pub use error::PortError;
pub use ports::{
    Backends, Checked, Paged,
    jobs::{JobRunner, JobSpec, JobState, JobStatus},
    objects::{ObjectBody, ObjectMeta, ObjectStore, PresignedRequest},
    push::{Delivery, NoPush, Push, PushMessage},
    queue::{Queue, QueueMessage},
    records::{Condition, Index, Item, Key, Page, Query, RecordStore, SortKey, TxOp, Update},
    topic::Topic,
};
pub use service::{RequestContext, ServiceError, ServiceResult};

/// The version of the platform, reported by `/health` and the CLI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
