//! What the command-line tests share: the sample table and a way to run `synth`.

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
