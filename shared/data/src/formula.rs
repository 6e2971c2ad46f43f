//! Formula cells ("CSV injection"): a text cell such as `=cmd|' /C calc'!A0` or `@SUM(A1)`
//! is run as a formula by the spreadsheet that opens a CSV or XLSX file. Uploads keep such
//! cells as they are (they are data) and their profile warns about them; every CSV and
//! XLSX the platform writes neutralises them as OWASP recommends, with a leading `'`, which
//! spreadsheets read as "this cell is text". JSON and Parquet outputs keep them unchanged.

use std::borrow::Cow;

use synth_table::{ColumnData, Table};

/// The characters that start a formula in Excel, LibreOffice and Google Sheets.
const TRIGGERS: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\n'];

/// Whether a text cell would be read as a formula. Plain numbers (`-3`, `+1.5e3`) are not:
/// a spreadsheet reads them as the numbers they are.
pub fn is_formula(cell: &str) -> bool {
    cell.starts_with(TRIGGERS) && cell.trim().parse::<f64>().is_err()
}

/// The cell as a spreadsheet should receive it: formulas behind a leading `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    if is_formula(cell) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One warning per column whose name or text cells would run as formulas.
pub(crate) fn warnings(table: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for col in &table.columns {
        if is_formula(&col.name) {
            out.push(format!(
                "column name {:?} starts like a spreadsheet formula; CSV and Excel outputs write it behind a leading '",
                col.name
            ));
        }
        let ColumnData::Str(values) = &col.data else {
            continue;
        };
        let mut cells = values.iter().flatten().filter(|v| is_formula(v));
        if let Some(first) = cells.next() {
            let n = 1 + cells.count();
            let example: String = first.chars().take(40).collect();
            out.push(format!(
                "column {:?}: {n} cell(s) start like a spreadsheet formula (e.g. {example:?}); \
                 CSV and Excel outputs write them behind a leading ' so they are not run",
                col.name
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_and_numbers_and_text_are_not() {
        for f in [
            "=cmd|' /C calc'!A0",
            "+SUM(A1:A3)",
            "@SUM(A1)",
            "-2+3",
            "=1",
            "\t=1",
            "\rx",
        ] {
            assert!(is_formula(f), "{f:?}");
            assert_eq!(neutralise(f), format!("'{f}"));
        }
        for t in [
            "-3", "+1.5e3", "-0.25", "abc", "a=b", "", " =1", "'=1", "100%",
        ] {
            assert!(!is_formula(t), "{t:?}");
            assert_eq!(neutralise(t), t);
        }
    }
}
