use candle_core::{DType, Device};
use synth_table::{Column, ColumnData, Metadata, SdType, Table};

use super::network::{ArgnConfig, ArgnNet};
use super::tokens::{Bins, Codec, Range, Tokenizer};
use super::train::{TABLE_ORDER_SHARE, rows_per_pass, training_orders, visible_before};
use super::*;
use crate::nn::VarBuilder;
use crate::random::rng_for;
use crate::test_support::{
    assert_conditions_hold, assert_reloads, assert_reports_every_epoch, table, table_of,
};
use crate::{Condition, EngineError, FitOptions};

fn small() -> ArgnParams {
    ArgnParams {
        epochs: 30,
        batch_size: 64,
        embedding_dim: Some(8),
        hidden_dims: vec![32],
        learning_rate: 5e-3,
        ..ArgnParams::default()
    }
}

fn fit(seed: u64, rows: usize) -> Argn {
    let (t, m) = table(rows);
    Argn::fit(&t, &m, small(), FitOptions::seeded(seed)).unwrap()
}

fn floats(t: &Table, name: &str) -> Vec<Option<f64>> {
    match &t.column(name).unwrap().data {
        ColumnData::Float(v) => v.clone(),
        other => panic!("{name}: floats expected, got {other:?}"),
    }
}

fn strings(t: &Table, name: &str) -> Vec<Option<String>> {
    match &t.column(name).unwrap().data {
        ColumnData::Str(v) => v.clone(),
        other => panic!("{name}: strings expected, got {other:?}"),
    }
}

fn one_column(name: &str, data: ColumnData, sdtype: SdType) -> (Table, Metadata) {
    table_of(vec![(name, sdtype, data)])
}

fn numeric(t: &Tokenizer) -> &Bins {
    match &t.columns[0] {
        Codec::Numeric(b) => b,
        _ => panic!("a numeric column"),
    }
}

#[test]
fn the_discretiser_round_trips_exact_values_and_keeps_binned_ones_in_their_bins() {
    // Few distinct values: each its own token, decoded exactly; nulls are a token.
    let few: Vec<Option<f64>> = (0..300)
        .map(|i| (i % 17 != 0).then_some(f64::from(i % 8) * 2.5))
        .collect();
    let (t, m) = one_column("x", ColumnData::Float(few.clone()), SdType::Numerical);
    let tk = Tokenizer::fit(&t, &m, 100, Some(1)).unwrap();
    let tokens: Vec<u32> = tk.encode(&t).unwrap();
    let back = tk.columns[0].decode(&tokens, Range::ALL, &mut rng_for(0, 0));
    assert_eq!(back, ColumnData::Float(few));
    // Many distinct values (2 decimals), a point mass of zeros: zeros stay exact, every
    // other value decodes inside its own bin, on two decimals, inside the real range.
    let many: Vec<Option<f64>> = (0..2000)
        .map(|i| {
            Some(if i % 4 == 0 {
                0.0
            } else {
                f64::from(i * 37 % 1999) / 100.0 + 0.5
            })
        })
        .collect();
    let (t, m) = one_column("x", ColumnData::Float(many.clone()), SdType::Numerical);
    let tk = Tokenizer::fit(&t, &m, 40, Some(1)).unwrap();
    let bins = numeric(&tk);
    let tokens = tk.encode(&t).unwrap();
    let ColumnData::Float(back) = tk.columns[0].decode(&tokens, Range::ALL, &mut rng_for(0, 0))
    else {
        panic!("floats")
    };
    let (lo, hi) = (0.0, 19.98 + 0.5);
    for ((real, got), token) in many.iter().zip(&back).zip(&tokens) {
        let (real, got) = (real.unwrap(), got.unwrap());
        if real == 0.0 {
            assert_eq!(got, 0.0);
        } else {
            // Inside its bin, give or take the rounding to two decimals.
            let (a, z) = bins.span_of(*token).unwrap();
            assert!(
                (a - 0.005..=z + 0.005).contains(&got),
                "{got} left [{a}, {z}] of {real}"
            );
        }
        assert!((lo..=hi).contains(&got), "{got}");
        assert!(((got * 100.0).round() - got * 100.0).abs() < 1e-6, "{got}");
    }
    // A range keeps only the tokens (and the values inside them) that meet it.
    let range = Range {
        low: Some((5.0, true)),
        high: Some((7.5, false)),
    };
    let w = bins.range_weights(range);
    let allowed: Vec<u32> = (0..w.len() as u32)
        .filter(|&t| w[t as usize] > 0.0)
        .collect();
    let ColumnData::Float(inside) =
        tk.columns[0].decode(&allowed.repeat(20), range, &mut rng_for(1, 0))
    else {
        panic!("floats")
    };
    assert!(
        inside
            .iter()
            .all(|v| v.is_some_and(|x| (5.0..7.5).contains(&x)))
    );
    // Integers and datetimes come back on their own grid.
    let day = 86_400_000_000i64;
    let dates: Vec<Option<i64>> = (0..1000)
        .map(|i| Some(19_000 * day + i * 7 % 900 * day))
        .collect();
    let (t, m) = one_column("d", ColumnData::Datetime(dates), SdType::Datetime);
    let tk = Tokenizer::fit(&t, &m, 30, Some(1)).unwrap();
    let tokens = tk.encode(&t).unwrap();
    let ColumnData::Datetime(back) = tk.columns[0].decode(&tokens, Range::ALL, &mut rng_for(2, 0))
    else {
        panic!("datetimes")
    };
    assert!(back.iter().all(|d| d.is_some_and(|d| d % day == 0)));
}

#[test]
fn a_skewed_column_keeps_its_upper_quantiles_inside_wide_bins() {
    // 600 rows (a dozen bins): a lognormal amount, whose top bin runs from about the 92nd
    // percentile to near the largest value. Drawn evenly inside that bin, the 95th
    // percentile came back 1.6 times the real one.
    use rand_distr::{Distribution, LogNormal};
    let mut rng = rng_for(3, 0);
    let dist = LogNormal::<f64>::new(7.0, 1.0).unwrap();
    let amounts: Vec<Option<f64>> = (0..600)
        .map(|_| Some((dist.sample(&mut rng) * 100.0).round() / 100.0))
        .collect();
    let (t, m) = one_column(
        "amount",
        ColumnData::Float(amounts.clone()),
        SdType::Numerical,
    );
    let tk = Tokenizer::fit(&t, &m, 100, Some(5)).unwrap();
    let tokens = tk.encode(&t).unwrap();
    // Each real row's token, decoded ten times over: the column as a perfect model draws it.
    let drawn: Vec<u32> = (0..10).flat_map(|_| tokens.iter().copied()).collect();
    let ColumnData::Float(back) = tk.columns[0].decode(&drawn, Range::ALL, &mut rng) else {
        panic!("floats")
    };
    let quantile = |v: &[Option<f64>], q: f64| {
        let mut v: Vec<f64> = v.iter().flatten().copied().collect();
        v.sort_by(f64::total_cmp);
        v[((v.len() - 1) as f64 * q) as usize]
    };
    for q in [0.5, 0.75, 0.9, 0.95, 0.975] {
        let (real, got) = (quantile(&amounts, q), quantile(&back, q));
        assert!(
            (got / real - 1.0).abs() < 0.1,
            "q{q}: {got:.0} drawn against {real:.0} real"
        );
    }
    // A range that cuts the top bin weighs each token by the share of its rows inside, as
    // the values are drawn: the rows a perfect model keeps under `amount <= q97` are the
    // real ones below it (by the bin's width, the cut part of the top bin got far too few).
    let q = quantile(&amounts, 0.97);
    let range = Range {
        low: None,
        high: Some((q, true)),
    };
    let w = numeric(&tk).range_weights(range);
    let kept: f64 = tokens.iter().map(|&t| w[t as usize]).sum();
    let real = amounts.iter().flatten().filter(|&&x| x <= q).count() as f64;
    assert!(
        (kept / real - 1.0).abs() < 0.015,
        "{kept:.0} kept, {real} real"
    );
    let ColumnData::Float(cut) = tk.columns[0].decode(&drawn, range, &mut rng) else {
        panic!("floats")
    };
    assert!(cut.iter().flatten().all(|&x| x <= q));
}

#[test]
fn training_orders_are_the_tables_for_a_share_of_rows_and_random_for_the_others() {
    let (rows, columns) = (4000, 6);
    let position = training_orders(rows, columns, &mut rng_for(5, 0));
    let table: Vec<usize> = (0..columns).collect();
    let in_table_order = position
        .chunks_exact(columns)
        .filter(|p| *p == table.as_slice())
        .count();
    // A random order is the table's 1 time in 720 as well.
    let expected = rows as f64 * (TABLE_ORDER_SHARE + (1.0 - TABLE_ORDER_SHARE) / 720.0);
    assert!(
        (in_table_order as f64 - expected).abs() < 0.05 * rows as f64,
        "{in_table_order} of {rows} rows in the table's order"
    );
    // The others cover the orders: every column comes first in some row, and last in some.
    for j in 0..columns {
        assert!(
            position.chunks_exact(columns).any(|p| p[j] == 0),
            "{j} first"
        );
        assert!(
            position.chunks_exact(columns).any(|p| p[j] == columns - 1),
            "{j} last"
        );
    }
}

#[test]
fn a_regressor_never_sees_its_own_column_or_a_later_one() {
    let (rows, columns) = (40, 5);
    let position = training_orders(rows, columns, &mut rng_for(3, 0));
    for row in position.chunks_exact(columns) {
        let mut sorted = row.to_vec();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..columns).collect::<Vec<_>>(), "a permutation");
    }
    let config = ArgnConfig {
        vocab: vec![3, 4, 2, 5, 3],
        embedding_dim: 4,
        hidden: vec![8],
        ordinal: [3, 4, 2, 5, 3]
            .iter()
            .map(|&v| (0..v).map(|t| t as f32 / v as f32).collect())
            .collect(),
    };
    let mut rng = rng_for(4, 0);
    let net = ArgnNet::new(
        &config,
        VarBuilder::seeded(&mut rng, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let tokens: Vec<u32> = (0..rows * columns)
        .map(|i| (i * 7 % config.vocab[i % columns]) as u32)
        .collect();
    for j in 0..columns {
        let visible = visible_before(&position, columns, j);
        for (v, p) in visible
            .chunks_exact(columns)
            .zip(position.chunks_exact(columns))
        {
            for i in 0..columns {
                assert_eq!(v[i] == 1.0, p[i] < p[j], "column {i} seen by {j}");
            }
        }
        // Changing every cell the regressor must not see leaves its logits as they were;
        // changing one it sees moves them.
        let logits = |tokens: &[u32]| {
            let e = net.embed(tokens, rows).unwrap();
            let m = net.spread(&visible, rows).unwrap();
            net.logits(j, &e, &m).unwrap().to_vec2::<f32>().unwrap()
        };
        let before = logits(&tokens);
        let mut hidden_changed = tokens.clone();
        for (i, t) in hidden_changed.iter_mut().enumerate() {
            if visible[i] == 0.0 {
                *t = (*t + 1) % config.vocab[i % columns] as u32;
            }
        }
        assert_eq!(logits(&hidden_changed), before, "column {j}");
        let mut seen_changed = tokens.clone();
        for (i, t) in seen_changed.iter_mut().enumerate() {
            if visible[i] == 1.0 {
                *t = (*t + 1) % config.vocab[i % columns] as u32;
            }
        }
        let moved = logits(&seen_changed);
        let sees_any = visible.contains(&1.0);
        assert_eq!(moved != before, sees_any, "column {j}");
    }
}

#[test]
fn conditioning_on_any_columns_returns_exactly_the_requested_values() {
    let model = fit(5, 300);
    assert_conditions_hold(&model, 80, true);
    // A numerical value, a category and a boolean at once: every row has all three,
    // and nothing had to be rejected (a value no real row has is still written).
    let asked = [
        Condition::equals("size", "31.5"),
        Condition::equals("kind", "c"),
        Condition::equals("ok", "false"),
    ];
    let out = model.sample_conditional(50, &asked, 3).unwrap();
    assert_eq!(out.n_rows(), 50);
    assert!(floats(&out, "size").iter().all(|v| *v == Some(31.5)));
    assert!(
        strings(&out, "kind")
            .iter()
            .all(|v| v.as_deref() == Some("c"))
    );
    let ColumnData::Bool(ok) = &out.column("ok").unwrap().data else {
        panic!("bools")
    };
    assert!(ok.iter().all(|v| *v == Some(false)));
    let err = model
        .sample_conditional(5, &[Condition::parse("size>=1000").unwrap()], 1)
        .unwrap_err();
    assert!(matches!(err, EngineError::InvalidCondition(m) if m.contains("size")));
}

#[test]
fn completing_rows_keeps_every_given_cell_and_imputation_fills_the_nulls() {
    let model = fit(6, 300);
    let (real, _) = table(120);
    let imputed = model.complete(&real, true, 1).unwrap();
    assert_eq!(imputed.n_rows(), 120);
    for name in ["size", "kind"] {
        let (given, got) = (
            real.column(name).unwrap().data.clone(),
            imputed.column(name).unwrap().data.clone(),
        );
        for i in 0..120 {
            let (g, o) = (value(&given, i), value(&got, i));
            match g {
                Some(g) => assert_eq!(o.as_deref(), Some(g.as_str()), "{name} row {i}"),
                None => assert!(o.is_some(), "{name} row {i} stayed null"),
            }
        }
    }
    // Seed rows: one column given, the others drawn; a null given is kept as null.
    let seed = Table::new(vec![real.column("kind").unwrap().clone()]).unwrap();
    let out = model.complete(&seed, false, 2).unwrap();
    assert_eq!(strings(&out, "kind"), strings(&real, "kind"));
    assert_eq!(out.columns.len(), 3);
    // A column the model never learnt is refused.
    let stranger = Table::new(vec![Column {
        name: "colour".into(),
        data: ColumnData::Str(vec![Some("red".into())]),
    }])
    .unwrap();
    assert!(model.complete(&stranger, false, 0).is_err());
}

#[test]
fn imputing_fills_a_personal_columns_nulls_with_values_of_its_shapes() {
    // Free text is personal: generated, not modelled; imputing still fills its nulls.
    let notes: Vec<Option<String>> = (0..200)
        .map(|i| (i % 5 != 0).then(|| format!("called about order {}", 1000 + i)))
        .collect();
    let sizes = (0..200).map(|i| Some(f64::from(i % 17))).collect();
    let (t, m) = table_of(vec![
        ("note", SdType::Text, ColumnData::Str(notes.clone())),
        ("size", SdType::Numerical, ColumnData::Float(sizes)),
    ]);
    let model = Argn::fit(&t, &m, small(), FitOptions::seeded(2)).unwrap();
    let filled = strings(&model.complete(&t, true, 3).unwrap(), "note");
    for (given, got) in notes.iter().zip(&filled) {
        match given {
            Some(g) => assert_eq!(got.as_ref(), Some(g), "a given note is kept"),
            None => {
                let got = got.as_deref().expect("a null is filled");
                assert!(
                    !notes.contains(&Some(got.to_owned())),
                    "{got} is a real note"
                );
            }
        }
    }
}

fn value(data: &ColumnData, i: usize) -> Option<String> {
    crate::transformer::discrete::value_key(data, i)
}

#[test]
fn rare_categories_and_extreme_values_are_never_reproduced() {
    let n = 400;
    let mut kinds: Vec<Option<String>> = (0..n).map(|i| Some(["a", "b"][i % 2].into())).collect();
    kinds[7] = Some("planted-unique".into());
    let mut sizes: Vec<Option<f64>> = (0..n).map(|i| Some((i % 50) as f64 + 0.25)).collect();
    sizes[11] = Some(1e6);
    let (t, m) = table_of(vec![
        ("kind", SdType::Categorical, ColumnData::Str(kinds)),
        ("size", SdType::Numerical, ColumnData::Float(sizes)),
    ]);
    let model = Argn::fit(&t, &m, small(), FitOptions::seeded(1)).unwrap();
    let out = model.sample(3000, 4).unwrap();
    assert!(
        strings(&out, "kind")
            .iter()
            .all(|k| k.as_deref() != Some("planted-unique"))
    );
    let most = floats(&out, "size")
        .iter()
        .flatten()
        .copied()
        .fold(f64::MIN, f64::max);
    assert!(most <= 49.25, "{most}");
    let protected = model.protected();
    assert_eq!(protected.len(), 2, "{protected:?}");
    assert_eq!(
        (protected[0].rare_categories, protected[0].rare_rows),
        (1, 1)
    );
    assert_eq!(protected[1].clipped_high.map(|c| c.0), Some(1));
    // The protection off (threshold 1): the unique category can come back.
    let open = ArgnParams {
        rare_threshold: Some(1),
        ..small()
    };
    let model = Argn::fit(&t, &m, open, FitOptions::seeded(1)).unwrap();
    assert!(model.protected().is_empty());
    // Conditioning on a protected category is refused, naming why.
    let (t2, m2) = table(200);
    let err = Argn::fit(
        &t2,
        &m2,
        ArgnParams {
            rare_threshold: Some(100),
            ..small()
        },
        FitOptions::seeded(1),
    )
    .unwrap()
    .sample_conditional(5, &[Condition::equals("kind", "a")], 0)
    .unwrap_err();
    assert!(
        matches!(&err, EngineError::InvalidCondition(m) if m.contains("protects")),
        "{err}"
    );
}

#[test]
fn same_seed_same_bytes_and_a_saved_model_samples_the_same() {
    let (a, b) = (fit(8, 200), fit(8, 200));
    assert_eq!(a.sample(150, 3).unwrap(), b.sample(150, 3).unwrap());
    assert_ne!(a.sample(150, 3).unwrap(), a.sample(150, 4).unwrap());
    let dir = assert_reloads(&a, "argn");
    assert!(Argn::load(dir.path(), crate::EngineDevice::Cpu).is_ok());
    assert!(crate::tvae::Tvae::load(dir.path(), crate::EngineDevice::Cpu).is_err());
    // A colder temperature makes the most common category more common.
    let cold = Argn {
        params: ArgnParams {
            temperature: 0.3,
            ..a.params.clone()
        },
        ..Argn::load(dir.path(), crate::EngineDevice::Cpu).unwrap()
    };
    let top = |m: &Argn| {
        let k = strings(&m.sample(2000, 1).unwrap(), "kind");
        let mut counts = std::collections::HashMap::new();
        for v in k.into_iter().flatten() {
            *counts.entry(v).or_insert(0) += 1;
        }
        counts.into_values().max().unwrap()
    };
    assert!(top(&cold) > top(&a), "{} vs {}", top(&cold), top(&a));
}

#[test]
fn reports_every_epoch_with_a_held_out_loss_and_stops_early() {
    let (t, m) = table(600);
    let params = ArgnParams {
        epochs: 12,
        patience: 100,
        ..small()
    };
    let seen = assert_reports_every_epoch(12, |o| Argn::fit(&t, &m, params.clone(), o).unwrap());
    assert!(
        seen.iter()
            .all(|r| r.validation_loss.is_some_and(f64::is_finite))
    );
    assert!(seen[11].generator_loss < seen[0].generator_loss);
    // A long run on few rows overfits: it stops long before its epochs.
    let long = ArgnParams {
        epochs: 2000,
        patience: 3,
        ..small()
    };
    let model = Argn::fit(&t, &m, long.clone(), FitOptions::seeded(2)).unwrap();
    let history = model.loss_history();
    assert!(history.len() < 2000);
    // Being small, it was trained again on every row for its best epoch's count: the
    // history kept is the first pass's, held-out losses and all, and the refit is seeded.
    assert!(history.iter().all(|r| r.validation_loss.is_some()));
    let again = Argn::fit(&t, &m, long, FitOptions::seeded(2)).unwrap();
    assert_eq!(model.sample(100, 1).unwrap(), again.sample(100, 1).unwrap());
    // A time budget ends it too.
    let model = Argn::fit(
        &t,
        &m,
        ArgnParams {
            epochs: 100_000,
            validation_share: 0.0,
            ..small()
        },
        FitOptions {
            max_seconds: Some(0.5),
            ..FitOptions::seeded(3)
        },
    )
    .unwrap();
    let history = model.loss_history();
    assert!(history.len() < 100_000 && history.iter().all(|r| r.validation_loss.is_none()));
}

#[test]
fn a_column_of_few_levels_keeps_its_shared_extremes_and_loses_a_unique_one() {
    // Grades 1..16 over 2,000 rows (20 bins: every grade a token of its own): the 1s are
    // held by three rows, the 17 by one.
    let grades: Vec<Option<i64>> = (0..2000)
        .map(|i| {
            Some(match i {
                0..3 => 1,
                3 => 17,
                _ => 2 + i % 15,
            })
        })
        .collect();
    let (t, m) = one_column("grade", ColumnData::Int(grades), SdType::Numerical);
    let tk = Tokenizer::fit(&t, &m, 100, None).unwrap();
    let protected = tk.protected();
    assert_eq!(protected.len(), 1, "{protected:?}");
    assert_eq!(protected[0].clipped_high, Some((1, 16.0)));
    assert_eq!(protected[0].clipped_low, None);
    let tokens = tk.encode(&t).unwrap();
    let ColumnData::Int(back) = tk.columns[0].decode(&tokens, Range::ALL, &mut rng_for(0, 0))
    else {
        panic!("integers")
    };
    assert_eq!(back.iter().flatten().min(), Some(&1));
    assert_eq!(back.iter().flatten().max(), Some(&16));
}

#[test]
fn sizes_left_open_follow_the_table_and_survive_a_reload() {
    assert_eq!(
        [1, 16, 40, 100].map(super::default_embedding_dim),
        [16, 16, 6, 4]
    );
    let (t, m) = table(120);
    let params = ArgnParams {
        epochs: 3,
        embedding_dim: None,
        weight_decay: None,
        ..small()
    };
    let model = Argn::fit(&t, &m, params, FitOptions::seeded(2)).unwrap();
    let columns = model.tokenizer.modelled().len();
    assert_eq!(
        super::config(&model.params, &model.tokenizer).embedding_dim,
        super::default_embedding_dim(columns)
    );
    assert_reloads(&model, "argn");
}

#[test]
fn a_wide_tables_steps_take_fewer_rows_and_a_narrow_ones_keep_the_batch() {
    for columns in [2usize, 15, 40, 100, 110, 300, 1000] {
        let width = columns * (default_embedding_dim(columns) + 1);
        let rows = rows_per_pass(columns, width);
        // Every column's masked copy of the embedded rows, and its gradient: bounded.
        assert!(
            2 * columns * width * rows <= 1 << 26 || rows == 16,
            "{columns}: {rows}"
        );
        if columns <= 110 {
            assert!(
                rows >= ArgnParams::default().batch_size,
                "{columns}: {rows}"
            );
        }
    }
    assert!(rows_per_pass(300, 1500) < 100);
}
