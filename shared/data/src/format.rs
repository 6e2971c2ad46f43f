//! Which of the supported file formats a file is, from its name or, preferably, its bytes.

use serde::Serialize;

/// A file format Synth reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    /// A JSON array of objects, one per row.
    Json,
    /// One JSON object per line.
    Ndjson,
    Xlsx,
    Parquet,
}

impl FileFormat {
    /// The format a file name's extension (or a bare extension) claims; `None` if unknown.
    pub fn from_extension(name_or_ext: &str) -> Option<Self> {
        let ext = name_or_ext
            .rsplit_once('.')
            .map_or(name_or_ext, |(_, e)| e)
            .to_ascii_lowercase();
        Some(match ext.as_str() {
            "csv" | "tsv" | "txt" | "tab" | "psv" => Self::Csv,
            "json" => Self::Json,
            "ndjson" | "jsonl" => Self::Ndjson,
            "xlsx" | "xlsm" => Self::Xlsx,
            "parquet" | "pq" => Self::Parquet,
            _ => return None,
        })
    }

    /// The format the bytes themselves show (magic numbers, the first JSON token), since an
    /// extension is only a claim. Text that is not JSON is CSV; `None` for empty or binary data.
    pub fn from_content(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"PAR1") {
            return Some(Self::Parquet);
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return Some(Self::Xlsx);
        }
        let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut rest = text.iter().skip_while(|b| b.is_ascii_whitespace());
        match rest.next() {
            None => None,
            Some(b'[') => Some(Self::Json),
            Some(b'{') => Some(Self::Ndjson),
            Some(_) => {
                let head = &text[..text.len().min(4096)];
                // NUL bytes never occur in text files (UTF-16 aside, which we do not read).
                (!head.contains(&0)).then_some(Self::Csv)
            }
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
            Self::Ndjson => "ndjson",
            Self::Xlsx => "xlsx",
            Self::Parquet => "parquet",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_extension_and_content() {
        assert_eq!(FileFormat::from_extension("a.CSV"), Some(FileFormat::Csv));
        assert_eq!(
            FileFormat::from_extension("x.jsonl"),
            Some(FileFormat::Ndjson)
        );
        assert_eq!(
            FileFormat::from_extension("parquet"),
            Some(FileFormat::Parquet)
        );
        assert_eq!(FileFormat::from_extension("a.doc"), None);
        assert_eq!(
            FileFormat::from_content(b"PAR1...."),
            Some(FileFormat::Parquet)
        );
        assert_eq!(
            FileFormat::from_content(b"PK\x03\x04.."),
            Some(FileFormat::Xlsx)
        );
        assert_eq!(
            FileFormat::from_content(b"  [{\"a\":1}]"),
            Some(FileFormat::Json)
        );
        assert_eq!(
            FileFormat::from_content(b"{\"a\":1}\n{\"a\":2}"),
            Some(FileFormat::Ndjson)
        );
        assert_eq!(
            FileFormat::from_content(b"\xEF\xBB\xBFa,b\n1,2\n"),
            Some(FileFormat::Csv)
        );
        assert_eq!(FileFormat::from_content(b"  \n"), None);
        assert_eq!(FileFormat::from_content(b"a\x00b"), None);
    }
}
