//! Cross-crate integration tests of Synth; see the files under `tests/tests/`.
