//! The checking layer: the ports' rules on what callers may ask for, applied once, around
//! any adapter.
//!
//! [`Checked`] wraps a record store or an object store, refuses with
//! [`PortError::Invalid`] whatever breaks a rule of the port — record keys, items,
//! conditions, updates, queries and transactions; object keys, content types, deletion
//! prefixes and presign expiries — and hands the rest to the adapter unchanged. So the two
//! adapter families refuse exactly the same requests, and an adapter only translates:
//! it keeps only the limits that are its own (the embedded folder's file-name length, for
//! one). [`crate::Backends::new`] puts the layer in, so every family built through it has
//! it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use super::objects::{
    ObjectBody, ObjectMeta, ObjectStore, PresignedRequest, validate_content_type, validate_expiry,
    validate_key, validate_prefix,
};
use super::records::{
    Condition, Item, Key, Page, Query, RecordStore, TxOp, Update, validate_transaction,
};
use crate::error::PortResult;

/// An adapter behind the checking layer.
#[derive(Debug)]
pub struct Checked<S: ?Sized> {
    inner: Arc<S>,
}

impl<S: ?Sized> Checked<S> {
    /// Put `inner` behind the layer.
    pub fn new(inner: Arc<S>) -> Self {
        Self { inner }
    }

    /// The adapter itself, for what only it offers.
    pub fn inner(&self) -> &Arc<S> {
        &self.inner
    }
}

impl<S: ?Sized> Clone for Checked<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

/// What presigning answers.
type Presigned = PortResult<PresignedRequest>;

fn check_condition(condition: Option<&Condition>) -> PortResult<()> {
    condition.map_or(Ok(()), Condition::validate)
}

#[async_trait]
impl<S: RecordStore + ?Sized> RecordStore for Checked<S> {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        key.validate()?;
        self.inner.get(key).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        item.validate()?;
        check_condition(condition.as_ref())?;
        self.inner.put(item, condition).await
    }

    async fn update(&self, key: &Key, u: Update, c: Option<Condition>) -> PortResult<Item> {
        key.validate()?;
        u.validate()?;
        check_condition(c.as_ref())?;
        self.inner.update(key, u, c).await
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        key.validate()?;
        check_condition(condition.as_ref())?;
        self.inner.delete(key, condition).await
    }

    async fn query(&self, query: &Query) -> PortResult<Page> {
        query.validate()?;
        self.inner.query(query).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        validate_transaction(&ops)?;
        self.inner.transact(ops).await
    }

    async fn health(&self) -> PortResult<()> {
        self.inner.health().await
    }
}

#[async_trait]
impl<S: ObjectStore + ?Sized> ObjectStore for Checked<S> {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> PortResult<ObjectMeta> {
        validate_key(key)?;
        validate_content_type(content_type)?;
        self.inner.put(key, body, content_type).await
    }

    async fn put_file(&self, key: &str, path: &Path, content_type: &str) -> PortResult<ObjectMeta> {
        validate_key(key)?;
        validate_content_type(content_type)?;
        self.inner.put_file(key, path, content_type).await
    }

    async fn get(&self, key: &str) -> PortResult<ObjectBody> {
        validate_key(key)?;
        self.inner.get(key).await
    }

    async fn head(&self, key: &str) -> PortResult<Option<ObjectMeta>> {
        validate_key(key)?;
        self.inner.head(key).await
    }

    async fn delete(&self, key: &str) -> PortResult<()> {
        validate_key(key)?;
        self.inner.delete(key).await
    }

    /// Any prefix lists (the empty one lists everything): listing changes nothing.
    async fn list(&self, prefix: &str) -> PortResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }

    async fn delete_prefix(&self, prefix: &str) -> PortResult<u64> {
        validate_prefix(prefix)?;
        self.inner.delete_prefix(prefix).await
    }

    async fn presign_get(&self, key: &str, ttl: Duration) -> Presigned {
        validate_key(key)?;
        validate_expiry(ttl)?;
        self.inner.presign_get(key, ttl).await
    }

    async fn presign_put(&self, key: &str, ct: &str, len: u64, ttl: Duration) -> Presigned {
        validate_key(key)?;
        validate_content_type(ct)?;
        validate_expiry(ttl)?;
        self.inner.presign_put(key, ct, len, ttl).await
    }

    async fn health(&self) -> PortResult<()> {
        self.inner.health().await
    }
}

#[cfg(test)]
mod tests {
    //! The layer refuses before the adapter is reached: the adapter here fails every call
    //! with `Backend`, so an `Invalid` can only come from the layer, and a `Backend` means
    //! the request was let through.

    use super::*;
    use crate::PortError;
    use crate::ports::records::{Cmp, GSI1_PK, GSI1_SK, Index, MAX_ITEM_BYTES};
    use serde_json::json;

    struct Unreachable;

    fn reached<T>() -> PortResult<T> {
        Err(PortError::Backend("reached the adapter".into()))
    }

    #[async_trait]
    impl RecordStore for Unreachable {
        async fn get(&self, _: &Key) -> PortResult<Option<Item>> {
            reached()
        }
        async fn put(&self, _: Item, _: Option<Condition>) -> PortResult<()> {
            reached()
        }
        async fn update(&self, _: &Key, _: Update, _: Option<Condition>) -> PortResult<Item> {
            reached()
        }
        async fn delete(&self, _: &Key, _: Option<Condition>) -> PortResult<()> {
            reached()
        }
        async fn query(&self, _: &Query) -> PortResult<Page> {
            reached()
        }
        async fn transact(&self, _: Vec<TxOp>) -> PortResult<()> {
            reached()
        }
        async fn health(&self) -> PortResult<()> {
            reached()
        }
    }

    #[async_trait]
    impl ObjectStore for Unreachable {
        async fn put(&self, _: &str, _: Bytes, _: &str) -> PortResult<ObjectMeta> {
            reached()
        }
        async fn put_file(&self, _: &str, _: &Path, _: &str) -> PortResult<ObjectMeta> {
            reached()
        }
        async fn get(&self, _: &str) -> PortResult<ObjectBody> {
            reached()
        }
        async fn head(&self, _: &str) -> PortResult<Option<ObjectMeta>> {
            reached()
        }
        async fn delete(&self, _: &str) -> PortResult<()> {
            reached()
        }
        async fn list(&self, _: &str) -> PortResult<Vec<ObjectMeta>> {
            reached()
        }
        async fn delete_prefix(&self, _: &str) -> PortResult<u64> {
            reached()
        }
        async fn presign_get(&self, _: &str, _: Duration) -> Presigned {
            reached()
        }
        async fn presign_put(&self, _: &str, _: &str, _: u64, _: Duration) -> Presigned {
            reached()
        }
        async fn health(&self) -> PortResult<()> {
            reached()
        }
    }

    fn layer() -> Checked<Unreachable> {
        Checked::new(Arc::new(Unreachable))
    }

    fn refused<T>(r: PortResult<T>) -> bool {
        matches!(r, Err(PortError::Invalid(_)))
    }

    fn passed<T>(r: PortResult<T>) -> bool {
        matches!(r, Err(PortError::Backend(_)))
    }

    #[tokio::test]
    async fn records_are_checked_before_the_adapter() {
        let s: &dyn RecordStore = &layer();
        let ok = Key::new("a", "b");
        let long = Key::new("a", "x".repeat(1025));
        assert!(passed(s.get(&ok).await));
        assert!(refused(s.get(&Key::new("", "b")).await));
        assert!(refused(s.get(&long).await));
        assert!(passed(s.put(Item::new(&ok), None).await));
        let half_index = Item::new(&ok).with(GSI1_PK, "p");
        assert!(refused(s.put(half_index, None).await));
        let big = Item::new(&ok).with("blob", "x".repeat(MAX_ITEM_BYTES));
        assert!(refused(s.put(big, None).await));
        let bad_cond = Condition::eq("bad-name", 1);
        assert!(refused(s.put(Item::new(&ok), Some(bad_cond.clone())).await));
        assert!(refused(s.delete(&ok, Some(bad_cond)).await));
        let list_cmp = Condition::Compare("a".into(), Cmp::Lt, json!([]));
        assert!(refused(s.delete(&ok, Some(list_cmp)).await));
        assert!(refused(s.delete(&ok, Some(Condition::And(vec![]))).await));
        assert!(passed(s.delete(&ok, Some(Condition::Exists)).await));
    }

    #[tokio::test]
    async fn updates_queries_and_transactions_are_checked() {
        let s: &dyn RecordStore = &layer();
        let k = Key::new("a", "b");
        let update = |u: Update| s.update(&k, u, None);
        assert!(passed(update(Update::default().set("x", 1)).await));
        assert!(refused(update(Update::default()).await));
        assert!(refused(update(Update::default().set("pk", "z")).await));
        assert!(refused(
            update(Update::default().set(GSI1_PK, 3).set(GSI1_SK, "s")).await
        ));
        assert!(refused(
            update(Update::default().set(GSI1_PK, "").set(GSI1_SK, "s")).await
        ));
        assert!(refused(update(Update::default().add(GSI1_SK, 1)).await));
        assert!(refused(
            update(Update::default().set(GSI1_PK, "p").remove(GSI1_SK)).await
        ));
        let q = Query::partition(Index::Primary, "p");
        assert!(passed(s.query(&q).await));
        assert!(refused(s.query(&q.clone().limit(0)).await));
        assert!(refused(s.query(&Query::partition(Index::Gsi1, "")).await));
        assert!(refused(s.transact(vec![]).await));
        let check = TxOp::Check {
            key: k.clone(),
            condition: Condition::Exists,
        };
        assert!(passed(s.transact(vec![check.clone()]).await));
        assert!(refused(s.transact(vec![check.clone(), check]).await));
    }

    #[tokio::test]
    async fn objects_are_checked_before_the_adapter() {
        let s: &dyn ObjectStore = &layer();
        let hour = Duration::from_secs(3600);
        assert!(passed(s.put("a/b.csv", Bytes::new(), "text/csv").await));
        for k in [
            "",
            "../x",
            "a/../../x",
            "/etc/passwd",
            "a/",
            ".tmp/x",
            "a/.hidden",
            "a~obj",
        ] {
            assert!(refused(s.put(k, Bytes::new(), "text/plain").await), "{k}");
            assert!(refused(s.get(k).await), "{k}");
            assert!(refused(s.head(k).await), "{k}");
            assert!(refused(s.delete(k).await), "{k}");
            assert!(refused(s.presign_get(k, hour).await), "{k}");
        }
        assert!(refused(s.put("a", Bytes::new(), "").await));
        assert!(refused(s.put("a", Bytes::new(), "text/\ncsv").await));
        assert!(refused(s.put_file("a", Path::new("/x"), "").await));
        assert!(passed(s.presign_get("a", hour).await));
        assert!(refused(s.presign_get("a", Duration::ZERO).await));
        assert!(refused(
            s.presign_get("a", Duration::from_secs(8 * 24 * 3600)).await
        ));
        assert!(refused(s.presign_put("a", "", 1, hour).await));
        assert!(passed(s.presign_put("a", "text/csv", 1, hour).await));
        assert!(passed(s.delete_prefix("users/u1/").await));
        for p in ["", "/", "users", "../"] {
            assert!(refused(s.delete_prefix(p).await), "{p}");
        }
        assert!(passed(s.list("").await), "listing takes any prefix");
    }
}
