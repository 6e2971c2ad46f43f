//! Presigned object URLs over real HTTP: what a browser or `curl` would do.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use synth_core::{ObjectStore, PresignedRequest};
use synth_embedded::{FsObjects, SignedRequest, UrlSigner, object_router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "test-secret";
const MAX: u64 = 64 * 1024;

struct Server {
    _dir: tempfile::TempDir,
    objects: Arc<FsObjects>,
    base: String,
    addr: std::net::SocketAddr,
    http: reqwest::Client,
}

async fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(
        FsObjects::new(
            dir.path().join("objects"),
            UrlSigner::new(SECRET),
            String::new(),
        )
        .unwrap(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    // The port is known only now: exactly the server's situation.
    objects.set_public_base_url(base.clone());
    let app = object_router(objects.clone(), MAX);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server {
        _dir: dir,
        objects,
        base,
        addr,
        http: reqwest::Client::new(),
    }
}

async fn put(
    s: &Server,
    p: &PresignedRequest,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut req = s.http.put(&p.url).body(body);
    for (k, v) in &p.headers {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

async fn envelope(r: reqwest::Response, status: u16) -> serde_json::Value {
    assert_eq!(r.status().as_u16(), status);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["success"], false);
    v
}

#[tokio::test]
async fn a_presigned_put_then_get_round_trips_and_announces_the_upload() {
    let s = serve().await;
    let mut created = s.objects.subscribe_created();
    let ct = "text/csv; charset=utf-8";
    let data = "a,b\n1,2\n".repeat(1000);
    let p = put_url(&s, "datasets/u1/d=1/a+b@c.csv", ct, data.len() as u64).await;
    assert!(
        p.url
            .starts_with(&format!("{}/objects/datasets/u1/d=1/a+b@c.csv?", s.base))
    );
    let r = put(&s, &p, data.clone()).await;
    assert_eq!(r.status().as_u16(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag.len(), 66, "quoted hex sha-256: {etag}");
    let event = created.recv().await.unwrap();
    assert_eq!(event.key, "datasets/u1/d=1/a+b@c.csv");
    assert_eq!(event.size, data.len() as u64);

    let g = get_url(&s, "datasets/u1/d=1/a+b@c.csv").await;
    let r = s.http.get(&g.url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"].to_str().unwrap(), ct);
    assert_eq!(
        r.headers()["content-length"].to_str().unwrap(),
        data.len().to_string()
    );
    assert_eq!(r.text().await.unwrap(), data);
    let meta = s
        .objects
        .head("datasets/u1/d=1/a+b@c.csv")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(meta.content_type.as_deref(), Some(ct));
}

#[tokio::test]
async fn tampered_wrong_method_and_expired_urls_are_refused() {
    let s = serve().await;
    s.objects
        .put(
            "k/file.bin",
            Bytes::from_static(b"secret bytes"),
            "application/octet-stream",
        )
        .await
        .unwrap();
    let g = get_url(&s, "k/file.bin").await;

    // Another key under the same signature.
    let other = g.url.replace("k/file.bin", "k/other.bin");
    envelope(s.http.get(&other).send().await.unwrap(), 403).await;
    // A longer expiry under the same signature.
    let exp = g.expires_at.timestamp();
    let later = g.url.replace(
        &format!("expires={exp}"),
        &format!("expires={}", exp + 3600),
    );
    envelope(s.http.get(&later).send().await.unwrap(), 403).await;
    // No signature at all.
    let bare = format!("{}/objects/k/file.bin", s.base);
    envelope(s.http.get(&bare).send().await.unwrap(), 403).await;
    // A GET URL used to upload.
    let r = s.http.put(&g.url).body("overwrite").send().await.unwrap();
    envelope(r, 403).await;
    // Even with the query edited to claim PUT.
    let as_put = g.url.replace("method=GET", "method=PUT");
    let r = s.http.put(&as_put).body("overwrite").send().await.unwrap();
    envelope(r, 403).await;
    let body = stored(&s, "k/file.bin").await;
    assert_eq!(&body[..], b"secret bytes");

    // Genuinely signed, but expired.
    let past = chrono::Utc::now().timestamp() - 5;
    let get = |expires| SignedRequest {
        method: "GET",
        key: "k/file.bin",
        expires,
        content_type: "",
        content_length: None,
    };
    let sig = UrlSigner::new(SECRET).sign(&get(past));
    let expired = format!(
        "{}/objects/k/file.bin?method=GET&expires={past}&sig={sig}",
        s.base
    );
    let v = envelope(s.http.get(&expired).send().await.unwrap(), 403).await;
    assert_eq!(v["error"]["code"], "FORBIDDEN");
    assert!(v["error"]["message"].as_str().unwrap().contains("expired"));
    // Signed by another secret.
    let sig = UrlSigner::new("other").sign(&get(past + 3600));
    let forged = format!(
        "{}/objects/k/file.bin?method=GET&expires={}&sig={sig}",
        s.base,
        past + 3600
    );
    let v = envelope(s.http.get(&forged).send().await.unwrap(), 403).await;
    assert!(!v["error"]["message"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn missing_objects_wrong_types_and_oversized_uploads_are_refused() {
    let s = serve().await;
    let g = get_url(&s, "nothing/here").await;
    let v = envelope(s.http.get(&g.url).send().await.unwrap(), 404).await;
    assert_eq!(v["error"]["code"], "NOT_FOUND");

    let p = upload_url(&s, "up/a.csv", 3).await;
    let r = s
        .http
        .put(&p.url)
        .header("content-type", "text/html")
        .body("a,b")
        .send()
        .await
        .unwrap();
    let v = envelope(r, 415).await;
    assert_eq!(v["error"]["code"], "UNSUPPORTED_MEDIA_TYPE");
    let r = s.http.put(&p.url).body("a,b").send().await.unwrap();
    envelope(r, 415).await;

    // A body of another length than the signed one: refused, nothing stored.
    for body in ["a,b,c,d", "a"] {
        let r = s
            .http
            .put(&p.url)
            .header("content-type", "text/csv")
            .body(body)
            .send()
            .await
            .unwrap();
        let v = envelope(r, 400).await;
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("exactly 3 bytes"),
            "{v}"
        );
    }
    assert_eq!(s.objects.head("up/a.csv").await.unwrap(), None);

    // A URL signed for more than the limit is refused before any byte is read.
    let big = upload_url(&s, "up/big.csv", MAX + 1).await;
    let r = put(&s, &big, vec![b'x'; MAX as usize + 1]).await;
    let v = envelope(r, 413).await;
    assert_eq!(v["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert_eq!(s.objects.head("up/big.csv").await.unwrap(), None);
    // Exactly the limit is fine.
    let exact = upload_url(&s, "up/max.csv", MAX).await;
    let r = put(&s, &exact, vec![b'x'; MAX as usize]).await;
    assert_eq!(r.status().as_u16(), 200);
}

/// A signed upload URL creates its object once: a second use is refused, whatever its
/// body, and the stored bytes stay those of the first.
#[tokio::test]
async fn an_upload_url_works_once() {
    let s = serve().await;
    let p = upload_url(&s, "up/once.csv", 8).await;
    assert_eq!(put(&s, &p, "a,b\n1,2\n").await.status().as_u16(), 200);
    for again in ["a,b\n1,2\n", "x,y\n9,9\n"] {
        let v = envelope(put(&s, &p, again).await, 409).await;
        assert_eq!(v["error"]["code"], "CONFLICT");
    }
    let body = stored(&s, "up/once.csv").await;
    assert_eq!(&body[..], b"a,b\n1,2\n");
    // Nor does it replace an object written by the platform itself.
    s.objects
        .put("up/mine.csv", Bytes::from_static(b"platform"), "text/csv")
        .await
        .unwrap();
    let p = upload_url(&s, "up/mine.csv", 8).await;
    envelope(put(&s, &p, "attacker").await, 409).await;
    assert_eq!(temp_files(&s), 0);
}

/// The bytes stored under `key`.
async fn stored(s: &Server, key: &str) -> Bytes {
    let object = s.objects.get(key).await.unwrap();
    object.bytes().await.unwrap()
}

/// An upload URL of `len` bytes of `content_type` for `key`, good for a minute.
async fn put_url(s: &Server, key: &str, content_type: &str, len: u64) -> PresignedRequest {
    let url = s
        .objects
        .presign_put(key, content_type, len, Duration::from_secs(60));
    url.await.unwrap()
}

/// A CSV upload URL of `len` bytes for `key`, good for a minute.
async fn upload_url(s: &Server, key: &str, len: u64) -> PresignedRequest {
    put_url(s, key, "text/csv", len).await
}

/// A download URL for `key`, good for a minute.
async fn get_url(s: &Server, key: &str) -> PresignedRequest {
    let url = s.objects.presign_get(key, Duration::from_secs(60));
    url.await.unwrap()
}

/// Speak HTTP by hand, for bodies reqwest will not send (chunked, cut short).
async fn raw(s: &Server, request: &[u8], then_close: bool) -> String {
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    tcp.write_all(request).await.unwrap();
    if then_close {
        tcp.shutdown().await.unwrap();
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

fn temp_files(s: &Server) -> usize {
    std::fs::read_dir(s.objects.root().join(".tmp"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn streamed_uploads_are_limited_and_a_cut_upload_leaves_nothing() {
    let s = serve().await;
    let p = upload_url(&s, "up/b.csv", 1000).await;
    let path = p.url.strip_prefix(&s.base).unwrap();

    // Chunked, no length announced: refused, since the URL is signed for a length.
    let chunk = vec![b'y'; 16 * 1024];
    let mut req = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..5 {
        req.extend(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend(&chunk);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    let answer = raw(&s, &req, false).await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");

    // A body cut off half-way (client gone).
    let req = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-type: text/csv\r\ncontent-length: 1000\r\n\r\nonly part of it"
    );
    raw(&s, req.as_bytes(), true).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    assert_eq!(s.objects.head("up/b.csv").await.unwrap(), None);
    assert_eq!(temp_files(&s), 0, "no partial file is left behind");
    // The URL is still good for its one complete upload.
    assert_eq!(put(&s, &p, vec![b'z'; 1000]).await.status().as_u16(), 200);
}
