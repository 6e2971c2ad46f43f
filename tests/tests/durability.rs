//! The embedded record store keeps every acknowledged write when its process is killed
//! with SIGKILL in the middle of a burst.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use synth_core::{Index, Key, Query, RecordStore};
use synth_embedded::{Database, SqliteRecords};

#[tokio::test]
async fn sigkill_mid_burst_loses_no_acknowledged_record() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("synth.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_record_burst"))
        .arg(&db)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut last = (0u64, 0i64);
    let mut acked = 0;
    while acked < 400 {
        let line = lines.next().expect("burst ended early").unwrap();
        let (i, n) = line.split_once(' ').unwrap();
        last = (i.parse().unwrap(), n.parse().unwrap());
        acked += 1;
    }
    child.kill().unwrap(); // SIGKILL while it keeps writing
    child.wait().unwrap();

    let records = SqliteRecords::new(Database::open(&db).unwrap());
    for i in 0..=last.0 {
        let key = Key::new("BURST", format!("ITEM#{i:08}"));
        assert!(
            records.get(&key).await.unwrap().is_some(),
            "acknowledged record {i} lost"
        );
    }
    let counter = records
        .get(&Key::new("BURST", "COUNTER"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        counter.i64("n").unwrap() >= last.1,
        "acknowledged increments lost"
    );
    // The store is consistent after the crash: it still answers queries and takes writes.
    let page = records
        .query(&Query::partition(Index::Primary, "BURST").limit(10))
        .await
        .unwrap();
    assert_eq!(page.items.len(), 10);
    records
        .put(synth_core::Item::new(&Key::new("AFTER", "CRASH")), None)
        .await
        .unwrap();
}
