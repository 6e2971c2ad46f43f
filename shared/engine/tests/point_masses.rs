//! Point masses end to end: a zero-inflated column (90% zeros, as capital gains are) keeps
//! its share of zeros in the synthetic table, with every model.

use synth_engine::{CtganParams, FitOptions, ModelParams, TvaeParams};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

/// `n` rows: `gain` is 0 in 90% of them and spread over 100..10,000 in the rest; `kind` is a
/// category that the non-zero rows lean towards.
fn zero_inflated(n: usize) -> (Table, Metadata) {
    let gain = (0..n)
        .map(|i| {
            let spread = (i * 7919 % 1000) as f64;
            Some(if i % 10 == 0 {
                100.0 + spread * 9.9
            } else {
                0.0
            })
        })
        .collect();
    let kind = (0..n)
        .map(|i| Some(["a", "b", "c"][if i % 10 == 0 { i % 2 } else { i % 3 }].to_owned()))
        .collect();
    let table = Table::new(vec![
        Column {
            name: "gain".into(),
            data: ColumnData::Float(gain),
        },
        Column {
            name: "kind".into(),
            data: ColumnData::Str(kind),
        },
    ])
    .unwrap();
    let metadata = Metadata::new(vec![
        ("gain".into(), ColumnMetadata::new(SdType::Numerical)),
        ("kind".into(), ColumnMetadata::new(SdType::Categorical)),
    ]);
    (table, metadata)
}

fn zero_share(params: ModelParams) -> f64 {
    let (t, m) = zero_inflated(1000);
    let model = synth_engine::fit(&t, &m, &params, FitOptions::seeded(3)).unwrap();
    let out = model.sample(2000, 1).unwrap();
    let ColumnData::Float(gain) = &out.column("gain").unwrap().data else {
        panic!("floats")
    };
    let zeros = gain.iter().filter(|g| **g == Some(0.0)).count();
    let share = zeros as f64 / gain.len() as f64;
    eprintln!(
        "{}: {share:.3} of the synthetic rows are 0 (real: 0.900)",
        params.model_name()
    );
    share
}

#[test]
fn ctgan_keeps_the_share_of_a_point_mass() {
    let share = zero_share(ModelParams::Ctgan(CtganParams {
        epochs: 150,
        batch_size: 100,
        ..Default::default()
    }));
    assert!((share - 0.9).abs() < 0.1, "{share}");
}

#[test]
fn tvae_keeps_the_share_of_a_point_mass() {
    let share = zero_share(ModelParams::Tvae(TvaeParams {
        epochs: 300,
        batch_size: 100,
        ..Default::default()
    }));
    assert!((share - 0.9).abs() < 0.1, "{share}");
}

#[test]
fn argn_keeps_the_share_of_a_point_mass_within_two_points() {
    // The zeros are one exact token: the share is the model's softmax, learnt directly.
    let share = zero_share(ModelParams::Argn(synth_engine::ArgnParams::default()));
    assert!((share - 0.9).abs() < 0.02, "{share}");
}
