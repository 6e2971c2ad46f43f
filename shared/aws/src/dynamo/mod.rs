//! The records port on one DynamoDB table (`pk`/`sk`, GSIs `gsi1` and `gsi2`).
//!
//! Requests reach it through the checking layer (`synth_core::Checked`), which refuses what
//! breaks the port's rules for both families alike; this is translation into DynamoDB
//! requests, plus the guard conditions that keep index key pairs whole (see
//! `expr::index_guard`).

mod attr;
mod expr;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, ConditionCheck, Delete, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update as DynUpdate,
};
use synth_core::error::PortResult;
use synth_core::ports::records::{Cursor, PK, SK};
use synth_core::{Condition, Index, Item, Key, Page, PortError, Query, RecordStore, TxOp, Update};

use crate::error::port_error;
use attr::{AttrMap, item_from, to_attrs};
use expr::{Expr, combine, index_guard, normalize_sort_key};

/// A request builder with the table, a condition and the placeholders its expressions use:
/// what the single-item requests and the transaction's operations share.
macro_rules! conditioned {
    ($builder:expr, $table:expr, $e:expr, $condition:expr) => {
        $builder
            .table_name($table)
            .set_condition_expression($condition)
            .set_expression_attribute_names($e.names())
            .set_expression_attribute_values($e.values())
    };
}

/// A [`RecordStore`] on a DynamoDB table laid out as template.yaml's `Table` (string
/// `pk`/`sk`, GSIs `gsi1` and `gsi2` projecting all attributes).
#[derive(Debug, Clone)]
pub struct DynamoRecords {
    client: Client,
    table: String,
}

impl DynamoRecords {
    /// Wrap a client and the table's name.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

fn key_attrs(key: &Key) -> AttrMap {
    AttrMap::from([
        (PK.to_owned(), AttributeValue::S(key.pk.clone())),
        (SK.to_owned(), AttributeValue::S(key.sk.clone())),
    ])
}

/// The `ExclusiveStartKey` a cursor stands for: the table key, plus the index key on an index.
fn start_key(c: &Cursor, index: Index) -> AttrMap {
    let mut k = key_attrs(&Key::new(c.pk.clone(), c.sk.clone()));
    if index != Index::Primary {
        let (p, s) = index.attrs();
        if let (Some(ipk), Some(isk)) = (&c.ipk, &c.isk) {
            k.insert(p.to_owned(), AttributeValue::S(ipk.clone()));
            k.insert(s.to_owned(), AttributeValue::S(isk.clone()));
        }
    }
    k
}

/// A failed guarded write is the caller's lost race only if the caller's own condition
/// failed on the stored item; otherwise our index guard failed and the update is invalid.
fn guarded_failure(user: Option<&Condition>, old: Option<&AttrMap>) -> PortError {
    let old = match old.map(item_from).transpose() {
        Ok(old) => old,
        Err(e) => return e,
    };
    if user.is_none_or(|c| c.holds(old.as_ref())) {
        PortError::Invalid("an index's key attributes must be set together".into())
    } else {
        PortError::ConditionFailed
    }
}

/// The positions a cancelled transaction failed on; moto and DynamoDB both fill
/// `CancellationReasons`, and the message carries the same codes should it ever be empty.
fn failed_positions(reasons: &[CancellationReason], message: Option<&str>) -> Vec<usize> {
    if !reasons.is_empty() {
        return reasons
            .iter()
            .enumerate()
            .filter(|(_, r)| r.code() == Some("ConditionalCheckFailed"))
            .map(|(i, _)| i)
            .collect();
    }
    tracing::warn!(
        ?message,
        "transaction cancelled without reasons; reading the message"
    );
    let codes = message
        .and_then(|m| Some(&m[m.rfind('[')? + 1..m.rfind(']')?]))
        .unwrap_or_default();
    codes
        .split(',')
        .enumerate()
        .filter(|(_, c)| c.trim() == "ConditionalCheckFailed")
        .map(|(i, _)| i)
        .collect()
}

#[async_trait]
impl RecordStore for DynamoRecords {
    async fn get(&self, key: &Key) -> PortResult<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_attrs(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| port_error("GetItem", e))?;
        out.item.as_ref().map(item_from).transpose()
    }

    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()> {
        let mut e = Expr::default();
        let cond = condition.as_ref().map(|c| e.condition(c));
        conditioned!(self.client.put_item(), &self.table, e, cond)
            .set_item(Some(to_attrs(&item.0)))
            .send()
            .await
            .map_err(|e| port_error("PutItem", e))?;
        Ok(())
    }

    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item> {
        let guard = index_guard(&update);
        let mut e = Expr::default();
        let update_expr = e.update(&update);
        let cond = combine(condition.as_ref(), guard.as_ref()).map(|c| e.condition(&c));
        let out = conditioned!(self.client.update_item(), &self.table, e, cond)
            .set_key(Some(key_attrs(key)))
            .update_expression(update_expr)
            .return_values(ReturnValue::AllNew)
            .set_return_values_on_condition_check_failure(
                guard
                    .is_some()
                    .then_some(ReturnValuesOnConditionCheckFailure::AllOld),
            )
            .send()
            .await;
        match out {
            Ok(out) => item_from(&out.attributes.unwrap_or_default()),
            Err(err) => {
                if guard.is_some()
                    && let Some(UpdateItemError::ConditionalCheckFailedException(c)) =
                        err.as_service_error()
                {
                    return Err(guarded_failure(condition.as_ref(), c.item()));
                }
                Err(port_error("UpdateItem", err))
            }
        }
    }

    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()> {
        let mut e = Expr::default();
        let cond = condition.as_ref().map(|c| e.condition(c));
        conditioned!(self.client.delete_item(), &self.table, e, cond)
            .set_key(Some(key_attrs(key)))
            .send()
            .await
            .map_err(|e| port_error("DeleteItem", e))?;
        Ok(())
    }

    async fn query(&self, query: &Query) -> PortResult<Page> {
        let cursor = query.decode_cursor()?;
        let Some(sk) = normalize_sort_key(&query.sk) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let mut e = Expr::default();
        let key_condition = e.key_condition(query.index, &query.pk, &sk);
        // One item more than the page tells whether another page follows.
        let want = query.limit + 1;
        let mut start = cursor.map(|c| start_key(&c, query.index));
        let mut items = Vec::with_capacity(want.min(128));
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(query.index.name().map(str::to_owned))
                .key_condition_expression(&key_condition)
                .set_expression_attribute_names(e.names())
                .set_expression_attribute_values(e.values())
                .scan_index_forward(query.forward)
                // Read-your-writes on the table, as the embedded store gives; GSIs only
                // offer eventual consistency.
                .consistent_read(query.index == Index::Primary)
                .limit(i32::try_from(want - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|err| {
                    // DynamoDB refuses a start key outside the sort-key condition: a cursor
                    // from another query of the same partition.
                    if err.code() == Some("ValidationException")
                        && err.message().is_some_and(|m| m.contains("starting key"))
                    {
                        PortError::InvalidCursor
                    } else {
                        port_error("Query", err)
                    }
                })?;
            for it in out.items() {
                items.push(item_from(it)?);
            }
            match out.last_evaluated_key {
                Some(k) if items.len() < want => start = Some(k),
                _ => break,
            }
        }
        Ok(Page::of_overfetched(items, query))
    }

    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()> {
        let guards: Vec<_> = ops
            .iter()
            .map(|op| match op {
                TxOp::Update { update, .. } => index_guard(update),
                _ => None,
            })
            .collect();
        let items = ops
            .iter()
            .zip(&guards)
            .map(|(op, guard)| self.tx_item(op, guard.as_ref()))
            .collect::<PortResult<Vec<_>>>()?;
        let err = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(()),
            Err(err) => err,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(t)) = err.as_service_error()
        else {
            return Err(port_error("TransactWriteItems", err));
        };
        let reasons = t.cancellation_reasons();
        let failed = failed_positions(reasons, t.message());
        for &i in &failed {
            if guards[i].is_some()
                && let err @ PortError::Invalid(_) =
                    guarded_failure(ops[i].condition(), reasons.get(i).and_then(|r| r.item()))
            {
                return Err(err);
            }
        }
        if failed.is_empty()
            && let Some(r) = reasons.iter().find(|r| r.code() == Some("ValidationError"))
        {
            return Err(PortError::Invalid(format!(
                "TransactWriteItems: {}",
                r.message().unwrap_or("validation error")
            )));
        }
        Err(PortError::TransactionCanceled { failed })
    }

    async fn health(&self) -> PortResult<()> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| port_error("DescribeTable", e))?;
        Ok(())
    }
}

impl DynamoRecords {
    /// One operation of a transaction as DynamoDB's `TransactWriteItem`.
    fn tx_item(&self, op: &TxOp, guard: Option<&Condition>) -> PortResult<TransactWriteItem> {
        let build = |e: aws_sdk_dynamodb::error::BuildError| PortError::Invalid(e.to_string());
        let mut e = Expr::default();
        let item = match op {
            TxOp::Put { item, condition } => {
                let cond = condition.as_ref().map(|c| e.condition(c));
                let put = conditioned!(Put::builder(), &self.table, e, cond)
                    .set_item(Some(to_attrs(&item.0)))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().put(put)
            }
            TxOp::Update {
                key,
                update,
                condition,
            } => {
                let update_expr = e.update(update);
                let cond = combine(condition.as_ref(), guard).map(|c| e.condition(&c));
                let upd = conditioned!(DynUpdate::builder(), &self.table, e, cond)
                    .set_key(Some(key_attrs(key)))
                    .update_expression(update_expr)
                    .set_return_values_on_condition_check_failure(
                        guard.map(|_| ReturnValuesOnConditionCheckFailure::AllOld),
                    )
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().update(upd)
            }
            TxOp::Delete { key, condition } => {
                let cond = condition.as_ref().map(|c| e.condition(c));
                let del = conditioned!(Delete::builder(), &self.table, e, cond)
                    .set_key(Some(key_attrs(key)))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().delete(del)
            }
            TxOp::Check { key, condition } => {
                let cond = e.condition(condition);
                let check = conditioned!(ConditionCheck::builder(), &self.table, e, Some(cond))
                    .set_key(Some(key_attrs(key)))
                    .build()
                    .map_err(build)?;
                TransactWriteItem::builder().condition_check(check)
            }
        };
        Ok(item.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancellation_reasons_give_failed_positions() {
        let r = |code: &str| CancellationReason::builder().code(code).build();
        let reasons = [
            r("None"),
            r("ConditionalCheckFailed"),
            r("ConditionalCheckFailed"),
        ];
        assert_eq!(failed_positions(&reasons, None), vec![1, 2]);
        let conflict = [r("TransactionConflict"), r("None")];
        assert!(failed_positions(&conflict, None).is_empty());
        let msg = "Transaction cancelled, please refer cancellation reasons for specific reasons \
                   [None, ConditionalCheckFailed]";
        assert_eq!(failed_positions(&[], Some(msg)), vec![1]);
        assert!(failed_positions(&[], None).is_empty());
    }

    #[test]
    fn start_keys_carry_the_index_key() {
        let it = Item::new(&Key::new("u#1", "d#1")).with_gsi1("s#ready", "2024");
        let c = Cursor::after(&it, Index::Gsi1);
        let k = start_key(&c, Index::Gsi1);
        assert_eq!(k.len(), 4);
        assert_eq!(k["gsi1sk"], AttributeValue::S("2024".into()));
        let k = start_key(&Cursor::after(&it, Index::Primary), Index::Primary);
        assert_eq!(k.len(), 2);
    }

    #[test]
    fn guarded_failures_are_told_apart() {
        let stored = to_attrs(&Item::new(&Key::new("a", "b")).with("v", 1).0);
        let holds = Condition::eq("v", 1);
        let fails = Condition::eq("v", 2);
        assert!(matches!(
            guarded_failure(Some(&holds), Some(&stored)),
            PortError::Invalid(_)
        ));
        assert_eq!(
            guarded_failure(Some(&fails), Some(&stored)),
            PortError::ConditionFailed
        );
        assert!(matches!(guarded_failure(None, None), PortError::Invalid(_)));
        assert_eq!(
            guarded_failure(Some(&Condition::Exists), None),
            PortError::ConditionFailed
        );
    }
}
