//! Writes records to an embedded store as fast as it can and prints each write once it is
//! acknowledged; the durability test kills it with SIGKILL and checks what it printed.

use std::io::Write;
use std::path::PathBuf;

use synth_core::{Condition, Item, Key, RecordStore, Update};
use synth_embedded::{Database, SqliteRecords};

#[tokio::main]
async fn main() {
    let path = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: record_burst DB_PATH"),
    );
    let records = SqliteRecords::new(Database::open(&path).expect("open database"));
    let counter = Key::new("BURST", "COUNTER");
    let mut out = std::io::stdout();
    for i in 0u64.. {
        let key = Key::new("BURST", format!("ITEM#{i:08}"));
        records
            .put(Item::new(&key).with("i", i), Some(Condition::NotExists))
            .await
            .expect("put");
        let c = records
            .update(&counter, Update::default().add("n", 1), None)
            .await
            .expect("update");
        writeln!(out, "{i} {}", c.i64("n").unwrap())
            .and_then(|_| out.flush())
            .expect("stdout");
    }
}
