//! The records port: one DynamoDB-shaped table of JSON items.
//!
//! Every item lives under a partition key `pk` and a sort key `sk`; two optional global
//! secondary indexes are keyed by the attributes `gsi1pk`/`gsi1sk` and `gsi2pk`/`gsi2sk`.
//! Typed repositories (users, datasets, ...) are written once on top of this generic port,
//! so the two adapter families stay small and share every rule below: validation,
//! condition semantics, update semantics and the cursor format are implemented here and
//! only *translated* by the adapters.

use std::cmp::Ordering;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::error::{PortError, PortResult};

/// Names of the key attributes.
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const GSI1_PK: &str = "gsi1pk";
pub const GSI1_SK: &str = "gsi1sk";
pub const GSI2_PK: &str = "gsi2pk";
pub const GSI2_SK: &str = "gsi2sk";
const KEY_ATTRS: [&str; 6] = [PK, SK, GSI1_PK, GSI1_SK, GSI2_PK, GSI2_SK];

/// Largest item accepted, as serialised JSON (DynamoDB's own limit is 400 KB).
pub const MAX_ITEM_BYTES: usize = 350 * 1024;
/// Most operations in one transaction (DynamoDB's limit).
pub const MAX_TX_OPS: usize = 100;
/// Largest page a query may ask for.
pub const MAX_PAGE: usize = 1000;

/// The primary key of an item.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Self {
            pk: pk.into(),
            sk: sk.into(),
        }
    }

    /// Both parts 1..=1024 bytes (DynamoDB's rule), enforced by both families.
    pub fn validate(&self) -> PortResult<()> {
        for (name, v) in [(PK, &self.pk), (SK, &self.sk)] {
            if v.is_empty() || v.len() > 1024 {
                return Err(PortError::Invalid(format!("{name} must be 1..=1024 bytes")));
            }
        }
        Ok(())
    }
}

/// A stored item: a JSON object holding at least `pk` and `sk` as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Item(pub Map<String, Value>);

impl Item {
    /// An item with the given key and no other attributes.
    pub fn new(key: &Key) -> Self {
        let mut m = Map::new();
        m.insert(PK.into(), Value::String(key.pk.clone()));
        m.insert(SK.into(), Value::String(key.sk.clone()));
        Self(m)
    }

    /// An item from a serialisable value (which must serialise to a JSON object) and a key.
    pub fn from_value<T: Serialize>(key: &Key, value: &T) -> PortResult<Self> {
        let v = serde_json::to_value(value).map_err(|e| PortError::Invalid(e.to_string()))?;
        let Value::Object(mut m) = v else {
            return Err(PortError::Invalid("an item must be a JSON object".into()));
        };
        m.insert(PK.into(), Value::String(key.pk.clone()));
        m.insert(SK.into(), Value::String(key.sk.clone()));
        Ok(Self(m))
    }

    /// Deserialise the item's attributes (key attributes included) into `T`.
    pub fn to_value<T: for<'de> Deserialize<'de>>(&self) -> PortResult<T> {
        serde_json::from_value(Value::Object(self.0.clone()))
            .map_err(|e| PortError::Backend(format!("stored item does not decode: {e}")))
    }

    /// Set an attribute (builder style).
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.0.insert(name.into(), value.into());
        self
    }

    /// Put the item into the first index.
    pub fn with_gsi1(self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.with(GSI1_PK, pk.into()).with(GSI1_SK, sk.into())
    }

    /// Put the item into the second index.
    pub fn with_gsi2(self, pk: impl Into<String>, sk: impl Into<String>) -> Self {
        self.with(GSI2_PK, pk.into()).with(GSI2_SK, sk.into())
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(Value::as_str)
    }

    pub fn i64(&self, name: &str) -> Option<i64> {
        self.0.get(name).and_then(Value::as_i64)
    }

    pub fn key(&self) -> Key {
        Key::new(
            self.str(PK).unwrap_or_default(),
            self.str(SK).unwrap_or_default(),
        )
    }

    /// The item's key in an index, when it is in it.
    pub fn index_key(&self, index: Index) -> Option<(String, String)> {
        let (p, s) = index.attrs();
        Some((self.str(p)?.to_owned(), self.str(s)?.to_owned()))
    }

    /// Check the rules both adapter families enforce on a stored item.
    pub fn validate(&self) -> PortResult<()> {
        self.key().validate()?;
        for (name, v) in &self.0 {
            validate_attr_name(name)?;
            if KEY_ATTRS.contains(&name.as_str()) && !v.is_string() {
                return Err(PortError::Invalid(format!(
                    "key attribute {name} must be a string"
                )));
            }
            if (name == GSI1_PK || name == GSI1_SK || name == GSI2_PK || name == GSI2_SK)
                && v.as_str().is_some_and(str::is_empty)
            {
                return Err(PortError::Invalid(format!(
                    "index key {name} must not be empty"
                )));
            }
        }
        for index in [Index::Gsi1, Index::Gsi2] {
            let (p, s) = index.attrs();
            if self.0.contains_key(p) != self.0.contains_key(s) {
                return Err(PortError::Invalid(format!(
                    "{p} and {s} must be set together"
                )));
            }
        }
        let size = serde_json::to_vec(&self.0)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > MAX_ITEM_BYTES {
            return Err(PortError::Invalid(format!(
                "item of {size} bytes exceeds {MAX_ITEM_BYTES}"
            )));
        }
        Ok(())
    }
}

/// Attribute names are identifiers, so both families can store and address them alike.
pub fn validate_attr_name(name: &str) -> PortResult<()> {
    let mut chars = name.chars();
    let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64;
    if ok {
        Ok(())
    } else {
        Err(PortError::Invalid(format!("bad attribute name {name:?}")))
    }
}

/// Which key a query runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Index {
    Primary,
    Gsi1,
    Gsi2,
}

impl Index {
    /// The partition and sort key attribute names of this index.
    pub fn attrs(self) -> (&'static str, &'static str) {
        match self {
            Index::Primary => (PK, SK),
            Index::Gsi1 => (GSI1_PK, GSI1_SK),
            Index::Gsi2 => (GSI2_PK, GSI2_SK),
        }
    }

    /// The index name as deployed (template.yaml) and as created by the embedded store.
    pub fn name(self) -> Option<&'static str> {
        match self {
            Index::Primary => None,
            Index::Gsi1 => Some("gsi1"),
            Index::Gsi2 => Some("gsi2"),
        }
    }
}

/// A condition on the sort key of a query.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SortKey {
    #[default]
    Any,
    Eq(String),
    BeginsWith(String),
    /// Inclusive on both ends.
    Between(String, String),
    Lt(String),
    Le(String),
    Gt(String),
    Ge(String),
}

impl SortKey {
    /// Whether a sort key value satisfies the condition (byte order, as DynamoDB sorts).
    pub fn matches(&self, sk: &str) -> bool {
        match self {
            SortKey::Any => true,
            SortKey::Eq(v) => sk == v,
            SortKey::BeginsWith(p) => sk.starts_with(p.as_str()),
            SortKey::Between(a, b) => sk >= a.as_str() && sk <= b.as_str(),
            SortKey::Lt(v) => sk < v.as_str(),
            SortKey::Le(v) => sk <= v.as_str(),
            SortKey::Gt(v) => sk > v.as_str(),
            SortKey::Ge(v) => sk >= v.as_str(),
        }
    }
}

/// A query on one partition of the table or of an index.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub index: Index,
    pub pk: String,
    pub sk: SortKey,
    /// Ascending sort-key order when true.
    pub forward: bool,
    /// Page size, 1..=MAX_PAGE.
    pub limit: usize,
    /// The `next` cursor of the previous page.
    pub cursor: Option<String>,
}

impl Query {
    /// All of a partition, ascending, in pages of 100.
    pub fn partition(index: Index, pk: impl Into<String>) -> Self {
        Self {
            index,
            pk: pk.into(),
            sk: SortKey::Any,
            forward: true,
            limit: 100,
            cursor: None,
        }
    }

    pub fn sk(mut self, sk: SortKey) -> Self {
        self.sk = sk;
        self
    }

    pub fn backward(mut self) -> Self {
        self.forward = false;
        self
    }

    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    pub fn after(mut self, cursor: Option<String>) -> Self {
        self.cursor = cursor;
        self
    }

    pub fn validate(&self) -> PortResult<()> {
        if self.pk.is_empty() {
            return Err(PortError::Invalid(
                "query partition key must not be empty".into(),
            ));
        }
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(PortError::Invalid(format!(
                "page size must be 1..={MAX_PAGE}"
            )));
        }
        if let SortKey::Between(a, b) = &self.sk
            && a > b
        {
            return Err(PortError::Invalid("sort key range is reversed".into()));
        }
        Ok(())
    }

    /// Decode this query's cursor, checking it belongs to this query's partition.
    pub fn decode_cursor(&self) -> PortResult<Option<Cursor>> {
        let Some(raw) = &self.cursor else {
            return Ok(None);
        };
        let c = Cursor::decode(raw)?;
        let pk_ok = match self.index {
            Index::Primary => c.pk == self.pk,
            _ => c.ipk.as_deref() == Some(self.pk.as_str()) && c.isk.is_some(),
        };
        if !pk_ok {
            return Err(PortError::InvalidCursor);
        }
        Ok(Some(c))
    }
}

/// One page of a query; `next` is present only when more items follow.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub items: Vec<Item>,
    pub next: Option<String>,
}

impl Page {
    /// The page of a query that fetched up to `limit + 1` items (`items` in query order):
    /// the first `limit`, with a cursor after the last of them when more were found.
    pub fn of_overfetched(mut items: Vec<Item>, query: &Query) -> Self {
        let next = if items.len() > query.limit {
            items.truncate(query.limit);
            items
                .last()
                .map(|last| Cursor::after(last, query.index).encode())
        } else {
            None
        };
        Self { items, next }
    }

    /// The page with every item decoded into `T`, the cursor kept: what a service hands out.
    pub fn decode<T: for<'de> Deserialize<'de>>(&self) -> PortResult<Paged<T>> {
        Ok(Paged {
            items: self
                .items
                .iter()
                .map(Item::to_value)
                .collect::<PortResult<_>>()?,
            next_cursor: self.next.clone(),
        })
    }
}

/// A page of typed results with the cursor of the next one, as listings return them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The position after which a page continues: the last item's table key and, for index
/// queries, its index key. Both adapters issue and accept this same opaque form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub pk: String,
    pub sk: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isk: Option<String>,
}

impl Cursor {
    /// The cursor that continues after `item` in `index`.
    pub fn after(item: &Item, index: Index) -> Self {
        let key = item.key();
        let (ipk, isk) = match item.index_key(index) {
            Some((p, s)) if index != Index::Primary => (Some(p), Some(s)),
            _ => (None, None),
        };
        Self {
            pk: key.pk,
            sk: key.sk,
            ipk,
            isk,
        }
    }

    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("cursor serialises");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(raw: &str) -> PortResult<Self> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| PortError::InvalidCursor)?;
        synth_table::json::from_slice(&bytes).map_err(|_| PortError::InvalidCursor)
    }

    /// The sort position of this cursor in `index`: (index sort key, pk, sk).
    pub fn position(&self, index: Index) -> (String, String, String) {
        match index {
            Index::Primary => (self.sk.clone(), self.pk.clone(), self.sk.clone()),
            _ => (
                self.isk.clone().unwrap_or_default(),
                self.pk.clone(),
                self.sk.clone(),
            ),
        }
    }
}

/// Comparison operators for attribute conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// A condition on the current state of an item, checked atomically with a write.
///
/// Semantics follow DynamoDB: a comparison with a missing attribute, or between values of
/// different types, is false.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// The item exists.
    Exists,
    /// The item does not exist.
    NotExists,
    /// The attribute is present.
    AttrExists(String),
    /// The attribute is absent (or the item is).
    AttrNotExists(String),
    /// Compare an attribute with a scalar (string, number or boolean).
    Compare(String, Cmp, Value),
    And(Vec<Condition>),
    Or(Vec<Condition>),
}

impl Condition {
    pub fn eq(attr: &str, value: impl Into<Value>) -> Self {
        Self::Compare(attr.into(), Cmp::Eq, value.into())
    }

    pub fn cmp(attr: &str, op: Cmp, value: impl Into<Value>) -> Self {
        Self::Compare(attr.into(), op, value.into())
    }

    pub fn validate(&self) -> PortResult<()> {
        match self {
            Condition::Exists | Condition::NotExists => Ok(()),
            Condition::AttrExists(a) | Condition::AttrNotExists(a) => validate_attr_name(a),
            Condition::Compare(a, op, v) => {
                validate_attr_name(a)?;
                match v {
                    Value::String(_) | Value::Number(_) => Ok(()),
                    Value::Bool(_) if *op == Cmp::Eq => Ok(()),
                    _ => Err(PortError::Invalid(format!(
                        "condition on {a}: only strings and numbers compare, booleans by equality"
                    ))),
                }
            }
            Condition::And(cs) | Condition::Or(cs) => {
                if cs.is_empty() {
                    return Err(PortError::Invalid("empty AND/OR condition".into()));
                }
                cs.iter().try_for_each(Condition::validate)
            }
        }
    }

    /// Evaluate against the current item (`None` when it does not exist).
    pub fn holds(&self, item: Option<&Item>) -> bool {
        match self {
            Condition::Exists => item.is_some(),
            Condition::NotExists => item.is_none(),
            Condition::AttrExists(a) => item.is_some_and(|i| i.0.contains_key(a)),
            Condition::AttrNotExists(a) => !item.is_some_and(|i| i.0.contains_key(a)),
            Condition::Compare(a, op, v) => {
                let Some(cur) = item.and_then(|i| i.0.get(a)) else {
                    return false;
                };
                match compare_scalars(cur, v) {
                    Some(ord) => match op {
                        Cmp::Eq => ord == Ordering::Equal,
                        Cmp::Lt => ord == Ordering::Less,
                        Cmp::Le => ord != Ordering::Greater,
                        Cmp::Gt => ord == Ordering::Greater,
                        Cmp::Ge => ord != Ordering::Less,
                    },
                    None => false,
                }
            }
            Condition::And(cs) => cs.iter().all(|c| c.holds(item)),
            Condition::Or(cs) => cs.iter().any(|c| c.holds(item)),
        }
    }
}

/// Order two scalars of the same type; `None` across types (as DynamoDB).
fn compare_scalars(a: &Value, b: &Value) -> Option<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => Some(x.as_bytes().cmp(y.as_bytes())),
        (Value::Number(x), Value::Number(y)) => compare_numbers(x, y),
        (Value::Bool(x), Value::Bool(y)) => {
            (x == y).then_some(Ordering::Equal).or(Some(Ordering::Less))
        }
        _ => None,
    }
}

fn compare_numbers(x: &Number, y: &Number) -> Option<Ordering> {
    match (x.as_i64(), y.as_i64()) {
        (Some(a), Some(b)) => Some(a.cmp(&b)),
        _ => x.as_f64()?.partial_cmp(&y.as_f64()?),
    }
}

/// An in-place change of an item: set attributes, remove attributes, add to counters.
/// Applied to a missing item it creates it (as DynamoDB's UpdateItem does) unless a
/// condition forbids that.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub set: Vec<(String, Value)>,
    pub remove: Vec<String>,
    /// Atomic integer increments; a missing attribute counts as 0.
    pub add: Vec<(String, i64)>,
}

impl Update {
    pub fn set(mut self, attr: &str, value: impl Into<Value>) -> Self {
        self.set.push((attr.into(), value.into()));
        self
    }

    /// Sets `attr` to `value` as JSON (a domain type stored whole).
    pub fn set_json(self, attr: &str, value: &impl serde::Serialize) -> Self {
        let value = serde_json::to_value(value).expect("a domain value serialises");
        self.set(attr, value)
    }

    pub fn remove(mut self, attr: &str) -> Self {
        self.remove.push(attr.into());
        self
    }

    pub fn add(mut self, attr: &str, delta: i64) -> Self {
        self.add.push((attr.into(), delta));
        self
    }

    pub fn validate(&self) -> PortResult<()> {
        if self.set.is_empty() && self.remove.is_empty() && self.add.is_empty() {
            return Err(PortError::Invalid("empty update".into()));
        }
        let mut seen = std::collections::HashSet::new();
        let names = self
            .set
            .iter()
            .map(|(a, _)| a)
            .chain(self.remove.iter())
            .chain(self.add.iter().map(|(a, _)| a));
        for a in names {
            validate_attr_name(a)?;
            if a == PK || a == SK {
                return Err(PortError::Invalid(format!(
                    "cannot update key attribute {a}"
                )));
            }
            if !seen.insert(a.as_str()) {
                return Err(PortError::Invalid(format!("attribute {a} updated twice")));
            }
        }
        self.validate_index_keys()
    }

    /// What the update does to an index's key pair, as far as it can be told without the
    /// stored item: key values are non-empty strings, and one update never sets one half of
    /// a pair while removing the other. (Whether a pair stays whole given the stored item is
    /// the adapter's to enforce: the embedded store checks the item it writes, DynamoDB a
    /// guard condition.)
    fn validate_index_keys(&self) -> PortResult<()> {
        for index in [Index::Gsi1, Index::Gsi2] {
            let (p, s) = index.attrs();
            for a in [p, s] {
                if self.add.iter().any(|(x, _)| x == a) {
                    return Err(PortError::Invalid(format!(
                        "key attribute {a} must be a string"
                    )));
                }
                match self.set.iter().find(|(x, _)| x == a).map(|(_, v)| v) {
                    Some(Value::String(v)) if v.is_empty() => {
                        return Err(PortError::Invalid(format!(
                            "index key {a} must not be empty"
                        )));
                    }
                    Some(Value::String(_)) | None => {}
                    Some(_) => {
                        return Err(PortError::Invalid(format!(
                            "key attribute {a} must be a string"
                        )));
                    }
                }
            }
            let sets = |a: &str| self.set.iter().any(|(x, _)| x == a);
            let removes = |a: &str| self.remove.iter().any(|x| x == a);
            if (sets(p) && removes(s)) || (removes(p) && sets(s)) {
                return Err(PortError::Invalid(format!(
                    "{p} and {s} must be set together"
                )));
            }
        }
        Ok(())
    }

    /// The item after the update (for adapters that apply updates themselves).
    pub fn apply(&self, key: &Key, current: Option<Item>) -> PortResult<Item> {
        let mut item = current.unwrap_or_else(|| Item::new(key));
        for (a, v) in &self.set {
            item.0.insert(a.clone(), v.clone());
        }
        for a in &self.remove {
            item.0.remove(a);
        }
        for (a, d) in &self.add {
            let cur = match item.0.get(a) {
                None => 0,
                Some(v) => v.as_i64().ok_or_else(|| {
                    PortError::Invalid(format!("ADD on non-integer attribute {a}"))
                })?,
            };
            let next = cur
                .checked_add(*d)
                .ok_or_else(|| PortError::Invalid(format!("counter {a} overflows")))?;
            item.0.insert(a.clone(), Value::from(next));
        }
        item.validate()?;
        Ok(item)
    }
}

/// One operation of a transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum TxOp {
    Put {
        item: Item,
        condition: Option<Condition>,
    },
    Update {
        key: Key,
        update: Update,
        condition: Option<Condition>,
    },
    Delete {
        key: Key,
        condition: Option<Condition>,
    },
    /// Only check a condition on an item, writing nothing.
    Check { key: Key, condition: Condition },
}

impl TxOp {
    pub fn key(&self) -> Key {
        match self {
            TxOp::Put { item, .. } => item.key(),
            TxOp::Update { key, .. } | TxOp::Delete { key, .. } | TxOp::Check { key, .. } => {
                key.clone()
            }
        }
    }

    pub fn condition(&self) -> Option<&Condition> {
        match self {
            TxOp::Put { condition, .. }
            | TxOp::Update { condition, .. }
            | TxOp::Delete { condition, .. } => condition.as_ref(),
            TxOp::Check { condition, .. } => Some(condition),
        }
    }
}

/// Validate a transaction as DynamoDB would before running it.
pub fn validate_transaction(ops: &[TxOp]) -> PortResult<()> {
    if ops.is_empty() || ops.len() > MAX_TX_OPS {
        return Err(PortError::Invalid(format!(
            "a transaction holds 1..={MAX_TX_OPS} operations"
        )));
    }
    let mut keys = std::collections::HashSet::new();
    for op in ops {
        if !keys.insert(op.key()) {
            return Err(PortError::Invalid(
                "a transaction touches one item at most once".into(),
            ));
        }
        if let Some(c) = op.condition() {
            c.validate()?;
        }
        match op {
            TxOp::Put { item, .. } => item.validate()?,
            TxOp::Update { key, update, .. } => {
                key.validate()?;
                update.validate()?
            }
            TxOp::Delete { key, .. } | TxOp::Check { key, .. } => key.validate()?,
        }
    }
    Ok(())
}

/// Every item a query finds, page after page, in order: for partitions known to be small
/// (one user's items, one key's counters), never for a listing a client pages through.
pub async fn query_all(records: &dyn RecordStore, query: &Query) -> PortResult<Vec<Item>> {
    let mut q = query.clone();
    let mut all = Vec::new();
    loop {
        let page = records.query(&q).await?;
        all.extend(page.items);
        match page.next {
            Some(next) => q.cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// A DynamoDB-shaped table of JSON items.
#[async_trait]
pub trait RecordStore: Send + Sync {
    /// Strongly consistent read of one item.
    async fn get(&self, key: &Key) -> PortResult<Option<Item>>;
    /// Write a whole item, replacing any previous one, if `condition` holds.
    async fn put(&self, item: Item, condition: Option<Condition>) -> PortResult<()>;
    /// Change an item in place if `condition` holds; returns the item as written.
    async fn update(
        &self,
        key: &Key,
        update: Update,
        condition: Option<Condition>,
    ) -> PortResult<Item>;
    /// Delete an item if `condition` holds; deleting a missing item is not an error.
    async fn delete(&self, key: &Key, condition: Option<Condition>) -> PortResult<()>;
    /// One page of a partition of the table or of an index, in sort-key order.
    async fn query(&self, query: &Query) -> PortResult<Page>;
    /// Apply all operations or none.
    async fn transact(&self, ops: Vec<TxOp>) -> PortResult<()>;
    /// Whether the store answers.
    async fn health(&self) -> PortResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(v: Value) -> Item {
        let Value::Object(m) = v else { panic!() };
        Item(m)
    }

    #[test]
    fn conditions_follow_dynamodb_semantics() {
        let it = item(json!({"pk": "a", "sk": "b", "n": 5, "s": "x", "t": true}));
        assert!(Condition::Exists.holds(Some(&it)));
        assert!(!Condition::Exists.holds(None));
        assert!(Condition::NotExists.holds(None));
        assert!(Condition::cmp("n", Cmp::Lt, 6).holds(Some(&it)));
        assert!(!Condition::cmp("n", Cmp::Lt, 5).holds(Some(&it)));
        assert!(Condition::cmp("n", Cmp::Le, 5).holds(Some(&it)));
        assert!(Condition::cmp("n", Cmp::Ge, 4.5).holds(Some(&it)));
        // Missing attribute and type mismatch are false.
        assert!(!Condition::eq("missing", 1).holds(Some(&it)));
        assert!(!Condition::eq("n", "5").holds(Some(&it)));
        assert!(Condition::eq("t", true).holds(Some(&it)));
        assert!(Condition::AttrNotExists("zz".into()).holds(Some(&it)));
        assert!(Condition::AttrNotExists("zz".into()).holds(None));
        assert!(
            Condition::Or(vec![Condition::eq("s", "y"), Condition::eq("s", "x")]).holds(Some(&it))
        );
        assert!(
            !Condition::And(vec![Condition::eq("s", "x"), Condition::eq("n", 4)]).holds(Some(&it))
        );
    }

    #[test]
    fn update_creates_sets_removes_and_counts() {
        let key = Key::new("p", "s");
        let u = Update::default().set("a", "x").add("c", 2);
        let created = u.apply(&key, None).unwrap();
        assert_eq!(created.i64("c"), Some(2));
        assert_eq!(created.str("pk"), Some("p"));
        let u2 = Update::default().remove("a").add("c", -5);
        let next = u2.apply(&key, Some(created)).unwrap();
        assert_eq!(next.get("a"), None);
        assert_eq!(next.i64("c"), Some(-3));
        assert!(Update::default().set("pk", "z").validate().is_err());
        assert!(
            Update::default()
                .set("a", 1)
                .add("a", 1)
                .validate()
                .is_err()
        );
        assert!(Update::default().validate().is_err());
        let bad = Update::default()
            .add("a", 1)
            .apply(&key, Some(Item::new(&key).with("a", "s")));
        assert!(bad.is_err());
    }

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_partition() {
        let it = Item::new(&Key::new("u#1", "d#2")).with_gsi1("status#ready", "2024");
        let c = Cursor::after(&it, Index::Gsi1);
        let q = Query::partition(Index::Gsi1, "status#ready").after(Some(c.encode()));
        assert_eq!(q.decode_cursor().unwrap(), Some(c.clone()));
        let other = Query::partition(Index::Gsi1, "status#queued").after(Some(c.encode()));
        assert_eq!(other.decode_cursor(), Err(PortError::InvalidCursor));
        let garbage = Query::partition(Index::Primary, "x").after(Some("!!".into()));
        assert_eq!(garbage.decode_cursor(), Err(PortError::InvalidCursor));
    }

    #[test]
    fn items_are_validated() {
        let ok = Item::new(&Key::new("a", "b")).with("x", 1);
        assert!(ok.validate().is_ok());
        assert!(Item::new(&Key::new("", "b")).validate().is_err());
        assert!(ok.clone().with("bad-name", 1).validate().is_err());
        assert!(ok.clone().with(GSI1_PK, "p").validate().is_err());
        assert!(
            ok.clone()
                .with(GSI1_PK, 3)
                .with(GSI1_SK, "s")
                .validate()
                .is_err()
        );
        let big = ok.with("blob", "x".repeat(MAX_ITEM_BYTES));
        assert!(big.validate().is_err());
    }

    #[test]
    fn pages_decode_to_typed_pages_with_their_cursor() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct Row {
            sk: String,
            n: i64,
        }
        let page = Page {
            items: vec![Item::new(&Key::new("p", "a")).with("n", 1)],
            next: Some("c".into()),
        };
        let typed: Paged<Row> = page.decode().unwrap();
        assert_eq!(
            typed.items,
            [Row {
                sk: "a".into(),
                n: 1
            }]
        );
        assert_eq!(typed.next_cursor.as_deref(), Some("c"));
        let bad = Page {
            items: vec![Item::new(&Key::new("p", "a")).with("n", "one")],
            next: None,
        };
        assert!(matches!(bad.decode::<Row>(), Err(PortError::Backend(_))));
    }

    #[test]
    fn transactions_are_validated() {
        let k = Key::new("a", "b");
        let dup = vec![
            TxOp::Delete {
                key: k.clone(),
                condition: None,
            },
            TxOp::Check {
                key: k.clone(),
                condition: Condition::Exists,
            },
        ];
        assert!(validate_transaction(&dup).is_err());
        assert!(validate_transaction(&[]).is_err());
    }
}
