//! The counters a state change moves, written as it happens so that no statistic is ever
//! computed by reading every record.
//!
//! A [`Tally`] collects the deltas of one change (a request moved from `queued` to
//! `running`, an upload arrived, rows were generated). The user's own counters go into the
//! same transaction as the change ([`Tally::ops`]), so they move exactly when it commits.
//! The platform-wide counters (`STATS`/`TOTAL`, `STATS#DAY`/`{date}`) are touched by every
//! user's changes: inside transactions they would make concurrent changes cancel each other
//! (DynamoDB refuses two transactions on one item at once), so they are atomic `ADD`s
//! written right after the change commits ([`Tally::apply_global`]). An `ADD` never loses a
//! concurrent one; what a process killed between the two writes loses is one change's
//! platform-wide count, never a user's.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::keys::{day_key, day_of, total_key, user_day_key, user_stats_key};
use crate::RecordStore;
use crate::datasets::DatasetStatus;
use crate::generation::RequestStatus;
use crate::ports::records::{Cmp, Condition, Key, TxOp, Update};

/// Tries of a transaction that keeps running into concurrent ones.
const CONFLICT_TRIES: usize = 5;

/// Quality scores are counted in millionths, as integers (counters only add integers).
pub(crate) const QUALITY_SCALE: f64 = 1_000_000.0;

/// Deltas of named counters on one item.
#[derive(Debug, Clone, Default, PartialEq)]
struct Adds(BTreeMap<String, i64>);

impl Adds {
    fn add(&mut self, name: String, delta: i64) {
        if delta != 0 {
            *self.0.entry(name).or_default() += delta;
        }
    }

    /// The update adding every delta; `None` when there is nothing to add.
    fn update(&self) -> Option<Update> {
        let nonzero: Vec<_> = self.0.iter().filter(|(_, d)| **d != 0).collect();
        if nonzero.is_empty() {
            return None;
        }
        Some(
            nonzero
                .into_iter()
                .fold(Update::default(), |u, (name, d)| u.add(name, *d)),
        )
    }
}

/// An attribute name made of a prefix and a value the platform names (a status, a file
/// format, a model): anything but letters, digits and `_` becomes `_`.
pub(crate) fn counter(prefix: &str, name: &str) -> String {
    let clean: String = name
        .chars()
        .take(40)
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}_{clean}")
}

/// The counters one change of one user's records moves.
#[derive(Debug, Clone, PartialEq)]
pub struct Tally {
    user: String,
    day: String,
    /// `USER#{id}` / `STATS`: the user's running totals.
    user_total: Adds,
    /// `USER#{id}` / `DAY#{date}`: the user's day.
    user_day: Adds,
    /// `STATS` / `TOTAL`: the platform's running totals.
    total: Adds,
    /// `STATS#DAY` / `{date}`: the platform's day.
    day_all: Adds,
    /// A quality score that may be the user's (and the platform's) best.
    best_quality: Option<i64>,
}

impl Tally {
    /// The counters of a change to `user_id`'s records, dated now.
    pub fn of(user_id: &str) -> Self {
        Self::at(user_id, Utc::now())
    }

    /// The counters of a change dated `at` (its day is the UTC day).
    pub fn at(user_id: &str, at: DateTime<Utc>) -> Self {
        Self {
            user: user_id.to_owned(),
            day: day_of(at),
            user_total: Adds::default(),
            user_day: Adds::default(),
            total: Adds::default(),
            day_all: Adds::default(),
            best_quality: None,
        }
    }

    /// Add to a running total of the user and of the platform.
    fn both_totals(&mut self, name: String, delta: i64) {
        self.user_total.add(name.clone(), delta);
        self.total.add(name, delta);
    }

    /// Add to the user's day and the platform's day.
    fn both_days(&mut self, name: String, delta: i64) {
        self.user_day.add(name.clone(), delta);
        self.day_all.add(name, delta);
    }

    /// A dataset left `from` for `to` (`None`: it did not exist, or is gone). Datasets
    /// being deleted are counted as gone.
    pub fn dataset(mut self, from: Option<DatasetStatus>, to: Option<DatasetStatus>) -> Self {
        let counted = |s: Option<DatasetStatus>| s.filter(|s| *s != DatasetStatus::Deleting);
        if counted(from) == counted(to) {
            return self;
        }
        if let Some(s) = counted(from) {
            self.both_totals(counter("ds", s.as_str()), -1);
        }
        if let Some(s) = counted(to) {
            self.both_totals(counter("ds", s.as_str()), 1);
        }
        self
    }

    /// A request left `from` for `to` (`None`: it did not exist, or is deleted). A final
    /// state is also counted as one more request ended that way, for good.
    pub fn request(mut self, from: Option<RequestStatus>, to: Option<RequestStatus>) -> Self {
        if from == to {
            return self;
        }
        if let Some(s) = from {
            self.both_totals(counter("rq", s.as_str()), -1);
        }
        if let Some(s) = to {
            self.both_totals(counter("rq", s.as_str()), 1);
            if s.is_final() {
                self.total.add(counter("ended", s.as_str()), 1);
                self.day_all.add(counter("ended", s.as_str()), 1);
            }
        }
        self
    }

    /// A new request was made.
    pub fn request_created(mut self) -> Self {
        self.both_days("requests".into(), 1);
        self.request(None, Some(RequestStatus::Pending))
    }

    /// An uploaded file of `format` and `bytes` arrived.
    pub fn upload(mut self, format: &str, bytes: u64) -> Self {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.both_days(counter("uploads", format), 1);
        self.both_days(counter("upload_bytes", format), bytes);
        self.storage(bytes)
    }

    /// Stored files grew (or, negative, shrank) by `bytes`.
    pub fn storage(mut self, bytes: i64) -> Self {
        self.both_totals("storage_bytes".into(), bytes);
        self
    }

    /// A trainer run held a request for `ms` milliseconds.
    pub fn trainer_time(mut self, ms: i64) -> Self {
        self.both_totals("trainer_ms".into(), ms.max(0));
        self
    }

    /// A request produced `rows` synthetic rows with this quality score.
    pub fn generated(mut self, rows: u64, quality: Option<f64>) -> Self {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        self.both_totals("rows".into(), rows);
        self.both_days("rows".into(), rows);
        if let Some(q) = quality.filter(|q| q.is_finite()) {
            let micros = (q * QUALITY_SCALE).round() as i64;
            self.both_totals("quality_sum".into(), micros);
            self.both_totals("quality_n".into(), 1);
            self.best_quality = Some(micros);
        }
        self
    }

    /// A model was fitted for `epochs` epochs in `ms` milliseconds (the platform's
    /// seconds-per-epoch figures per model).
    pub fn fitted(mut self, model: &str, epochs: u64, ms: i64) -> Self {
        if epochs > 0 {
            let epochs = i64::try_from(epochs).unwrap_or(i64::MAX);
            self.total.add(counter("fit_epochs", model), epochs);
            self.total.add(counter("fit_ms", model), ms.max(0));
        }
        self
    }

    /// A new account.
    pub fn registered(mut self) -> Self {
        self.total.add("users".into(), 1);
        self.day_all.add("new_users".into(), 1);
        self
    }

    /// The user's account is erased: the platform's totals lose what the user's held
    /// (`stats` is the user's `STATS` item, if any).
    pub fn erased(mut self, stats: Option<&crate::Item>) -> Self {
        self.total.add("users".into(), -1);
        if let Some(item) = stats {
            for (name, v) in &item.0 {
                let carried =
                    name.starts_with("ds_") || name.starts_with("rq_") || name == "storage_bytes";
                if let (true, Some(n)) = (carried, v.as_i64()) {
                    self.total.add(name.clone(), -n);
                }
            }
        }
        self
    }

    /// The user was active today for the first time (see `Stats::touch`).
    pub(crate) fn active(mut self) -> Self {
        self.day_all.add("active_users".into(), 1);
        self
    }

    /// The writes of the user's counters, to go in the change's own transaction.
    pub fn ops(&self) -> Vec<TxOp> {
        let items = [
            (user_stats_key(&self.user), &self.user_total),
            (user_day_key(&self.user, &self.day), &self.user_day),
        ];
        items
            .into_iter()
            .filter_map(|(key, adds)| {
                adds.update().map(|update| TxOp::Update {
                    key,
                    update,
                    condition: None,
                })
            })
            .collect()
    }

    /// Write the platform-wide counters (and the best scores) once the change committed.
    /// Best effort: a failure is logged, the change itself stands.
    pub async fn apply_global(&self, records: &dyn RecordStore) {
        let items = [
            (total_key(), &self.total),
            (day_key(&self.day), &self.day_all),
        ];
        for (key, adds) in items {
            if let Some(update) = adds.update()
                && let Err(e) = records.update(&key, update, None).await
            {
                tracing::warn!(error = %e, key = %key.sk, "a platform counter was not written");
            }
        }
        if let Some(q) = self.best_quality {
            for key in [user_stats_key(&self.user), total_key()] {
                raise_best(records, &key, q).await;
            }
        }
    }

    /// Run `ops` with the user's counters in one transaction, then the platform's.
    /// Positions of failed conditions are those of `ops`: the counters come after them.
    ///
    /// A transaction cancelled with no failed condition ran into another one on the same
    /// items (DynamoDB's `TransactionConflict`: two changes of one user's at once); it is
    /// tried again a few times, as the conflict is over in milliseconds.
    pub async fn commit(
        &self,
        records: &dyn RecordStore,
        mut ops: Vec<TxOp>,
    ) -> crate::error::PortResult<()> {
        ops.extend(self.ops());
        let mut pause = std::time::Duration::from_millis(20);
        for _ in 1..CONFLICT_TRIES {
            match records.transact(ops.clone()).await {
                Err(crate::PortError::TransactionCanceled { failed }) if failed.is_empty() => {
                    let jitter = rand::random::<u64>() % (pause.as_millis() as u64 + 1);
                    tokio::time::sleep(pause + std::time::Duration::from_millis(jitter)).await;
                    pause *= 2;
                }
                Err(e) => return Err(e),
                Ok(()) => {
                    self.apply_global(records).await;
                    return Ok(());
                }
            }
        }
        records.transact(ops).await?;
        self.apply_global(records).await;
        Ok(())
    }

    /// Whether the tally moves nothing at all.
    pub fn is_empty(&self) -> bool {
        [&self.user_total, &self.user_day, &self.total, &self.day_all]
            .iter()
            .all(|a| a.update().is_none())
            && self.best_quality.is_none()
    }
}

/// Set `quality_best` on `key` to `q` unless it holds a better one already.
async fn raise_best(records: &dyn RecordStore, key: &Key, q: i64) {
    let cond = Condition::Or(vec![
        Condition::AttrNotExists("quality_best".into()),
        Condition::cmp("quality_best", Cmp::Lt, q),
    ]);
    let update = Update::default().set("quality_best", q);
    match records.update(key, update, Some(cond)).await {
        Ok(_) | Err(crate::PortError::ConditionFailed) => {}
        Err(e) => tracing::warn!(error = %e, "a best quality score was not written"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adds_of(op: &TxOp) -> Vec<(String, i64)> {
        match op {
            TxOp::Update { update, .. } => update.add.clone(),
            _ => panic!("counters are updates"),
        }
    }

    #[test]
    fn a_request_moving_on_moves_its_counts_and_ends_once() {
        let t = Tally::of("u1").request(Some(RequestStatus::Running), Some(RequestStatus::Failed));
        let ops = t.ops();
        assert_eq!(ops.len(), 1, "only the user's running totals move");
        assert_eq!(ops[0].key(), user_stats_key("u1"));
        let mut adds = adds_of(&ops[0]);
        adds.sort();
        assert_eq!(
            adds,
            [("rq_failed".to_owned(), 1), ("rq_running".to_owned(), -1)]
        );
        assert_eq!(t.total.0.get("ended_failed"), Some(&1));
        assert_eq!(t.day_all.0.get("ended_failed"), Some(&1));
        assert!(Tally::of("u").request(None, None).is_empty());
    }

    #[test]
    fn deltas_on_one_counter_merge_and_cancel() {
        let t = Tally::of("u").storage(100).upload("csv", 50).storage(-150);
        assert!(t.user_total.update().is_none(), "{:?}", t.user_total);
        let day = t.user_day.update().unwrap();
        assert_eq!(
            day.add,
            [
                ("upload_bytes_csv".to_owned(), 50),
                ("uploads_csv".to_owned(), 1)
            ]
        );
        let deleting =
            Tally::of("u").dataset(Some(DatasetStatus::Ready), Some(DatasetStatus::Deleting));
        assert_eq!(deleting.user_total.0.get("ds_ready"), Some(&-1));
        assert!(
            Tally::of("u")
                .dataset(Some(DatasetStatus::Deleting), None)
                .is_empty()
        );
    }

    #[test]
    fn quality_counts_in_millionths_and_names_are_attributes() {
        let t = Tally::of("u").generated(500, Some(0.8123456));
        assert_eq!(t.user_total.0.get("quality_sum"), Some(&812_346));
        assert_eq!(t.best_quality, Some(812_346));
        assert_eq!(t.user_day.0.get("rows"), Some(&500));
        assert_eq!(counter("uploads", "x-y.z"), "uploads_x_y_z");
        assert!(crate::ports::records::validate_attr_name(&counter("fit_ms", "tvae")).is_ok());
    }

    #[test]
    fn erasure_takes_back_what_the_user_held() {
        let stats = crate::Item::new(&user_stats_key("u"))
            .with("ds_ready", 2)
            .with("rq_completed", 3)
            .with("storage_bytes", 1000)
            .with("rows", 500);
        let t = Tally::of("u").erased(Some(&stats));
        let mut total: Vec<_> = t.total.0.into_iter().collect();
        total.sort();
        assert_eq!(
            total,
            [
                ("ds_ready".to_owned(), -2),
                ("rq_completed".to_owned(), -3),
                ("storage_bytes".to_owned(), -1000),
                ("users".to_owned(), -1),
            ],
            "rows generated stay generated"
        );
    }
}
