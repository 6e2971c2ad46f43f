//! `synth evaluate`: how close a synthetic table is to the real one, and how private —
//! the same report the platform stores for each generation.

use std::path::{Path, PathBuf};

use synth_data::Loaded;
use synth_evaluate::{EvaluateOptions, EvaluationReport};

use crate::input::{load, read_metadata};

#[derive(clap::Args)]
pub struct EvaluateArgs {
    /// The real table the synthesizer learned from.
    real: PathBuf,
    /// The synthetic table.
    synthetic: PathBuf,
    /// SDV single-table metadata; inferred from the real table when absent.
    #[arg(long)]
    metadata: Option<PathBuf>,
    /// Real rows the synthesizer never saw (for the DCR share and ML efficacy).
    #[arg(long)]
    holdout: Option<PathBuf>,
    /// Column to predict for ML efficacy.
    #[arg(long)]
    target: Option<String>,
    /// Random seed of the scores that sample (the same seed gives the same report).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as one JSON document.
    #[arg(long)]
    json: bool,
    /// Also write a self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
}

fn score(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".into(), |s| format!("{s:.4}"))
}

fn print_table(r: &EvaluationReport) {
    // With a holdout, each quality score beside what the holdout itself scores.
    let y = r.holdout_yardstick.as_ref();
    let beside = |v: Option<Option<f64>>| {
        v.map_or(String::new(), |v| {
            format!("  (holdout vs training {})", score(v))
        })
    };
    println!(
        "quality            {}{}",
        score(r.quality.score),
        beside(y.map(|y| y.quality))
    );
    println!(
        "  column shapes    {}{}",
        score(r.quality.column_shapes),
        beside(y.map(|y| y.column_shapes))
    );
    println!(
        "  column pairs     {}{}",
        score(r.quality.column_pair_trends),
        beside(y.map(|y| y.column_pair_trends))
    );
    println!("diagnostic         {}", score(r.diagnostic.score));
    println!("  data validity    {}", score(r.diagnostic.data_validity));
    println!("  data structure   {:.4}", r.diagnostic.data_structure);
    println!("privacy");
    println!(
        "  DCR share        {}  (~0.5: no memorisation)",
        score(r.privacy.dcr_share)
    );
    println!("  exact matches    {:.4}", r.privacy.exact_match_share);
    println!("  median NNDR      {:.4}", r.privacy.median_nndr);
    if let Some(e) = &r.ml_efficacy {
        println!(
            "ML efficacy ({}, predicting {:?} with {})",
            e.task, e.target, e.model
        );
        for (name, s) in [("real", &e.real), ("synthetic", &e.synthetic)] {
            println!(
                "  trained on {name:<9} accuracy {}  f1 {}  r2 {}",
                score(s.accuracy),
                score(s.f1_macro),
                score(s.r2)
            );
        }
    }
    println!("columns");
    for c in &r.quality.columns {
        println!("  {:<24} {:<14} {}", c.column, c.metric, score(c.score));
    }
}

pub fn run(args: EvaluateArgs) -> Result<(), String> {
    // The real table's metadata (given, or inferred from it) types all three tables.
    let given = args.metadata.as_deref().map(read_metadata).transpose()?;
    let Loaded {
        table: real,
        metadata,
        ..
    } = load(&args.real, given)?;
    let typed = |path: &Path| load(path, Some(metadata.clone())).map(|l| l.table);
    let synthetic = typed(&args.synthetic)?;
    let holdout = args.holdout.as_deref().map(typed).transpose()?;
    let options = EvaluateOptions {
        seed: args.seed,
        target: args.target.clone(),
        holdout: holdout.as_ref(),
        ..EvaluateOptions::default()
    };
    let report = synth_evaluate::evaluate(&real, &synthetic, &metadata, &options)
        .map_err(|e| e.to_string())?;
    if let Some(path) = &args.html {
        let html = synth_evaluate::render_html(&report, &real, &synthetic, &metadata);
        std::fs::write(path, html).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).expect("report serialises")
        );
    } else {
        print_table(&report);
    }
    Ok(())
}
