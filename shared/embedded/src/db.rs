//! The one SQLite file behind records, the queue and the job table.
//!
//! A single connection behind a mutex, used only from `spawn_blocking`: SQLite admits one
//! writer at a time anyway, every statement here is short (pages are capped at
//! `MAX_PAGE` rows), and one connection means our own writers never meet `SQLITE_BUSY`
//! and `BEGIN IMMEDIATE` is all the locking a conditional write needs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode as SqliteCode};
use synth_core::PortError;
use synth_core::error::PortResult;
use tokio::sync::Notify;

/// How long a statement waits for a lock held by another connection (another process,
/// or a second `Database` on the same file) before giving up with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema steps, applied in order; `PRAGMA user_version` records how many have run.
/// Append new steps, never edit old ones: databases in the field have run them.
const MIGRATIONS: &[&str] = &[
    // 1: records, queue, jobs.
    "CREATE TABLE items (
        pk TEXT NOT NULL,
        sk TEXT NOT NULL,
        gsi1pk TEXT,
        gsi1sk TEXT,
        gsi2pk TEXT,
        gsi2sk TEXT,
        doc TEXT NOT NULL,
        PRIMARY KEY (pk, sk)
    ) WITHOUT ROWID;
    CREATE INDEX items_gsi1 ON items (gsi1pk, gsi1sk, pk, sk);
    CREATE INDEX items_gsi2 ON items (gsi2pk, gsi2sk, pk, sk);

    CREATE TABLE queue_messages (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        queue TEXT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL,
        sent_at INTEGER NOT NULL,
        visible_at INTEGER NOT NULL,
        receipt TEXT UNIQUE,
        receive_count INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX queue_messages_order ON queue_messages (queue, seq);
    CREATE TABLE queue_dedup (
        queue TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        message_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (queue, dedup_key)
    ) WITHOUT ROWID;

    CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        attempts INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE INDEX jobs_state ON jobs (state, seq);",
];

/// Handle on the embedded database; clones share one connection.
#[derive(Clone)]
pub struct Database {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    conn: Mutex<Connection>,
    /// Woken on every queue send, so long-polling receivers need not spin.
    queue_sent: Notify,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl Database {
    /// Open (creating if needed) the database file and bring its schema up to date.
    ///
    /// WAL journal with `synchronous=FULL`: a write is acknowledged only once it is in the
    /// fsynced log, so it survives the process being killed (and the machine losing power).
    /// Blocking; call it at start-up or from `spawn_blocking`.
    pub fn open(path: &Path) -> PortResult<Database> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                PortError::Unavailable(format!("creating {}: {e}", parent.display()))
            })?;
        }
        let mut conn = Connection::open(path).map_err(sql_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_error)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sql_error)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(PortError::Unavailable(format!(
                "{} refuses WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sql_error)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql_error)?;
        migrate(&mut conn)?;
        Ok(Database {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                conn: Mutex::new(conn),
                queue_sent: Notify::new(),
            }),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Run `f` on the connection, off the async runtime.
    pub(crate) async fn call<T, F>(&self, f: F) -> PortResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> PortResult<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            // A panic inside `f` rolled back its transaction while unwinding (rusqlite's
            // Transaction does so on drop), so the connection is sound despite the poison.
            let mut conn = inner.conn.lock().unwrap_or_else(PoisonError::into_inner);
            f(&mut conn)
        })
        .await
        .map_err(|e| PortError::Backend(format!("database task failed: {e}")))?
    }

    /// Run `f` on the connection on this thread (start-up work only).
    pub(crate) fn call_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> PortResult<T>,
    ) -> PortResult<T> {
        let mut conn = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        f(&mut conn)
    }

    pub(crate) fn queue_sent(&self) -> &Notify {
        &self.inner.queue_sent
    }

    /// A trivial query: whether the file is still readable.
    pub(crate) async fn health(&self) -> PortResult<()> {
        self.call(|c| {
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map_err(sql_error)?;
            Ok(())
        })
        .await
    }
}

fn migrate(conn: &mut Connection) -> PortResult<()> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(sql_error)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql_error)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(PortError::Unavailable(format!(
            "database schema version {version} is newer than this build knows ({known})"
        )));
    }
    for step in &MIGRATIONS[version as usize..] {
        tx.execute_batch(step).map_err(sql_error)?;
    }
    if version < known {
        tx.pragma_update(None, "user_version", known)
            .map_err(sql_error)?;
    }
    tx.commit().map_err(sql_error)
}

/// Map a SQLite failure onto the port error: lock contention and unreachable files are
/// outages (worth retrying), the rest are backend errors.
pub(crate) fn sql_error(e: rusqlite::Error) -> PortError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            SqliteCode::DatabaseBusy
            | SqliteCode::DatabaseLocked
            | SqliteCode::CannotOpen
            | SqliteCode::DiskFull
            | SqliteCode::SystemIoFailure
            | SqliteCode::ReadOnly
            | SqliteCode::PermissionDenied => PortError::Unavailable(e.to_string()),
            _ => PortError::Backend(e.to_string()),
        },
        _ => PortError::Backend(e.to_string()),
    }
}

/// Milliseconds since the Unix epoch, the clock of queue and job rows.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_in_wal_with_full_sync_and_current_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/synth.db");
        let db = Database::open(&path).unwrap();
        db.call_blocking(|c| {
            let mode: String = c
                .query_row("PRAGMA journal_mode", [], |r| r.get(0))
                .unwrap();
            assert_eq!(mode, "wal");
            // 2 = FULL.
            let sync: i64 = c.query_row("PRAGMA synchronous", [], |r| r.get(0)).unwrap();
            assert_eq!(sync, 2);
            let v: i64 = c
                .query_row("PRAGMA user_version", [], |r| r.get(0))
                .unwrap();
            assert_eq!(v, MIGRATIONS.len() as i64);
            Ok(())
        })
        .unwrap();
        drop(db);
        // Reopening runs no migration twice.
        Database::open(&path).unwrap();
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("synth.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        assert!(matches!(
            Database::open(&path),
            Err(PortError::Unavailable(_))
        ));
    }
}
