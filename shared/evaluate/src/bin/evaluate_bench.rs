//! Times quality + diagnostic + privacy on generated 50k-row real, holdout and synthetic
//! tables with 15 columns (8 numerical, 1 datetime, 5 categorical, 1 boolean), the issue's
//! target being under 10 s. Run: `cargo run --release -p synth-evaluate --bin evaluate_bench
//! [ROWS]`.

use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use synth_evaluate::{
    PairOptions, PrivacyOptions, diagnostic_report, privacy_report, quality_report,
};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

/// Correlated numbers (a shared latent), a datetime, categories driven by the latent too.
fn table(rows: usize, seed: u64, noise: f64) -> Table {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let latent: Vec<f64> = (0..rows).map(|_| rng.random::<f64>() * 2.0 - 1.0).collect();
    let mut columns = Vec::new();
    for k in 0..8 {
        let v = latent
            .iter()
            .map(|z| {
                let x = z * (k as f64 + 1.0) + rng.random::<f64>() * (noise + k as f64 * 0.3);
                (rng.random::<f64>() > 0.01).then_some((x * 100.0).round() / 100.0)
            })
            .collect();
        columns.push(Column {
            name: format!("num{k}"),
            data: ColumnData::Float(v),
        });
    }
    let base = 1_600_000_000_000_000i64;
    let dates = latent
        .iter()
        .map(|z| Some(base + ((z + 1.0) * 1.5e13) as i64 + rng.random_range(0..86_400_000_000)))
        .collect();
    columns.push(Column {
        name: "when".into(),
        data: ColumnData::Datetime(dates),
    });
    for k in 0..5 {
        let cats = 3 + k * 4;
        let v = latent
            .iter()
            .map(|z| {
                let c = if rng.random::<f64>() < 0.5 {
                    (((z + 1.0) / 2.0) * cats as f64) as usize
                } else {
                    rng.random_range(0..cats)
                };
                Some(format!("c{}", c.min(cats - 1)))
            })
            .collect();
        columns.push(Column {
            name: format!("cat{k}"),
            data: ColumnData::Str(v),
        });
    }
    let flags = latent
        .iter()
        .map(|z| Some(*z + rng.random::<f64>() - 0.5 > 0.0))
        .collect();
    columns.push(Column {
        name: "flag".into(),
        data: ColumnData::Bool(flags),
    });
    Table::new(columns).expect("table")
}

fn metadata() -> Metadata {
    let mut cols: Vec<(String, ColumnMetadata)> = (0..8)
        .map(|k| (format!("num{k}"), ColumnMetadata::new(SdType::Numerical)))
        .collect();
    cols.push(("when".into(), ColumnMetadata::new(SdType::Datetime)));
    cols.extend((0..5).map(|k| (format!("cat{k}"), ColumnMetadata::new(SdType::Categorical))));
    cols.push(("flag".into(), ColumnMetadata::new(SdType::Boolean)));
    Metadata::new(cols)
}

fn main() {
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(50_000, |a| a.parse().expect("ROWS"));
    let meta = metadata();
    let real = table(rows, 1, 0.5);
    let holdout = table(rows, 2, 0.5);
    let synth = table(rows, 3, 0.8);
    println!(
        "rows {rows} x 15 columns, threads {}",
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let q = quality_report(&real, &synth, &meta, &PairOptions::default()).expect("quality");
    let tq = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let d = diagnostic_report(&real, &synth, &meta).expect("diagnostic");
    let td = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let p = privacy_report(
        &real,
        Some(&holdout),
        &synth,
        &meta,
        &PrivacyOptions::default(),
    )
    .expect("privacy");
    let tp = t.elapsed().as_secs_f64();
    println!(
        "quality    {tq:7.3} s  (score {:.4})",
        q.score.unwrap_or(f64::NAN)
    );
    println!(
        "diagnostic {td:7.3} s  (score {:.4})",
        d.score.unwrap_or(f64::NAN)
    );
    println!(
        "privacy    {tp:7.3} s  (DCR share {:.3}, {} x {} sampled rows)",
        p.dcr_share.unwrap_or(f64::NAN),
        p.sampled_synthetic_rows,
        p.sampled_reference_rows
    );
    println!("total      {:7.3} s", tq + td + tp);
}
