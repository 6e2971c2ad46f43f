//! Step-level micro-benchmark of CTGAN at the shapes of the speed goal in the CTGAN issue:
//! batch 500, noise 128 + a condition of ~100, generator (256, 256) with batch norm and ~15
//! spans, critic pac 10 over (256, 256) with dropout, the hand-written gradient penalty, Adam.
//! Prints milliseconds per D+G step (median over epochs) and the transformer and sampling
//! times. Run: `cargo bench -p synth-engine --bench ctgan_step [-- EPOCHS]`.
//!
//! `-- --csv DIR` writes the table (`step.csv`) and its metadata (`step.json`) instead, so
//! the reference implementation can be timed on exactly these shapes: its seconds per epoch
//! divided by the 10 steps of an epoch is its time per step.

use std::time::Instant;

use synth_engine::{CtganParams, DataTransformer, FitOptions, Synthesizer, TransformerOptions};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ROWS: usize = 5000;

/// 5 continuous columns with 9 separated modes each and 5 categorical columns of 20
/// categories: about 150 encoded values, a 100-wide condition and 15 spans.
fn table() -> (Table, Metadata) {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut columns = Vec::new();
    let mut meta = Vec::new();
    for c in 0..5 {
        let values = (0..ROWS)
            .map(|_| {
                let mode = (next() * 9.0).floor();
                Some(mode * 10.0 + (next() + next() + next() - 1.5) + c as f64)
            })
            .collect();
        columns.push(Column {
            name: format!("x{c}"),
            data: ColumnData::Float(values),
        });
        meta.push((format!("x{c}"), ColumnMetadata::new(SdType::Numerical)));
    }
    for c in 0..5 {
        let values = (0..ROWS)
            .map(|_| {
                let u = next();
                Some(format!("k{}", (u * u * 20.0).floor() as usize))
            })
            .collect();
        columns.push(Column {
            name: format!("c{c}"),
            data: ColumnData::Str(values),
        });
        meta.push((format!("c{c}"), ColumnMetadata::new(SdType::Categorical)));
    }
    (Table::new(columns).unwrap(), Metadata::new(meta))
}

/// CPU seconds used so far by the whole process (all threads), from /proc/self/stat; on a
/// shared machine this is steadier than wall time. `None` where /proc is unavailable.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Writes the table as CSV and its metadata as SDV JSON into `dir`.
fn write_csv(dir: &str, real: &Table, meta: &Metadata) {
    use std::fmt::Write;
    let mut out = real
        .columns
        .iter()
        .map(|c| c.name.clone())
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    for i in 0..real.n_rows() {
        let mut line = String::new();
        for (j, c) in real.columns.iter().enumerate() {
            if j > 0 {
                line.push(',');
            }
            match &c.data {
                ColumnData::Float(v) => write!(line, "{}", v[i].unwrap()).unwrap(),
                ColumnData::Str(v) => line.push_str(v[i].as_deref().unwrap()),
                _ => unreachable!("the benchmark table has floats and strings"),
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    let dir = std::path::Path::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("step.csv"), out).unwrap();
    std::fs::write(
        dir.join("step.json"),
        serde_json::to_string_pretty(meta).unwrap(),
    )
    .unwrap();
    println!("wrote {}", dir.join("step.csv").display());
}

fn main() {
    // As `synth` does: candle's elementwise pool stays on the calling thread.
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // SAFETY: single-threaded here, before anything reads the environment.
        unsafe { std::env::set_var("CANDLE_NUM_THREADS", "1") };
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (real, meta) = table();
    if let Some(i) = args.iter().position(|a| a == "--csv") {
        write_csv(args.get(i + 1).expect("--csv DIR"), &real, &meta);
        return;
    }
    let epochs: usize = args
        .iter()
        .find(|a| !a.starts_with('-'))
        .map(|a| a.parse().expect("EPOCHS is a number"))
        .unwrap_or(5);

    let cpu0 = cpu_seconds();
    let t = Instant::now();
    let transformer =
        DataTransformer::fit(&real, &meta, &TransformerOptions::default(), 1).unwrap();
    let fit_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let encoded = transformer.transform(&real).unwrap();
    let transform_s = t.elapsed().as_secs_f64();
    let cpu_transformer = cpu_seconds().zip(cpu0).map(|(a, b)| a - b);
    let cond: usize = transformer.discrete_spans().iter().map(|s| s.width).sum();
    println!(
        "shapes: rows {ROWS}, encoded width {}, condition {cond}, spans {}, critic input {} (pac 10)",
        encoded.width,
        transformer.spans().len(),
        (encoded.width + cond) * 10
    );
    println!(
        "transformer: fit {:.1} ms, transform {:.1} ms",
        fit_s * 1e3,
        transform_s * 1e3
    );

    let params = CtganParams {
        epochs,
        ..Default::default()
    };
    let steps = (ROWS / params.batch_size).max(1);
    let cpu1 = cpu_seconds();
    let model = synth_engine::Ctgan::fit(&real, &meta, params, FitOptions::seeded(1)).unwrap();
    let cpu_fit = cpu_seconds().zip(cpu1).map(|(a, b)| a - b);
    let mut per_step: Vec<f64> = model
        .loss_history()
        .iter()
        .map(|r| r.epoch_seconds * 1e3 / steps as f64)
        .collect();
    println!(
        "ms per D+G step by epoch: {:?}",
        per_step
            .iter()
            .map(|x| (x * 10.0).round() / 10.0)
            .collect::<Vec<_>>()
    );
    per_step.sort_by(f64::total_cmp);
    println!(
        "median {:.1} ms per D+G step (batch 500, {steps} steps per epoch, {} threads available)",
        per_step[per_step.len() / 2],
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    if let (Some(fit), Some(tf)) = (cpu_fit, cpu_transformer) {
        println!(
            "CPU time (all threads) {:.1} ms per D+G step",
            (fit - tf).max(0.0) * 1e3 / (epochs * steps) as f64
        );
    }
    let t = Instant::now();
    let out = model.sample(ROWS, 2).unwrap();
    println!(
        "sample {} rows: {:.1} ms",
        out.n_rows(),
        t.elapsed().as_secs_f64() * 1e3
    );
}
