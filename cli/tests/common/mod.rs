//! What the command-line tests share: the sample table, a scratch folder and a way to run
//! `synth`.

use std::process::{Command, Output};

pub const PENGUINS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/penguins.csv"
);
pub const PENGUINS_META: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/penguins.json"
);

/// Runs the `synth` binary with `args`.
pub fn synth(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(args)
        .output()
        .expect("run synth")
}

/// Runs `synth` with `args`, which must succeed (its stderr is the failure's message).
pub fn synth_ok(args: &[&str]) -> Output {
    let o = synth(args);
    assert!(o.status.success(), "synth {args:?}: {}", text(&o.stderr));
    o
}

/// Runs `synth` with `args`, which must succeed, and reads the JSON it prints.
pub fn synth_json(args: &[&str]) -> serde_json::Value {
    let o = synth_ok(args);
    serde_json::from_str(text(&o.stdout).trim()).expect("synth prints JSON")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `synth`'s stderr says `needle` (the failure shows it all).
pub fn assert_says(o: &Output, needle: &str) {
    let stderr = text(&o.stderr);
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr}");
}

/// `synth` failed, saying `needle`.
pub fn assert_fails_saying(o: &Output, needle: &str) {
    assert!(!o.status.success(), "expected a failure saying {needle:?}");
    assert_says(o, needle);
}

/// A test's folder for its files, removed when dropped.
pub struct Scratch(tempfile::TempDir);

impl Scratch {
    pub fn new() -> Self {
        Self(tempfile::tempdir().unwrap())
    }

    /// The path of `name` in the folder, as an argument.
    pub fn path(&self, name: &str) -> String {
        self.0.path().join(name).to_str().unwrap().to_owned()
    }

    /// Writes `contents` to `name` in the folder: its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}
