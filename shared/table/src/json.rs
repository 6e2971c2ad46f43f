//! Bounded nesting for JSON that users send. Parsers recurse once per level of nesting, and
//! a thread's stack ends after some hundreds of levels: a stack overflow aborts the whole
//! process (it is not a panic, so nothing can catch it). serde_json stops at 128 levels by
//! itself, but polars' JSON reader has no bound. So every reader of user JSON (uploaded
//! tables, request bodies, metadata and configuration files, cursors) first runs this scan,
//! which neither recurses nor allocates, and refuses anything nested past a documented depth.
//!
//! Hand-written: no crate offers a depth check that runs before (rather than while) parsing.

/// Deepest nesting of arrays and objects in an uploaded JSON or NDJSON table. A table needs
/// two levels (an array of row objects); a few more allow nested cells, which are refused
/// later as unsupported columns with a clearer message.
pub const MAX_TABLE_DEPTH: usize = 64;

/// Deepest nesting in a request body or a configuration file (SDV metadata, model
/// parameters, a search space). The deepest of these documents needs four levels.
pub const MAX_DOCUMENT_DEPTH: usize = 32;

/// JSON nested deeper than a limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("JSON nested more than {limit} levels deep (at byte {offset}); refused before parsing")]
pub struct TooDeep {
    pub limit: usize,
    /// Byte offset of the bracket that went past the limit.
    pub offset: usize,
}

/// Check that no array or object in `bytes` is nested more than `limit` levels deep.
///
/// Brackets inside strings do not count. The scan does not validate the JSON otherwise:
/// malformed input that passes is left for the parser to refuse.
pub fn check_depth(bytes: &[u8], limit: usize) -> Result<(), TooDeep> {
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                // Skip the string: to the next quote not escaped by a backslash.
                i += 1;
                while i < bytes.len() {
                    match bytes[i] {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Err(TooDeep { limit, offset: i });
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Parse a document (request body, configuration file) after checking its depth against
/// [`MAX_DOCUMENT_DEPTH`].
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    check_depth(bytes, MAX_DOCUMENT_DEPTH).map_err(|e| e.to_string())?;
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "[".repeat(depth), "]".repeat(depth))
    }

    #[test]
    fn depth_is_counted_across_arrays_and_objects_but_not_strings() {
        assert_eq!(check_depth(b"", 1), Ok(()));
        assert_eq!(check_depth(b"42", 0), Ok(()));
        assert_eq!(check_depth(nested(3).as_bytes(), 3), Ok(()));
        assert_eq!(
            check_depth(nested(4).as_bytes(), 3),
            Err(TooDeep {
                limit: 3,
                offset: 3
            })
        );
        let mixed = br#"{"a": [{"b": {"c": 1}}]}"#;
        assert_eq!(check_depth(mixed, 4), Ok(()));
        assert!(check_depth(mixed, 3).is_err());
        // Brackets in strings, escaped quotes and backslashes do not count.
        let tricky = br#"[{"k": "[[[[{{{{", "e": "\"[[[[", "b": "\\", "x": ["\\\"]]]]"]}]"#;
        assert_eq!(check_depth(tricky, 3), Ok(()));
        assert!(check_depth(tricky, 2).is_err());
        // Sequential documents (NDJSON) do not add up.
        assert_eq!(check_depth(b"[[1]]\n[[2]]\n[[3]]", 2), Ok(()));
    }

    #[test]
    fn hostile_depths_are_refused_without_recursing() {
        for depth in [MAX_DOCUMENT_DEPTH + 1, 1_000, 100_000, 10_000_000] {
            let doc = nested(depth);
            let err = check_depth(doc.as_bytes(), MAX_DOCUMENT_DEPTH).unwrap_err();
            assert_eq!(err.offset, MAX_DOCUMENT_DEPTH);
            let e = from_slice::<serde_json::Value>(doc.as_bytes()).unwrap_err();
            assert!(e.contains("nested more than 32 levels"), "{e}");
        }
        // An unterminated string or a lone backslash at the end never reads past the input.
        assert_eq!(check_depth(br#"["abc\"#, 4), Ok(()));
        assert_eq!(check_depth(br#"["abc"#, 4), Ok(()));
        let ok: serde_json::Value = from_slice(br#"{"a": [1, {"b": 2}]}"#).unwrap();
        assert_eq!(ok["a"][1]["b"], 2);
    }
}
