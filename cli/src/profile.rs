//! `synth profile FILE`: read a table, infer (or take) its SDV metadata and print each
//! column's profile — a quick look at a dataset before training on it.

use std::fmt::Write as _;
use std::path::PathBuf;

use synth_data::{LoadOptions, Loaded, ReadOptions};
use synth_table::{ColumnProfile, Profile, SdType};

use crate::input::{load_with, read_metadata};

#[derive(clap::Args)]
pub struct ProfileArgs {
    /// The table: CSV, JSON, NDJSON, XLSX or Parquet (format taken from the content).
    pub file: PathBuf,
    /// SDV single-table metadata JSON to use instead of inferring it.
    #[arg(long)]
    pub metadata: Option<PathBuf>,
    /// XLSX sheet to read (default: the first).
    #[arg(long)]
    pub sheet: Option<String>,
    /// Print the profile and the SDV metadata as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the constraints every row keeps (as `synth generate --constraints` reads them)
    /// to this file.
    #[arg(long, value_name = "FILE")]
    pub suggest_constraints: Option<PathBuf>,
}

/// Profile a file and print the result; errors are messages for the user.
pub fn run(args: ProfileArgs) -> Result<(), String> {
    let options = LoadOptions {
        read: ReadOptions {
            sheet: args.sheet,
            ..ReadOptions::default()
        },
        metadata: args.metadata.as_deref().map(read_metadata).transpose()?,
        profile: true,
        ..LoadOptions::default()
    };
    let Loaded {
        format,
        warnings,
        metadata,
        profile,
        table,
        ..
    } = load_with(&args.file, &options)?;
    let profile = profile.expect("load profiles when asked to");
    let suggested = synth_constraints::discover(&table, &metadata);
    if let Some(path) = &args.suggest_constraints {
        let text = serde_json::to_string_pretty(&suggested).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        // Composed by hand rather than through `json!`: a `serde_json::Value` would sort the
        // columns by name, and metadata and profile serialise in column order.
        let part = |v: Result<String, serde_json::Error>| {
            v.map(|t| t.replace('\n', "\n  "))
                .map_err(|e| e.to_string())
        };
        let text = format!(
            "{{\n  \"file\": {},\n  \"format\": {},\n  \"warnings\": {},\n  \"metadata\": {},\n  \"profile\": {},\n  \"suggested_constraints\": {}\n}}",
            part(serde_json::to_string(&args.file.display().to_string()))?,
            part(serde_json::to_string(&format))?,
            part(serde_json::to_string(&warnings))?,
            part(serde_json::to_string_pretty(&metadata))?,
            part(serde_json::to_string_pretty(&profile))?,
            part(serde_json::to_string_pretty(&suggested))?,
        );
        println!("{text}");
    } else {
        let title = format!("{} ({})", args.file.display(), format.extension());
        print!("{}", render(&title, &warnings, &profile));
        if !suggested.is_empty() {
            println!("\nconstraints every row keeps:");
            for c in &suggested {
                println!("  {}", c.describe());
            }
        }
    }
    Ok(())
}

fn sdtype_name(t: SdType) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A short human summary of a column's statistics.
fn summary(c: &ColumnProfile) -> String {
    if let Some(n) = &c.numeric {
        let median = n.quantiles.iter().find(|q| q.q == 0.5).map(|q| q.value);
        let mut s = format!("min {} · max {} · mean {:.4}", n.min, n.max, n.mean);
        if let Some(std) = n.std {
            let _ = write!(s, " · std {std:.4}");
        }
        if let Some(m) = median {
            let _ = write!(s, " · median {m}");
        }
        return s;
    }
    if let Some(d) = &c.datetime {
        return format!("{} → {} · mean {}", d.min, d.max, d.mean);
    }
    if !c.top.is_empty() {
        let shown: Vec<String> = c
            .top
            .iter()
            .take(4)
            .map(|t| format!("{} {:.1}%", t.value, t.frequency * 100.0))
            .collect();
        let more = if c.distinct > 4 { " · …" } else { "" };
        return format!("{}{more}", shown.join(" · "));
    }
    String::new()
}

/// The profile as an aligned text table, one line per column plus the inference reason.
fn render(title: &str, warnings: &[String], p: &Profile) -> String {
    let mut out = format!("{title}: {} rows × {} columns\n", p.n_rows, p.n_columns);
    for w in warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let rows: Vec<[String; 6]> = p
        .columns
        .iter()
        .map(|c| {
            [
                c.name.clone(),
                sdtype_name(c.sdtype),
                c.confidence.map_or("-".into(), |x| format!("{x:.2}")),
                c.nulls.to_string(),
                c.distinct.to_string(),
                summary(c),
            ]
        })
        .collect();
    let head = ["column", "sdtype", "conf", "nulls", "distinct", "summary"];
    let mut widths = head.map(|h| h.chars().count());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i == 5 {
                s.push_str(cell);
            } else if (2..5).contains(&i) {
                let _ = write!(s, "{}{cell}  ", " ".repeat(pad));
            } else {
                let _ = write!(s, "{cell}{}  ", " ".repeat(pad));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    out.push_str(&line(head));
    for (r, c) in rows.iter().zip(&p.columns) {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
        if let Some(reason) = &c.reason {
            let _ = writeln!(out, "{}  ↳ {reason}", " ".repeat(widths[0]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_data::{infer_metadata, profile};
    use synth_table::{Column, ColumnData, Table};

    #[test]
    fn renders_a_row_per_column_with_its_statistics() {
        let t = Table::new(vec![
            Column {
                name: "price".into(),
                data: ColumnData::Int((0..100).map(|i| Some((i * 37) % 100 + 1)).collect()),
            },
            Column {
                name: "city".into(),
                data: ColumnData::Str(
                    (0..100)
                        .map(|i| Some(["Paris", "Lyon"][i % 2].to_owned()))
                        .collect(),
                ),
            },
        ])
        .unwrap();
        let inf = infer_metadata(&t);
        let p = profile(&t, &inf.metadata, Some(&inf));
        let text = render("t.csv (csv)", &["a warning".into()], &p);
        assert!(text.starts_with("t.csv (csv): 100 rows × 2 columns\nwarning: a warning\n"));
        let price = text.lines().find(|l| l.starts_with("price")).unwrap();
        assert!(
            price.contains("numerical") && price.contains("max 100"),
            "{text}"
        );
        let city = text.lines().find(|l| l.starts_with("city")).unwrap();
        assert!(
            city.contains("categorical") && city.contains("Lyon 50.0%"),
            "{text}"
        );
    }
}
