//! `synth serve` as a child process on a free port, for the tests and the bench: started
//! on a data folder (its log beside it, `<folder>.log`), killed when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The server's signing key, so a test can sign URLs for its data as a handler would.
#[allow(dead_code)] // the bench signs nothing
pub const SECRET: &str = "serve-test-secret-key-0123456789abcdefgh";

pub struct Server {
    pub child: Child,
    pub url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `synth serve` on `data_dir` with quick training (`MIN_EPOCHS=1`) and `env` on
/// top; returns once it printed its URL.
pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let log_path = data_dir.with_extension("log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0", "--data-dir"])
        .arg(data_dir)
        .env("SECRET_KEY", SECRET)
        .env("ENVIRONMENT", "test")
        .env("LOG_LEVEL", "warn")
        .env("MIN_EPOCHS", "1")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn synth serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            panic!("synth serve did not start: {line:?}\n{log}")
        })
        .to_owned();
    Server { child, url }
}
