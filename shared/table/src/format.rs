//! Which of the supported file formats a file is, from its name or, preferably, its bytes,
//! and the one table of the file-name extensions Synth accepts. It lives here, with no
//! parser behind it, so that the uploader's check (in the platform core, which links no
//! polars), the API document's filename pattern and the readers (in the data crate) share it.

use serde::{Deserialize, Serialize};

/// A file format Synth reads and writes; serialised as its usual extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// Every file-name extension Synth accepts (lower case; matched case-insensitively) and the
    /// format it names: each one a reader reads. CSV's reader sniffs the delimiter (`, ; tab |`),
    /// so the tab- and pipe-separated spellings are CSV; `xlsm` is an XLSX workbook with macros
    /// (which are never run). Legacy `xls` (a binary OLE file) is not here: no reader reads it.
    pub const EXTENSIONS: [(&'static str, FileFormat); 12] = [
        ("csv", Self::Csv),
        ("tsv", Self::Csv),
        ("tab", Self::Csv),
        ("psv", Self::Csv),
        ("txt", Self::Csv),
        ("json", Self::Json),
        ("ndjson", Self::Ndjson),
        ("jsonl", Self::Ndjson),
        ("xlsx", Self::Xlsx),
        ("xlsm", Self::Xlsx),
        ("parquet", Self::Parquet),
        ("pq", Self::Parquet),
    ];

    /// The format a file name's extension (or a bare extension) claims; `None` if unknown.
    pub fn from_extension(name_or_ext: &str) -> Option<Self> {
        let ext = name_or_ext.rsplit_once('.').map_or(name_or_ext, |(_, e)| e);
        Self::EXTENSIONS
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(ext))
            .map(|&(_, format)| format)
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

    /// The format's name as people write it (`CSV`, `NDJSON`, `Parquet`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Csv => "CSV",
            Self::Json => "JSON",
            Self::Ndjson => "NDJSON",
            Self::Xlsx => "XLSX",
            Self::Parquet => "Parquet",
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
    use FileFormat::*;

    #[test]
    fn format_from_extension() {
        let cases = [
            ("a.CSV", Some(Csv)),
            ("t.TSV", Some(Csv)),
            ("x.jsonl", Some(Ndjson)),
            ("parquet", Some(Parquet)),
            ("b.xlsm", Some(Xlsx)),
            ("a.doc", None),
            // Legacy Excel is a binary OLE file no reader reads.
            ("b.xls", None),
        ];
        for (name, want) in cases {
            assert_eq!(FileFormat::from_extension(name), want, "{name}");
        }
        // Each format's usual extension names it, and is its serialised name.
        for (_, format) in FileFormat::EXTENSIONS {
            assert_eq!(FileFormat::from_extension(format.extension()), Some(format));
            let name = serde_json::to_value(format).unwrap();
            assert_eq!(name, format.extension());
        }
    }

    #[test]
    fn format_from_content() {
        let cases: [(&[u8], Option<FileFormat>); 7] = [
            (b"PAR1....", Some(Parquet)),
            (b"PK\x03\x04..", Some(Xlsx)),
            (b"  [{\"a\":1}]", Some(Json)),
            (b"{\"a\":1}\n{\"a\":2}", Some(Ndjson)),
            (b"\xEF\xBB\xBFa,b\n1,2\n", Some(Csv)),
            (b"  \n", None),
            (b"a\x00b", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(FileFormat::from_content(bytes), want, "{bytes:?}");
        }
    }
}
