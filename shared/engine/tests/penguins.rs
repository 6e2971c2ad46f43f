//! End to end: fit CTGAN and TVAE for a few epochs on the penguins dataset and check that the sample
//! has the real table's shape, column types, categories, ranges and (roughly) null rates.
//! Cheap on purpose: it checks plumbing, not quality.

use std::collections::HashSet;
use std::path::Path;

mod common;

use common::{model, table_of};
use synth_engine::{FitOptions, ModelParams};
use synth_table::{ColumnData, Metadata, SdType, Table};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/data/penguins.csv"
);

/// A tiny CSV reader for this file (no quoting); empty fields are missing values. The real
/// readers live in synth-data, which the engine must not depend on.
fn read_penguins(path: &Path) -> (Table, Metadata) {
    let text = std::fs::read_to_string(path).expect("penguins.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let rows: Vec<Vec<&str>> = lines
        .filter(|l| !l.is_empty())
        .map(|l| l.split(',').collect())
        .collect();
    let field = |j: usize| {
        rows.iter()
            .map(move |r| Some(r[j]).filter(|v| !v.is_empty() && *v != "NA"))
    };
    let columns = header.iter().enumerate().map(|(j, name)| {
        let (sdtype, data) = match *name {
            "species" | "island" | "sex" => (
                SdType::Categorical,
                ColumnData::Str(field(j).map(|v| v.map(str::to_owned)).collect()),
            ),
            "bill_length_mm" | "bill_depth_mm" => (
                SdType::Numerical,
                ColumnData::Float(field(j).map(|v| v.map(|v| v.parse().unwrap())).collect()),
            ),
            _ => (
                SdType::Numerical,
                ColumnData::Int(field(j).map(|v| v.map(|v| v.parse().unwrap())).collect()),
            ),
        };
        (*name, sdtype, data)
    });
    table_of(columns.collect())
}

fn null_rate(c: &ColumnData) -> f64 {
    c.null_count() as f64 / c.len() as f64
}

fn strings(c: &ColumnData) -> HashSet<String> {
    match c {
        ColumnData::Str(v) => v.iter().flatten().cloned().collect(),
        other => panic!("expected strings, got {other:?}"),
    }
}

fn range(c: &ColumnData) -> (f64, f64) {
    let v: Vec<f64> = match c {
        ColumnData::Float(v) => v.iter().flatten().copied().collect(),
        ColumnData::Int(v) => v.iter().flatten().map(|x| *x as f64).collect(),
        other => panic!("expected numbers, got {other:?}"),
    };
    (
        v.iter().copied().fold(f64::INFINITY, f64::min),
        v.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    )
}

/// The sample has the real table's columns, types, categories, ranges and (roughly) null
/// rates.
fn check_faithful(real: &Table, fake: &Table, n: usize) {
    assert_eq!(fake.n_rows(), n);
    let names = |t: &Table| t.columns.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(fake), names(real));
    for (r, f) in real.columns.iter().zip(&fake.columns) {
        assert_eq!(
            std::mem::discriminant(&r.data),
            std::mem::discriminant(&f.data),
            "type of {}",
            r.name
        );
        match &r.data {
            ColumnData::Str(_) => assert!(
                strings(&f.data).is_subset(&strings(&r.data)),
                "categories of {}",
                r.name
            ),
            _ => {
                let ((rlo, rhi), (flo, fhi)) = (range(&r.data), range(&f.data));
                assert!(
                    flo >= rlo && fhi <= rhi,
                    "{}: [{flo}, {fhi}] outside [{rlo}, {rhi}]",
                    r.name
                );
            }
        }
        let (rn, fnr) = (null_rate(&r.data), null_rate(&f.data));
        eprintln!("{}: null rate real {rn:.3}, synthetic {fnr:.3}", r.name);
        assert!(
            (rn - fnr).abs() < 0.1,
            "{}: null rate {fnr} vs real {rn}",
            r.name
        );
    }
}

/// Fit `params` on the penguins (seed 42), check the plumbing, and sample 1000 rows: each
/// species' share of them, with its real share.
fn fit_and_sample(params: ModelParams) -> Vec<(&'static str, f64, f64)> {
    let (real, meta) = read_penguins(Path::new(DATA));
    assert_eq!(real.n_rows(), 344);
    let model = synth_engine::fit(&real, &meta, &params, FitOptions::seeded(42)).unwrap();
    assert_eq!(model.model_name(), params.model_name());
    assert_eq!(model.loss_history().len(), params.epochs());
    let fake = model.sample(1000, 1).unwrap();
    check_faithful(&real, &fake, 1000);
    let ColumnData::Str(species) = &fake.column("species").unwrap().data else {
        unreachable!()
    };
    let shares = [
        ("Adelie", 152.0 / 344.0),
        ("Gentoo", 124.0 / 344.0),
        ("Chinstrap", 68.0 / 344.0),
    ];
    shares
        .into_iter()
        .map(|(name, real_share)| {
            let n = species
                .iter()
                .filter(|s| s.as_deref() == Some(name))
                .count();
            let share = n as f64 / 1000.0;
            eprintln!("{name}: real {real_share:.3}, synthetic {share:.3}");
            (name, share, real_share)
        })
        .collect()
}

#[test]
fn ctgan_learns_penguins_and_samples_a_faithful_table() {
    let shares = fit_and_sample(model("ctgan", 30, 100));
    // Every species comes back, in roughly real proportions.
    for (name, share, real_share) in shares {
        let near = (share - real_share).abs() < 0.15;
        assert!(near, "{name}: {share} vs {real_share}");
    }
}

#[test]
fn tvae_learns_penguins_and_samples_a_faithful_table() {
    let shares = fit_and_sample(model("tvae", 100, 50));
    // Every species comes back.
    for (name, share, _) in shares {
        assert!(share > 0.02, "{name}: {share}");
    }
}
