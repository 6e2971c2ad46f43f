//! Translation of the port's conditions, updates and sort-key conditions into DynamoDB
//! expressions. Every attribute name and value goes through a `#nX` / `:vX` placeholder,
//! so reserved words (`status`, `name`...) and odd values never reach the expression text.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use synth_core::ports::records::{Cmp, Index, PK};
use synth_core::{Condition, SortKey, Update};

use super::attr::{AttrMap, to_attr};

/// Placeholders collected while rendering one request's expressions.
#[derive(Debug, Default)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    by_attr: HashMap<String, String>,
    values: AttrMap,
}

impl Expr {
    /// The placeholder of an attribute name (one per distinct name).
    pub(crate) fn name(&mut self, attr: &str) -> String {
        if let Some(p) = self.by_attr.get(attr) {
            return p.clone();
        }
        let p = format!("#n{}", self.by_attr.len());
        self.by_attr.insert(attr.to_owned(), p.clone());
        self.names.insert(p.clone(), attr.to_owned());
        p
    }

    /// The placeholder of a value (one per use).
    pub(crate) fn value(&mut self, v: AttributeValue) -> String {
        let p = format!(":v{}", self.values.len());
        self.values.insert(p.clone(), v);
        p
    }

    /// `ExpressionAttributeNames`, absent when empty (DynamoDB refuses an empty map).
    pub(crate) fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// `ExpressionAttributeValues`, absent when empty.
    pub(crate) fn values(&self) -> Option<AttrMap> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }

    /// A `ConditionExpression`.
    pub(crate) fn condition(&mut self, c: &Condition) -> String {
        match c {
            Condition::Exists => format!("attribute_exists({})", self.name(PK)),
            Condition::NotExists => format!("attribute_not_exists({})", self.name(PK)),
            Condition::AttrExists(a) => format!("attribute_exists({})", self.name(a)),
            Condition::AttrNotExists(a) => format!("attribute_not_exists({})", self.name(a)),
            Condition::Compare(a, op, v) => {
                let n = self.name(a);
                let v = self.value(to_attr(v));
                let op = match op {
                    Cmp::Eq => "=",
                    Cmp::Lt => "<",
                    Cmp::Le => "<=",
                    Cmp::Gt => ">",
                    Cmp::Ge => ">=",
                };
                format!("{n} {op} {v}")
            }
            Condition::And(cs) => self.join(cs, " AND "),
            Condition::Or(cs) => self.join(cs, " OR "),
        }
    }

    fn join(&mut self, cs: &[Condition], sep: &str) -> String {
        let parts: Vec<String> = cs.iter().map(|c| self.condition(c)).collect();
        format!("({})", parts.join(sep))
    }

    /// An `UpdateExpression`: `SET … REMOVE … ADD …`.
    pub(crate) fn update(&mut self, u: &Update) -> String {
        let mut clauses = Vec::new();
        if !u.set.is_empty() {
            let parts: Vec<String> = u
                .set
                .iter()
                .map(|(a, v)| format!("{} = {}", self.name(a), self.value(to_attr(v))))
                .collect();
            clauses.push(format!("SET {}", parts.join(", ")));
        }
        if !u.remove.is_empty() {
            let parts: Vec<String> = u.remove.iter().map(|a| self.name(a)).collect();
            clauses.push(format!("REMOVE {}", parts.join(", ")));
        }
        if !u.add.is_empty() {
            let parts: Vec<String> = u
                .add
                .iter()
                .map(|(a, d)| {
                    let n = self.name(a);
                    let v = self.value(AttributeValue::N(d.to_string()));
                    format!("{n} {v}")
                })
                .collect();
            clauses.push(format!("ADD {}", parts.join(", ")));
        }
        clauses.join(" ")
    }

    /// A `KeyConditionExpression` on an index's partition key and a (normalised) sort-key
    /// condition.
    pub(crate) fn key_condition(&mut self, index: Index, pk: &str, sk: &SortKey) -> String {
        let (pa, sa) = index.attrs();
        let p = format!(
            "{} = {}",
            self.name(pa),
            self.value(AttributeValue::S(pk.to_owned()))
        );
        let s = |e: &mut Self, v: &str| e.value(AttributeValue::S(v.to_owned()));
        let cond = match sk {
            SortKey::Any => return p,
            SortKey::Eq(v) => format!("{} = {}", self.name(sa), s(self, v)),
            SortKey::BeginsWith(v) => format!("begins_with({}, {})", self.name(sa), s(self, v)),
            SortKey::Between(a, b) => {
                let n = self.name(sa);
                format!("{n} BETWEEN {} AND {}", s(self, a), s(self, b))
            }
            SortKey::Lt(v) => format!("{} < {}", self.name(sa), s(self, v)),
            SortKey::Le(v) => format!("{} <= {}", self.name(sa), s(self, v)),
            SortKey::Gt(v) => format!("{} > {}", self.name(sa), s(self, v)),
            SortKey::Ge(v) => format!("{} >= {}", self.name(sa), s(self, v)),
        };
        format!("{p} AND {cond}")
    }
}

/// DynamoDB refuses empty strings as key values, while the port accepts them in sort-key
/// conditions; rewrite those to their meaning (sort keys are never empty). `None` means
/// "nothing can match".
pub(crate) fn normalize_sort_key(sk: &SortKey) -> Option<SortKey> {
    Some(match sk {
        SortKey::Eq(v) | SortKey::Lt(v) | SortKey::Le(v) if v.is_empty() => return None,
        SortKey::BeginsWith(v) | SortKey::Gt(v) | SortKey::Ge(v) if v.is_empty() => SortKey::Any,
        SortKey::Between(_, b) if b.is_empty() => return None,
        SortKey::Between(a, b) if a.is_empty() => SortKey::Le(b.clone()),
        other => other.clone(),
    })
}

/// The conditions an update needs so that the item it writes keeps each index's key pair
/// whole, as `Item::validate` demands of every stored item: DynamoDB cannot check the item
/// it writes, so what depends on the stored item becomes a guard condition. (What does not
/// — a key value that is no non-empty string, a pair half set and half removed — the
/// checking layer refused before, with `Update::validate`.)
pub(crate) fn index_guard(u: &Update) -> Option<Condition> {
    let mut guards = Vec::new();
    for index in [Index::Gsi1, Index::Gsi2] {
        let (p, s) = index.attrs();
        let sets = |a: &str| u.set.iter().any(|(x, _)| x == a);
        let removes = |a: &str| u.remove.iter().any(|x| x == a);
        let guard = match (sets(p), removes(p), sets(s), removes(s)) {
            (true, _, false, false) => Some(Condition::AttrExists(s.into())),
            (false, false, true, _) => Some(Condition::AttrExists(p.into())),
            (_, true, false, false) => Some(Condition::AttrNotExists(s.into())),
            (false, false, _, true) => Some(Condition::AttrNotExists(p.into())),
            // Both halves written, or neither: the pair stays as whole as it was.
            _ => None,
        };
        guards.extend(guard);
    }
    match guards.len() {
        0 => None,
        1 => guards.pop(),
        _ => Some(Condition::And(guards)),
    }
}

/// The condition sent with an update: the caller's and the index guard, both required.
pub(crate) fn combine(user: Option<&Condition>, guard: Option<&Condition>) -> Option<Condition> {
    match (user, guard) {
        (Some(u), Some(g)) => Some(Condition::And(vec![u.clone(), g.clone()])),
        (Some(c), None) | (None, Some(c)) => Some(c.clone()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn conditions_render_with_placeholders() {
        let mut e = Expr::default();
        let c = Condition::And(vec![
            Condition::Exists,
            Condition::Or(vec![
                Condition::eq("status", "queued"),
                Condition::cmp("n", Cmp::Ge, 3),
                Condition::AttrNotExists("owner".into()),
            ]),
            Condition::AttrExists("status".into()),
        ]);
        let text = e.condition(&c);
        assert_eq!(
            text,
            "(attribute_exists(#n0) AND (#n1 = :v0 OR #n2 >= :v1 OR attribute_not_exists(#n3)) \
             AND attribute_exists(#n1))"
        );
        let names = e.names().unwrap();
        assert_eq!(names["#n0"], "pk");
        assert_eq!(names["#n1"], "status");
        assert_eq!(names["#n3"], "owner");
        let values = e.values().unwrap();
        assert_eq!(values[":v0"], AttributeValue::S("queued".into()));
        assert_eq!(values[":v1"], AttributeValue::N("3".into()));
        let mut e = Expr::default();
        assert_eq!(
            e.condition(&Condition::NotExists),
            "attribute_not_exists(#n0)"
        );
        assert_eq!(e.values(), None, "no values map when there are none");
        let mut e = Expr::default();
        for (op, s) in [
            (Cmp::Eq, "="),
            (Cmp::Lt, "<"),
            (Cmp::Le, "<="),
            (Cmp::Gt, ">"),
            (Cmp::Ge, ">="),
        ] {
            assert!(
                e.condition(&Condition::cmp("a", op, 1))
                    .contains(&format!(" {s} "))
            );
        }
    }

    #[test]
    fn updates_render_set_remove_add() {
        let mut e = Expr::default();
        let u = Update::default()
            .set("status", "ready")
            .set("meta", json!({"a": 1}))
            .remove("error")
            .add("attempts", 1)
            .add("credits", -5);
        assert_eq!(
            e.update(&u),
            "SET #n0 = :v0, #n1 = :v1 REMOVE #n2 ADD #n3 :v2, #n4 :v3"
        );
        let values = e.values().unwrap();
        assert_eq!(values[":v2"], AttributeValue::N("1".into()));
        assert_eq!(values[":v3"], AttributeValue::N("-5".into()));
        let mut e = Expr::default();
        assert_eq!(e.update(&Update::default().remove("x")), "REMOVE #n0");
        // A condition rendered after the update reuses the same name placeholders.
        let mut e = Expr::default();
        e.update(&Update::default().set("v", 2));
        assert_eq!(e.condition(&Condition::eq("v", 1)), "#n0 = :v1");
    }

    #[test]
    fn sort_key_conditions_render() {
        let cases = [
            (SortKey::Any, "#n0 = :v0"),
            (SortKey::Eq("a".into()), "#n0 = :v0 AND #n1 = :v1"),
            (
                SortKey::BeginsWith("d#".into()),
                "#n0 = :v0 AND begins_with(#n1, :v1)",
            ),
            (
                SortKey::Between("a".into(), "b".into()),
                "#n0 = :v0 AND #n1 BETWEEN :v1 AND :v2",
            ),
            (SortKey::Lt("a".into()), "#n0 = :v0 AND #n1 < :v1"),
            (SortKey::Le("a".into()), "#n0 = :v0 AND #n1 <= :v1"),
            (SortKey::Gt("a".into()), "#n0 = :v0 AND #n1 > :v1"),
            (SortKey::Ge("a".into()), "#n0 = :v0 AND #n1 >= :v1"),
        ];
        for (sk, want) in cases {
            let mut e = Expr::default();
            assert_eq!(e.key_condition(Index::Gsi2, "p", &sk), want);
            let names = e.names().unwrap();
            assert_eq!(names["#n0"], "gsi2pk");
            if sk != SortKey::Any {
                assert_eq!(names["#n1"], "gsi2sk");
            }
        }
        let mut e = Expr::default();
        e.key_condition(Index::Primary, "u#1", &SortKey::Any);
        assert_eq!(e.names().unwrap()["#n0"], "pk");
        assert_eq!(e.values().unwrap()[":v0"], AttributeValue::S("u#1".into()));
    }

    #[test]
    fn empty_sort_values_mean_what_they_mean() {
        let s = |v: &str| v.to_string();
        assert_eq!(normalize_sort_key(&SortKey::Eq(s(""))), None);
        assert_eq!(normalize_sort_key(&SortKey::Lt(s(""))), None);
        assert_eq!(normalize_sort_key(&SortKey::Le(s(""))), None);
        assert_eq!(
            normalize_sort_key(&SortKey::BeginsWith(s(""))),
            Some(SortKey::Any)
        );
        assert_eq!(normalize_sort_key(&SortKey::Gt(s(""))), Some(SortKey::Any));
        assert_eq!(
            normalize_sort_key(&SortKey::Between(s(""), s("b"))),
            Some(SortKey::Le(s("b")))
        );
        assert_eq!(normalize_sort_key(&SortKey::Between(s(""), s(""))), None);
        assert_eq!(
            normalize_sort_key(&SortKey::Eq(s("x"))),
            Some(SortKey::Eq(s("x")))
        );
    }

    #[test]
    fn index_guard_keeps_key_pairs_whole() {
        let none = Update::default().set("a", 1);
        assert_eq!(index_guard(&none), None);
        let both = Update::default().set("gsi1pk", "p").set("gsi1sk", "s");
        assert_eq!(index_guard(&both), None);
        let gone = Update::default().remove("gsi2pk").remove("gsi2sk");
        assert_eq!(index_guard(&gone), None);
        assert_eq!(
            index_guard(&Update::default().set("gsi1sk", "s")),
            Some(Condition::AttrExists("gsi1pk".into()))
        );
        assert_eq!(
            index_guard(&Update::default().remove("gsi1pk")),
            Some(Condition::AttrNotExists("gsi1sk".into()))
        );
        assert_eq!(
            index_guard(&Update::default().set("gsi1pk", "p").remove("gsi2sk")),
            Some(Condition::And(vec![
                Condition::AttrExists("gsi1sk".into()),
                Condition::AttrNotExists("gsi2pk".into()),
            ]))
        );
    }
}
