//! The records port on SQLite: one table of JSON documents keyed like DynamoDB.
//!
//! Every write is one `BEGIN IMMEDIATE` transaction that reads the current item, checks the
//! condition with core's `Condition::holds`, applies core's `Update::apply` and writes, so
//! conditional writes are atomic exactly as DynamoDB's are. Requests reach it through the
//! checking layer (`synth_core::Checked`), which refuses what breaks the port's rules.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde_json::{Map, Value};
use synth_core::error::PortResult;
use synth_core::ports::records::Cursor;
use synth_core::{
    Condition, Index, Item, Key, Page, PortError, Query, RecordStore, SortKey, TxOp, Update,
};

use crate::db::{Database, sql_error};

/// A `RecordStore` in the embedded database.
#[derive(Clone, Debug)]
pub struct SqliteRecords {
    db: Database,
}

impl SqliteRecords {
    /// Records in `db` (the `items` table).
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    /// Delete every item whose `expires_at` (seconds since the epoch) is at or before `now`:
    /// what DynamoDB's time-to-live on that attribute does on AWS. Returns how many went.
    pub async fn purge_expired(&self, now: i64) -> PortResult<usize> {
        self.db
            .call(move |c| {
                c.execute(
                    "DELETE FROM items WHERE json_type(doc, '$.expires_at') = 'integer'
                     AND json_extract(doc, '$.expires_at') <= ?1",
                    params![now],
                )
                .map_err(sql_error)
            })
            .await
    }
}

fn read(conn: &Connection, key: &Key) -> PortResult<Option<Item>> {
    let doc: Option<String> = conn
        .query_row(
            "SELECT doc FROM items WHERE pk = ?1 AND sk = ?2",
            params![key.pk, key.sk],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_error)?;
    doc.map(|d| decode(&d)).transpose()
}

fn decode(doc: &str) -> PortResult<Item> {
    serde_json::from_str::<Map<String, Value>>(doc)
        .map(Item)
        .map_err(|e| PortError::Backend(format!("stored item does not decode: {e}")))
}

fn write(tx: &Transaction<'_>, item: &Item) -> PortResult<()> {
    let key = item.key();
    let g1 = item.index_key(Index::Gsi1);
    let g2 = item.index_key(Index::Gsi2);
    let doc = serde_json::to_string(&item.0).map_err(|e| PortError::Backend(e.to_string()))?;
    tx.execute(
        "INSERT OR REPLACE INTO items (pk, sk, gsi1pk, gsi1sk, gsi2pk, gsi2sk, doc)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            key.pk,
            key.sk,
            g1.as_ref().map(|k| &k.0),
            g1.as_ref().map(|k| &k.1),
            g2.as_ref().map(|k| &k.0),
            g2.as_ref().map(|k| &k.1),
            doc
        ],
    )
    .map_err(sql_error)?;
    Ok(())
}

fn remove(tx: &Transaction<'_>, key: &Key) -> PortResult<()> {
    tx.execute(
        "DELETE FROM items WHERE pk = ?1 AND sk = ?2",
        params![key.pk, key.sk],
    )
    .map_err(sql_error)?;
    Ok(())
}

fn begin(conn: &mut Connection) -> PortResult<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_error)
}

fn check(condition: Option<&Condition>, current: Option<&Item>) -> PortResult<()> {
    match condition {
        Some(c) if !c.holds(current) => Err(PortError::ConditionFailed),
        _ => Ok(()),
    }
}

#[async_trait]
impl RecordStore for SqliteRecords {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        let key = key.clone();
        self.db.call(move |c| read(c, &key)).await
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        self.db
            .call(move |c| {
                let tx = begin(c)?;
                let current = read(&tx, &item.key())?;
                check(condition.as_ref(), current.as_ref())?;
                write(&tx, &item)?;
                tx.commit().map_err(sql_error)
            })
            .await
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        let key = key.clone();
        self.db
            .call(move |c| {
                let tx = begin(c)?;
                let current = read(&tx, &key)?;
                check(condition.as_ref(), current.as_ref())?;
                let next = update.apply(&key, current)?;
                write(&tx, &next)?;
                tx.commit().map_err(sql_error)?;
                Ok(next)
            })
            .await
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        let key = key.clone();
        self.db
            .call(move |c| {
                let tx = begin(c)?;
                if condition.is_some() {
                    let current = read(&tx, &key)?;
                    check(condition.as_ref(), current.as_ref())?;
                }
                remove(&tx, &key)?;
                tx.commit().map_err(sql_error)
            })
            .await
    }

    async fn query(&self, query: &Query) -> PortResult<Page> {
        let cursor = query.decode_cursor()?;
        let query = query.clone();
        self.db.call(move |c| run_query(c, &query, cursor)).await
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        self.db
            .call(move |c| {
                let tx = begin(c)?;
                // Read and judge everything before writing anything.
                let mut current = Vec::with_capacity(ops.len());
                let mut failed = Vec::new();
                for (i, op) in ops.iter().enumerate() {
                    let item = read(&tx, &op.key())?;
                    if op
                        .condition()
                        .is_some_and(|cond| !cond.holds(item.as_ref()))
                    {
                        failed.push(i);
                    }
                    current.push(item);
                }
                if !failed.is_empty() {
                    return Err(PortError::TransactionCanceled { failed });
                }
                for (op, item) in ops.into_iter().zip(current) {
                    match op {
                        TxOp::Put { item, .. } => write(&tx, &item)?,
                        TxOp::Update { key, update, .. } => write(&tx, &update.apply(&key, item)?)?,
                        TxOp::Delete { key, .. } => remove(&tx, &key)?,
                        TxOp::Check { .. } => {}
                    }
                }
                tx.commit().map_err(sql_error)
            })
            .await
    }

    async fn health(&self) -> PortResult<()> {
        self.db.health().await
    }
}

/// The smallest string greater than every string starting with `prefix` (byte order, which
/// for UTF-8 is code point order), or `None` when no such string exists.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 {
            0xD7FF => Some('\u{E000}'),
            c => char::from_u32(c + 1),
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn run_query(conn: &Connection, q: &Query, cursor: Option<Cursor>) -> PortResult<Page> {
    let (pk_col, sk_col) = q.index.attrs();
    // Order within a partition: (index sort key, pk, sk); on the table pk is fixed.
    let order_cols: &[&str] = match q.index {
        Index::Primary => &["sk"],
        _ => &[sk_col, "pk", "sk"],
    };
    let mut sql = format!("SELECT doc FROM items WHERE {pk_col} = ?");
    let mut args: Vec<String> = vec![q.pk.clone()];
    let mut cond = |op: &str, v: &str| {
        sql.push_str(&format!(" AND {sk_col} {op} ?"));
        args.push(v.to_owned());
    };
    match &q.sk {
        SortKey::Any => {}
        SortKey::Eq(v) => cond("=", v),
        SortKey::BeginsWith(p) => {
            cond(">=", p);
            if let Some(upper) = prefix_upper_bound(p) {
                cond("<", &upper);
            }
        }
        SortKey::Between(a, b) => {
            cond(">=", a);
            cond("<=", b);
        }
        SortKey::Lt(v) => cond("<", v),
        SortKey::Le(v) => cond("<=", v),
        SortKey::Gt(v) => cond(">", v),
        SortKey::Ge(v) => cond(">=", v),
    }
    if let Some(c) = &cursor {
        let (isk, pk, sk) = c.position(q.index);
        let op = if q.forward { ">" } else { "<" };
        if q.index == Index::Primary {
            sql.push_str(&format!(" AND sk {op} ?"));
            args.push(sk);
        } else {
            sql.push_str(&format!(" AND ({sk_col}, pk, sk) {op} (?, ?, ?)"));
            args.extend([isk, pk, sk]);
        }
    }
    let dir = if q.forward { "ASC" } else { "DESC" };
    let order: Vec<String> = order_cols.iter().map(|c| format!("{c} {dir}")).collect();
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {}",
        order.join(", "),
        q.limit + 1
    ));

    let mut stmt = conn.prepare_cached(&sql).map_err(sql_error)?;
    let docs = stmt
        .query_map(rusqlite::params_from_iter(args.iter()), |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql_error)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(sql_error)?;
    let mut items = Vec::with_capacity(docs.len());
    for doc in docs {
        let item = decode(&doc)?;
        // The SQL above is the filter; this is core's definition, kept as a guard.
        let in_range = item
            .index_key(q.index)
            .is_some_and(|(_, isk)| q.sk.matches(&isk));
        if in_range {
            items.push(item);
        }
    }
    Ok(Page::of_overfetched(items, q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds_cover_exactly_the_prefixed_strings() {
        assert_eq!(prefix_upper_bound("ab"), Some("ac".into()));
        assert_eq!(prefix_upper_bound("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_upper_bound("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound(""), None);
    }

    async fn store() -> (tempfile::TempDir, SqliteRecords) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(&dir.path().join("t.db")).unwrap();
        (dir, SqliteRecords::new(db))
    }

    #[tokio::test]
    async fn the_purge_deletes_exactly_the_expired_items() {
        let (_d, s) = store().await;
        let items = [
            ("past", Some(serde_json::json!(100))),
            ("now", Some(serde_json::json!(200))),
            ("future", Some(serde_json::json!(300))),
            ("text", Some(serde_json::json!("100"))),
            ("none", None),
        ];
        for (sk, expires) in &items {
            let mut it = Item::new(&Key::new("u", *sk));
            if let Some(e) = expires {
                it = it.with("expires_at", e.clone());
            }
            s.put(it, None).await.unwrap();
        }
        assert_eq!(s.purge_expired(200).await.unwrap(), 2);
        let left = s
            .query(&Query::partition(Index::Primary, "u"))
            .await
            .unwrap();
        let mut sks: Vec<String> = left.items.iter().map(|i| i.key().sk).collect();
        sks.sort();
        assert_eq!(
            sks,
            ["future", "none", "text"],
            "only numbers are times (as DynamoDB's TTL)"
        );
        assert_eq!(s.purge_expired(200).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn begins_with_pages_both_ways_in_byte_order() {
        let (_d, s) = store().await;
        // Byte order puts "Z" before "a" and "é" after "z"; "p#" + 0x10FFFF is still in range.
        for sk in [
            "p#Z",
            "p#a",
            "p#z",
            "p#é",
            "p#\u{10FFFF}",
            "p",
            "q#a",
            "o#z",
        ] {
            s.put(Item::new(&Key::new("u", sk)), None).await.unwrap();
        }
        let want = ["p#Z", "p#a", "p#z", "p#é", "p#\u{10FFFF}"];
        for forward in [true, false] {
            let mut q = Query::partition(Index::Primary, "u")
                .sk(SortKey::BeginsWith("p#".into()))
                .limit(2);
            q.forward = forward;
            let mut got = Vec::new();
            loop {
                let page = s.query(&q).await.unwrap();
                got.extend(page.items.iter().map(|i| i.key().sk));
                match page.next {
                    Some(n) => q.cursor = Some(n),
                    None => break,
                }
            }
            let mut expect: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            if !forward {
                expect.reverse();
            }
            assert_eq!(got, expect, "forward={forward}");
        }
    }

    #[tokio::test]
    async fn index_ties_are_broken_by_table_key_and_updates_move_items() {
        let (_d, s) = store().await;
        for pk in ["b", "a", "c"] {
            let it = Item::new(&Key::new(pk, "x")).with_gsi1("status#ready", "same");
            s.put(it, None).await.unwrap();
        }
        let q = Query::partition(Index::Gsi1, "status#ready").limit(2);
        let p1 = s.query(&q).await.unwrap();
        let keys: Vec<_> = p1.items.iter().map(|i| i.key().pk).collect();
        assert_eq!(keys, ["a", "b"]);
        let p2 = s.query(&q.clone().after(p1.next)).await.unwrap();
        assert_eq!(p2.items.len(), 1);
        assert_eq!(p2.items[0].key().pk, "c");
        assert_eq!(p2.next, None);
        // Removing the index attributes takes the item out of the index.
        s.update(
            &Key::new("a", "x"),
            Update::default().remove("gsi1pk").remove("gsi1sk"),
            None,
        )
        .await
        .unwrap();
        let all = s.query(&q.clone().limit(10)).await.unwrap();
        assert_eq!(all.items.len(), 2);
    }

    #[tokio::test]
    async fn failed_transaction_writes_nothing_and_names_the_failures() {
        let (_d, s) = store().await;
        let k1 = Key::new("a", "1");
        s.put(Item::new(&k1).with("v", 1), None).await.unwrap();
        let ops = vec![
            TxOp::Update {
                key: k1.clone(),
                update: Update::default().add("v", 1),
                condition: Some(Condition::eq("v", 1)),
            },
            TxOp::Put {
                item: Item::new(&Key::new("a", "2")),
                condition: Some(Condition::Exists),
            },
            TxOp::Check {
                key: Key::new("a", "3"),
                condition: Condition::Exists,
            },
        ];
        assert_eq!(
            s.transact(ops).await,
            Err(PortError::TransactionCanceled { failed: vec![1, 2] })
        );
        assert_eq!(s.get(&k1).await.unwrap().unwrap().i64("v"), Some(1));
        assert_eq!(s.get(&Key::new("a", "2")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn concurrent_conditional_increments_never_lose_a_write() {
        let (_d, s) = store().await;
        let k = Key::new("c", "n");
        s.put(Item::new(&k).with("n", 0), None).await.unwrap();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            let k = k.clone();
            tasks.push(tokio::spawn(async move {
                let mut wins = 0;
                for _ in 0..10 {
                    let cur = s.get(&k).await.unwrap().unwrap().i64("n").unwrap();
                    let r = s
                        .update(
                            &k,
                            Update::default().set("n", cur + 1),
                            Some(Condition::eq("n", cur)),
                        )
                        .await;
                    match r {
                        Ok(_) => wins += 1,
                        Err(PortError::ConditionFailed) => {}
                        Err(e) => panic!("{e}"),
                    }
                }
                wins
            }));
        }
        let mut wins = 0;
        for t in tasks {
            wins += t.await.unwrap();
        }
        assert_eq!(s.get(&k).await.unwrap().unwrap().i64("n"), Some(wins));
    }
}
