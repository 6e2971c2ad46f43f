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

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
