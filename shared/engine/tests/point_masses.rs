//! Point masses end to end: a zero-inflated column (90% zeros, as capital gains are) and a
//! column that hits its upper bound in a quarter of the rows (days overdue, capped) keep
//! those shares within two points in the synthetic table, with every model.

mod common;

use common::{model, table_of};
use synth_engine::{FitOptions, ModelParams};
use synth_table::{ColumnData, Metadata, SdType, Table};

/// `n` rows: `gain` is 0 in 90% of them and spread over 100..10,000 in the rest; `overdue`
/// is 90 (its cap) in 25% of them and spread over 0..89 in the rest; `kind` is a category
/// that the non-zero gains lean towards.
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
    let overdue = (0..n)
        .map(|i| Some(if i % 4 == 1 { 90 } else { (i * 37 % 90) as i64 }))
        .collect();
    let kind = (0..n)
        .map(|i| Some(["a", "b", "c"][if i % 10 == 0 { i % 2 } else { i % 3 }].to_owned()))
        .collect();
    table_of(vec![
        ("gain", SdType::Numerical, ColumnData::Float(gain)),
        ("overdue", SdType::Numerical, ColumnData::Int(overdue)),
        ("kind", SdType::Categorical, ColumnData::Str(kind)),
    ])
}

/// The synthetic shares of `gain` = 0 and `overdue` = 90 (real: 0.90 and 0.25).
fn shares(params: ModelParams) -> (f64, f64) {
    let (t, m) = zero_inflated(1000);
    let model = synth_engine::fit(&t, &m, &params, FitOptions::seeded(3)).unwrap();
    let out = model.sample(2000, 1).unwrap();
    let ColumnData::Float(gain) = &out.column("gain").unwrap().data else {
        panic!("floats")
    };
    let ColumnData::Int(overdue) = &out.column("overdue").unwrap().data else {
        panic!("integers")
    };
    let share = |hits: usize| hits as f64 / out.n_rows() as f64;
    let zeros = share(gain.iter().filter(|g| **g == Some(0.0)).count());
    let capped = share(overdue.iter().filter(|d| **d == Some(90)).count());
    eprintln!(
        "{}: gain 0 in {zeros:.3} of the synthetic rows (real 0.900), overdue 90 in {capped:.3} \
         (real 0.250)",
        params.model_name()
    );
    (zeros, capped)
}

/// `params`' synthetic shares are within two points of the real ones.
fn assert_within_two_points(params: ModelParams) {
    let (zeros, capped) = shares(params);
    assert!((zeros - 0.9).abs() <= 0.02, "gain = 0 in {zeros}");
    assert!((capped - 0.25).abs() <= 0.02, "overdue = 90 in {capped}");
}

#[test]
fn ctgan_keeps_the_shares_of_point_masses_within_two_points() {
    assert_within_two_points(model("ctgan", 150, 100));
}

#[test]
fn tvae_keeps_the_shares_of_point_masses_within_two_points() {
    assert_within_two_points(model("tvae", 300, 100));
}

#[test]
fn argn_keeps_the_shares_of_point_masses_within_two_points() {
    // Each spike is one exact token: the share is the model's softmax, learnt directly.
    assert_within_two_points(synth_engine::ArgnParams::default().into());
}

#[test]
fn rows_conditioned_through_ctgans_input_keep_the_shares_the_model_draws() {
    // Conditioned on kind = "c", which no non-zero gain holds: the conditional vector asks
    // the model for those rows, and their share of zeros is the model's, not the table's.
    let (t, m) = zero_inflated(1000);
    let params = model("ctgan", 150, 100);
    let model = synth_engine::fit(&t, &m, &params, FitOptions::seeded(3)).unwrap();
    let out = model
        .sample_conditional(1000, &[synth_engine::Condition::equals("kind", "c")], 1)
        .unwrap();
    let ColumnData::Float(gain) = &out.column("gain").unwrap().data else {
        panic!("floats")
    };
    let zeros = gain.iter().filter(|g| **g == Some(0.0)).count() as f64 / 1000.0;
    assert!(zeros > 0.93, "{zeros}");
}
