//! Analysis in a child process, for the embedded server: whatever a file does to its reader
//! (a stack overflow or an allocation failure aborts a process, and nothing in-process can
//! catch either; the kernel's OOM killer takes the largest process), it happens to the
//! child, and the server marks the dataset `invalid` and carries on.
//!
//! The parent writes the upload to a private temp folder, runs `PROGRAM analyze-upload` on
//! it, and reads back `analysis.json` and `canonical.parquet`, or `error.txt` for a file the
//! reader refused. The `ingest` Lambda needs none of this: it is a process of its own, and
//! Lambda's retries plus the durable attempt count end a file that keeps crashing it.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use synth_core::datasets::{Analysis, Analyzer};

use crate::TableAnalyzer;

/// The hidden subcommand the child runs.
pub const SUBCOMMAND: &str = "analyze-upload";
/// The child's exit status for a file it read and refused (the reason is in `error.txt`).
const REFUSED: u8 = 3;
/// How long an analysis may take; the `ingest` Lambda's own limit is the same.
pub const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Runs each analysis as `program analyze-upload …` and waits for it.
#[derive(Debug, Clone)]
pub struct ProcessAnalyzer {
    program: PathBuf,
    max_bytes: u64,
    work_dir: PathBuf,
    timeout: Duration,
}

impl ProcessAnalyzer {
    /// Analyses by `program` (this binary, for `synth serve`), with temp files under
    /// `work_dir` (on the data folder's filesystem: uploads can be large).
    pub fn new(program: PathBuf, max_bytes: u64, work_dir: PathBuf) -> Self {
        Self {
            program,
            max_bytes,
            work_dir,
            timeout: ANALYSIS_TIMEOUT,
        }
    }

    /// The same, giving up after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl Analyzer for ProcessAnalyzer {
    fn analyze(&self, bytes: &[u8], filename: &str) -> Result<Analysis, String> {
        let internal = |what: &str, e: std::io::Error| {
            tracing::error!(error = %e, "{what}");
            format!("the file could not be analysed ({what})")
        };
        std::fs::create_dir_all(&self.work_dir)
            .map_err(|e| internal("cannot create the analysis folder", e))?;
        let dir = tempfile::tempdir_in(&self.work_dir)
            .map_err(|e| internal("cannot create the analysis folder", e))?;
        let input = dir.path().join("input");
        std::fs::write(&input, bytes).map_err(|e| internal("cannot stage the upload", e))?;
        let mut child = Command::new(&self.program)
            .arg(SUBCOMMAND)
            .arg("--input")
            .arg(&input)
            .arg("--filename")
            .arg(filename)
            .arg("--max-bytes")
            .arg(self.max_bytes.to_string())
            .arg("--output")
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| internal("cannot start the analysis process", e))?;
        // Polled rather than blocked on, so that a file that makes the reader spin forever
        // ends with the timeout instead of holding a worker.
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the analysis took longer than {} minutes and was stopped",
                        self.timeout.as_secs() / 60
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(internal("cannot wait for the analysis", e)),
            }
        };
        match status.code() {
            Some(0) => read_outputs(dir.path()).map_err(|e| internal("cannot read its results", e)),
            Some(c) if c == i32::from(REFUSED) => {
                Err(std::fs::read_to_string(dir.path().join("error.txt"))
                    .unwrap_or_else(|_| "the file could not be read".into()))
            }
            _ => {
                tracing::warn!(%status, filename, "the analysis process died");
                Err(format!(
                    "the reader crashed on this file ({status}); it may be malformed, too \
                     deeply nested or too large to read in this server's memory"
                ))
            }
        }
    }
}

fn read_outputs(dir: &Path) -> std::io::Result<Analysis> {
    let json = std::fs::read(dir.join("analysis.json"))?;
    let mut analysis: Analysis = serde_json::from_slice(&json).map_err(std::io::Error::other)?;
    analysis.canonical_parquet = std::fs::read(dir.join("canonical.parquet"))?;
    Ok(analysis)
}

/// The child's side: analyse `input` in this process and write the results to `output`.
pub fn run_child(input: &Path, filename: &str, max_bytes: u64, output: &Path) -> ExitCode {
    let write = |name: &str, bytes: &[u8]| std::fs::write(output.join(name), bytes);
    let bytes = match std::fs::read(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", input.display());
            return ExitCode::FAILURE;
        }
    };
    let written = match TableAnalyzer::new(max_bytes).analyze(&bytes, filename) {
        Ok(a) => serde_json::to_vec(&a)
            .map_err(std::io::Error::other)
            .and_then(|json| {
                write("canonical.parquet", &a.canonical_parquet)?;
                write("analysis.json", &json)
            })
            .map(|()| ExitCode::SUCCESS),
        Err(reason) => write("error.txt", reason.as_bytes()).map(|()| ExitCode::from(REFUSED)),
    };
    written.unwrap_or_else(|e| {
        eprintln!(
            "error: cannot write the analysis to {}: {e}",
            output.display()
        );
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in for the analysis program: a shell script with the given body.
    fn program(dir: &Path, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("analyse.sh");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    #[test]
    fn a_child_that_crashes_or_hangs_is_a_reason_not_a_dead_server() {
        let tmp = tempfile::tempdir().unwrap();
        let work = tmp.path().join("work");
        let aborts =
            ProcessAnalyzer::new(program(tmp.path(), "kill -ABRT $$"), 1 << 20, work.clone());
        let err = aborts.analyze(b"a,b\n1,2\n", "t.csv").unwrap_err();
        assert!(err.contains("the reader crashed on this file"), "{err}");
        assert!(err.contains("signal: 6"), "{err}");

        let hangs = ProcessAnalyzer::new(program(tmp.path(), "sleep 30"), 1 << 20, work.clone())
            .with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let err = hangs.analyze(b"a,b\n1,2\n", "t.csv").unwrap_err();
        assert!(err.contains("took longer than"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));

        // A refusal carries the reader's own reason.
        let refuses = ProcessAnalyzer::new(
            program(
                tmp.path(),
                r#"while [ "$1" != "--output" ]; do shift; done; printf "bad line 3" > "$2/error.txt"; exit 3"#,
            ),
            1 << 20,
            work.clone(),
        );
        assert_eq!(refuses.analyze(b"x", "t.csv").unwrap_err(), "bad line 3");
        // Each analysis cleans up after itself.
        assert_eq!(std::fs::read_dir(&work).unwrap().count(), 0);
    }

    #[test]
    fn the_child_side_writes_what_the_parent_reads() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("input");
        std::fs::write(&input, b"x,y\n1,a\n2,b\n3,a\n").unwrap();
        assert_eq!(
            run_child(&input, "t.csv", 1 << 20, tmp.path()),
            ExitCode::SUCCESS
        );
        let a = read_outputs(tmp.path()).unwrap();
        assert_eq!((a.n_rows, a.n_columns), (3, 2));
        assert!(a.canonical_parquet.starts_with(b"PAR1"));
        std::fs::write(&input, b"a,b,c\n1,2,3\n4,5\n").unwrap();
        assert_eq!(
            run_child(&input, "t.csv", 1 << 20, tmp.path()),
            ExitCode::from(REFUSED)
        );
        let reason = std::fs::read_to_string(tmp.path().join("error.txt")).unwrap();
        assert!(reason.contains("line 3"), "{reason}");
    }
}
