//! Where the counters live (see the module's records list).

use chrono::{DateTime, NaiveDate, Utc};

use crate::accounts::user_partition;
use crate::ports::records::Key;

/// The partition of the platform's days, sorted by date.
pub(crate) const DAYS_PARTITION: &str = "STATS#DAY";
/// The sort-key prefix of a user's days in their partition.
pub(crate) const USER_DAY_PREFIX: &str = "DAY#";

/// A UTC day as the keys spell it (`2026-12-06`).
pub(crate) fn day_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d").to_string()
}

pub(crate) fn day_string(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// The user's running totals.
pub(crate) fn user_stats_key(user_id: &str) -> Key {
    Key::new(user_partition(user_id), "STATS")
}

/// The user's counters of one day.
pub(crate) fn user_day_key(user_id: &str, day: &str) -> Key {
    Key::new(user_partition(user_id), format!("{USER_DAY_PREFIX}{day}"))
}

/// The platform's running totals.
pub(crate) fn total_key() -> Key {
    Key::new("STATS", "TOTAL")
}

/// The platform's counters of one day.
pub(crate) fn day_key(day: &str) -> Key {
    Key::new(DAYS_PARTITION, day)
}
