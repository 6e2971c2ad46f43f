//! Restarting on the same data folder: everything acknowledged before is found again, and
//! jobs the old process never finished run again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use synth_core::{Index, Item, JobSpec, JobState, Key, Query};
use synth_embedded::{Embedded, EmbeddedOptions, JobHandler, open};

fn options(dir: &std::path::Path) -> EmbeddedOptions {
    EmbeddedOptions {
        data_dir: dir.to_owned(),
        secret_key: "s".into(),
        public_base_url: "http://127.0.0.1:1".into(),
        max_concurrent_jobs: 1,
        max_upload_bytes: 1 << 20,
    }
}

fn spec(name: &str) -> JobSpec {
    JobSpec {
        name: name.into(),
        args: vec![],
        env: vec![],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn wait_state(e: &Embedded, id: &str, want: JobState) {
    for _ in 0..500 {
        if e.backends.jobs.status(id).await.unwrap().state == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} never reached {want:?}");
}

#[test]
fn a_restart_finds_records_objects_messages_and_reruns_unfinished_jobs() {
    let dir = tempfile::tempdir().unwrap();

    // First process: state is written, one job hangs mid-run and one waits behind it,
    // then the process dies (its runtime is torn down with the tasks in flight).
    let first = runtime();
    let (running, queued, done) = first.block_on(async {
        let hang = |spec: JobSpec| async move {
            if spec.name == "quick" {
                return Ok(());
            }
            std::future::pending::<()>().await;
            Ok(())
        };
        let e = open(options(dir.path()), Arc::new(hang)).await.unwrap();
        let b = &e.backends;
        let item = Item::new(&Key::new("user#1", "profile")).with_gsi1("email#a@b.c", "user#1");
        b.records.put(item, None).await.unwrap();
        b.objects
            .put(
                "datasets/1/original.csv",
                Bytes::from_static(b"a\n1\n"),
                "text/csv",
            )
            .await
            .unwrap();
        b.queue.send("train 1", "request-1").await.unwrap();
        let done = b.jobs.submit(spec("quick")).await.unwrap();
        wait_state(&e, &done, JobState::Succeeded).await;
        let running = b.jobs.submit(spec("slow-1")).await.unwrap();
        let queued = b.jobs.submit(spec("slow-2")).await.unwrap();
        wait_state(&e, &running, JobState::Running).await;
        assert_eq!(
            b.jobs.status(&queued).await.unwrap().state,
            JobState::Queued
        );
        (running, queued, done)
    });
    first.shutdown_timeout(Duration::from_secs(5));

    // Second process on the same folder.
    let second = runtime();
    second.block_on(async {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let handler = move |spec: JobSpec| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(spec.name);
                Ok(())
            }
        };
        let handler: Arc<dyn JobHandler> = Arc::new(handler);
        let e = open(options(dir.path()), handler).await.unwrap();
        let b = &e.backends;
        wait_state(&e, &running, JobState::Succeeded).await;
        wait_state(&e, &queued, JobState::Succeeded).await;
        // Both re-run, once each; they start in submission order but run side by side
        // (the pool runs two at once), so either may reach the handler first.
        let mut seen = seen.lock().unwrap().clone();
        seen.sort();
        assert_eq!(seen, ["slow-1", "slow-2"], "once each");
        assert_eq!(
            b.jobs.status(&done).await.unwrap().state,
            JobState::Succeeded
        );

        let got = b.records.get(&Key::new("user#1", "profile")).await.unwrap();
        assert!(got.is_some());
        let page = b
            .records
            .query(&Query::partition(Index::Gsi1, "email#a@b.c"))
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        let body = b
            .objects
            .get("datasets/1/original.csv")
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&body[..], b"a\n1\n");
        let msgs = b
            .queue
            .receive(10, Duration::from_secs(30), Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].body, "train 1");
    });
}
