//! A record store that keeps every item an update or a transaction wrote, in order, so a
//! test can follow a record through each state it was written in — which a client polling the API may miss
//! between two reads. Everything else passes through unchanged.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use synth_core::error::PortResult;
use synth_core::{Condition, Item, Key, Page, Query, RecordStore, TxOp, Update};

/// Wraps a store; [`Recording::written`] lists what its updates and transactions wrote.
pub struct Recording {
    inner: Arc<dyn RecordStore>,
    written: Mutex<Vec<Item>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn RecordStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            written: Mutex::new(Vec::new()),
        })
    }

    /// The items written whose attribute `name` is `value`, oldest first.
    pub fn written(&self, name: &str, value: &str) -> Vec<Item> {
        let all = self.written.lock().expect("recording lock");
        all.iter()
            .filter(|i| i.0.get(name).and_then(|v| v.as_str()) == Some(value))
            .cloned()
            .collect()
    }
}

#[async_trait]
impl RecordStore for Recording {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        let item = self.inner.update(key, update, condition).await?;
        self.written
            .lock()
            .expect("recording lock")
            .push(item.clone());
        Ok(item)
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: &Query) -> PortResult<Page> {
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let written: Vec<Key> = ops
            .iter()
            .filter(|op| matches!(op, TxOp::Put { .. } | TxOp::Update { .. }))
            .map(TxOp::key)
            .collect();
        self.inner.transact(ops).await?;
        for key in written {
            if let Some(item) = self.inner.get(&key).await? {
                self.written.lock().expect("recording lock").push(item);
            }
        }
        Ok(())
    }

    async fn health(&self) -> PortResult<()> {
        self.inner.health().await
    }
}
