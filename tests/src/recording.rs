//! A record store that keeps every item an update or a transaction wrote, in order, so a
//! test can follow a record through each state it was written in — which a client polling the API may miss
//! between two reads — and every call made of it, so a test can tell what a route reads.
//! Everything passes through unchanged.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use synth_core::error::PortResult;
use synth_core::{Condition, Item, Key, Page, Query, RecordStore, TxOp, Update};

/// One call made of the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Get(Key),
    Put(Key),
    Update(Key),
    Delete(Key),
    Query(Query),
    Transact(Vec<Key>),
}

/// Wraps a store; [`Recording::written`] lists what its updates and transactions wrote,
/// [`Recording::calls`] every call.
pub struct Recording {
    inner: Arc<dyn RecordStore>,
    written: Mutex<Vec<Item>>,
    calls: Mutex<Vec<Call>>,
}

impl Recording {
    pub fn new(inner: Arc<dyn RecordStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            written: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// Every call made so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("recording lock").clone()
    }

    fn log(&self, call: Call) {
        self.calls.lock().expect("recording lock").push(call);
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
        self.log(Call::Get(key.clone()));
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        self.log(Call::Put(item.key()));
        self.inner.put(item, condition).await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        self.log(Call::Update(key.clone()));
        let item = self.inner.update(key, update, condition).await?;
        self.written
            .lock()
            .expect("recording lock")
            .push(item.clone());
        Ok(item)
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        self.log(Call::Delete(key.clone()));
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: &Query) -> PortResult<Page> {
        self.log(Call::Query(query.clone()));
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let written: Vec<Key> = ops
            .iter()
            .filter(|op| matches!(op, TxOp::Put { .. } | TxOp::Update { .. }))
            .map(TxOp::key)
            .collect();
        self.log(Call::Transact(ops.iter().map(TxOp::key).collect()));
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
