//! Constraints end to end, with every model: a table that declares every constraint class
//! at once is learned, and thousands of sampled rows break none of them; the plan survives
//! save and load; conditions on folded, changed and plain columns; real rows that break a
//! constraint are refused or dropped, never silently.

use synth_constraints::{Constraint, ConstraintError, OnViolation, parse, violations};
use synth_engine::{
    ArgnParams, CONSTRAINTS_FILE, Condition, CtganParams, EngineDevice, EngineError, FitOptions,
    ModelParams, Synthesizer, TvaeParams, fit_constrained,
};
use synth_table::{Column, ColumnData, Metadata, Table};

const DAY: i64 = 86_400_000_000;

fn col(name: &str, data: ColumnData) -> Column {
    Column {
        name: name.into(),
        data,
    }
}

/// Countries and their cities.
const PLACES: [(&str, &str); 5] = [
    ("FR", "Paris"),
    ("FR", "Lyon"),
    ("DE", "Berlin"),
    ("IT", "Rome"),
    ("IT", "Milan"),
];

/// Bookings: check-in and check-out days, a price between the night's low and high, a
/// discount share, a refund (never positive), rooms in steps of 2, a country and its cities,
/// a unique booking code.
fn bookings(n: usize) -> (Table, Metadata) {
    let places = PLACES;
    let r = |i: usize, m: usize| (i * 7919 + i / 3) % m;
    let t = Table::new(vec![
        col(
            "checkin",
            ColumnData::Datetime(
                (0..n)
                    .map(|i| Some((19_000 + r(i, 60) as i64) * DAY))
                    .collect(),
            ),
        ),
        col(
            "checkout",
            ColumnData::Datetime(
                (0..n)
                    .map(|i| Some((19_000 + r(i, 60) as i64 + 1 + r(i, 7) as i64) * DAY))
                    .collect(),
            ),
        ),
        col(
            "low",
            ColumnData::Float((0..n).map(|i| Some(40.0 + r(i, 30) as f64)).collect()),
        ),
        col(
            "price",
            ColumnData::Float(
                (0..n)
                    .map(|i| Some(40.0 + r(i, 30) as f64 + r(i, 11) as f64 * 2.5))
                    .collect(),
            ),
        ),
        col(
            "high",
            ColumnData::Float(
                (0..n)
                    .map(|i| Some(70.0 + r(i, 30) as f64 + r(i, 5) as f64))
                    .collect(),
            ),
        ),
        col(
            "discount",
            ColumnData::Float((0..n).map(|i| Some(r(i, 21) as f64 / 20.0)).collect()),
        ),
        col(
            "refund",
            ColumnData::Float((0..n).map(|i| Some(-(r(i, 13) as f64) * 3.0)).collect()),
        ),
        col(
            "rooms",
            ColumnData::Int(
                (0..n)
                    .map(|i| (i % 9 != 0).then_some(2 * (1 + r(i, 4)) as i64))
                    .collect(),
            ),
        ),
        col(
            "country",
            ColumnData::Str((0..n).map(|i| Some(places[r(i, 5)].0.into())).collect()),
        ),
        col(
            "city",
            ColumnData::Str((0..n).map(|i| Some(places[r(i, 5)].1.into())).collect()),
        ),
        col(
            "code",
            ColumnData::Int((0..n).map(|i| Some(10_000 + i as i64)).collect()),
        ),
    ])
    .unwrap();
    let mut m = Metadata::from_json(include_str!(
        "../../constraints/tests/data/every_class.metadata.json"
    ))
    .unwrap();
    m.order_like(&t);
    (t, m)
}

/// Every class at once (the constraints crate's own tests declare the same).
fn every_class() -> Vec<Constraint> {
    parse(include_str!(
        "../../constraints/tests/data/every_class.json"
    ))
    .unwrap()
}

fn models() -> [ModelParams; 3] {
    [
        ModelParams::Ctgan(CtganParams {
            epochs: 3,
            batch_size: 100,
            pac: 10,
            generator_dim: vec![32, 32],
            discriminator_dim: vec![32, 32],
            embedding_dim: 16,
            ..CtganParams::default()
        }),
        ModelParams::Tvae(TvaeParams {
            epochs: 3,
            batch_size: 100,
            compress_dims: vec![32, 32],
            decompress_dims: vec![32, 32],
            embedding_dim: 16,
            ..TvaeParams::default()
        }),
        ModelParams::Argn(ArgnParams {
            epochs: 3,
            batch_size: 100,
            hidden_dims: vec![32],
            ..ArgnParams::default()
        }),
    ]
}

fn fitted(params: &ModelParams, t: &Table, m: &Metadata) -> Box<dyn Synthesizer> {
    let (model, dropped) = fit_constrained(
        t,
        m,
        params,
        &every_class(),
        OnViolation::Fail,
        FitOptions::seeded(4),
    )
    .unwrap();
    assert!(dropped.is_empty());
    model
}

fn texts(t: &Table, column: &str) -> Vec<Option<String>> {
    match &t.column(column).unwrap().data {
        ColumnData::Str(v) => v.clone(),
        ColumnData::Int(v) => v.iter().map(|x| x.map(|x| x.to_string())).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn no_sampled_row_breaks_a_constraint_with_any_model() {
    let (t, m) = bookings(500);
    for params in models() {
        let name = params.model_name();
        let model = fitted(&params, &t, &m);
        let out = model.sample(3000, 9).unwrap();
        assert_eq!(out.n_rows(), 3000, "{name}");
        let names: Vec<&str> = out.columns.iter().map(|c| c.name.as_str()).collect();
        let real: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, real, "{name}: the real table's columns, in order");
        let broken = violations(&every_class(), &m, &t, &out).unwrap();
        assert!(broken.is_empty(), "{name}: {broken:?}");
        // Values keep their columns' types and grids: whole days, rooms in twos.
        let ColumnData::Datetime(days) = &out.column("checkout").unwrap().data else {
            panic!("{name}: datetimes")
        };
        assert!(days.iter().flatten().all(|d| d % DAY == 0), "{name}");
        // Same seed, same rows.
        assert_eq!(model.sample(3000, 9).unwrap(), out, "{name}");
    }
}

#[test]
fn what_argn_protects_is_said_only_of_columns_it_learns_as_they_are() {
    // `high` is learned as its difference from `low`: the extremes argn moves there are
    // differences, which the column's own terms cannot tell (they read as dates near 1970).
    let n = 300;
    let low: Vec<Option<f64>> = (0..n)
        .map(|i| Some((i * 37 % 1000) as f64 / 10.0))
        .collect();
    let high = low
        .iter()
        .enumerate()
        .map(|(i, l)| l.map(|l| l + (i * 7919 % 997) as f64 / 10.0 + 0.1))
        .collect();
    let t = Table::new(vec![
        col("low", ColumnData::Float(low)),
        col("high", ColumnData::Float(high)),
    ])
    .unwrap();
    let m = Metadata::from_json(
        r#"{"columns": {"low": {"sdtype": "numerical"}, "high": {"sdtype": "numerical"}}}"#,
    )
    .unwrap();
    let rule = parse(
        r#"[{"constraint_class": "Inequality",
             "constraint_parameters": {"low_column_name": "low", "high_column_name": "high"}}]"#,
    )
    .unwrap();
    let params = models()[2].clone();
    let options = FitOptions::seeded(1);
    let (model, _) = fit_constrained(&t, &m, &params, &rule, OnViolation::Fail, options).unwrap();
    let said: Vec<String> = model.protected().into_iter().map(|p| p.column).collect();
    assert_eq!(said, ["low"]);
}

#[test]
fn a_saved_model_keeps_its_constraints() {
    let (t, m) = bookings(300);
    for params in models() {
        let model = fitted(&params, &t, &m);
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        assert!(dir.path().join(CONSTRAINTS_FILE).exists());
        let loaded = synth_engine::load(dir.path(), EngineDevice::Cpu).unwrap();
        let out = loaded.sample(500, 2).unwrap();
        assert_eq!(out, model.sample(500, 2).unwrap());
        assert!(violations(&every_class(), &m, &t, &out).unwrap().is_empty());
    }
}

#[test]
fn conditions_on_folded_changed_and_plain_columns() {
    let (t, m) = bookings(500);
    for params in models() {
        let name = params.model_name();
        let model = fitted(&params, &t, &m);
        let cond = |pairs: &[(&str, &str)]| -> Vec<Condition> {
            pairs
                .iter()
                .map(|(c, v)| Condition::equals(*c, *v))
                .collect()
        };
        // One column of a fixed combination: its cities only.
        let fr = model
            .sample_conditional(200, &cond(&[("country", "FR")]), 1)
            .unwrap();
        assert!(
            texts(&fr, "country")
                .iter()
                .all(|c| c.as_deref() == Some("FR")),
            "{name}"
        );
        assert!(
            texts(&fr, "city")
                .iter()
                .all(|c| matches!(c.as_deref(), Some("Paris" | "Lyon"))),
            "{name}"
        );
        // The whole combination goes to the model as one category.
        let rome = cond(&[("country", "IT"), ("city", "Rome")]);
        let out = model.sample_conditional(200, &rome, 1).unwrap();
        assert!(
            texts(&out, "city")
                .iter()
                .all(|c| c.as_deref() == Some("Rome")),
            "{name}"
        );
        // A column the model learns as a multiple (a barely trained model may never draw
        // one of its values, so a range of them).
        let rooms = model
            .sample_conditional(100, &[Condition::parse("rooms>=4").unwrap()], 1)
            .unwrap();
        assert!(
            texts(&rooms, "rooms")
                .iter()
                .all(|c| matches!(c.as_deref(), Some("4" | "6" | "8"))),
            "{name}"
        );
        assert!(
            violations(&every_class(), &m, &t, &rooms)
                .unwrap()
                .is_empty()
        );
        // A combination no real row has is refused, naming the columns.
        let err = model
            .sample_conditional(10, &cond(&[("country", "DE"), ("city", "Rome")]), 1)
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::InvalidCondition(m) if m.contains("country=DE, city=Rome")),
            "{name}: {err}"
        );
        let err = model
            .sample_conditional(10, &cond(&[("nope", "1")]), 1)
            .unwrap_err();
        assert!(matches!(err, EngineError::InvalidCondition(_)), "{name}");
        // Ranges on a column the model learns as a fraction, on a datetime it learns as a
        // difference, and on a clipped one it learns as it is.
        let ranges: Vec<Condition> = ["price>=60", "checkout>=2022-02-15", "discount=0.2..0.6"]
            .iter()
            .map(|c| Condition::parse(c).unwrap())
            .collect();
        let out = model.sample_conditional(100, &ranges, 4).unwrap();
        let floats = |c: &str| match &out.column(c).unwrap().data {
            ColumnData::Float(v) => v.iter().map(|x| x.unwrap()).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert!(floats("price").iter().all(|p| *p >= 60.0), "{name}");
        assert!(
            floats("discount").iter().all(|d| (0.2..=0.6).contains(d)),
            "{name}"
        );
        let ColumnData::Datetime(out_days) = &out.column("checkout").unwrap().data else {
            panic!("{name}: datetimes")
        };
        let feb15 = (19_038) * DAY;
        assert!(out_days.iter().all(|d| d.unwrap() >= feb15), "{name}");
        assert!(violations(&every_class(), &m, &t, &out).unwrap().is_empty());
    }
}

#[test]
fn real_rows_that_break_a_constraint_are_refused_or_dropped_and_reported() {
    let (mut t, m) = bookings(300);
    let ColumnData::Float(refund) = &mut t.columns[6].data else {
        panic!("floats")
    };
    refund[10] = Some(5.0);
    refund[20] = Some(7.5);
    let params = &models()[0];
    let err = fit_constrained(
        &t,
        &m,
        params,
        &every_class(),
        OnViolation::Fail,
        FitOptions::seeded(1),
    )
    .err()
    .expect("refused");
    let EngineError::Constraint(ConstraintError::Violated(vs)) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (vs[0].constraint.as_str(), vs[0].rows),
        ("Negative(refund <= 0)", 2)
    );
    assert!(err.to_string().contains("row 11 after the header"), "{err}");
    let (model, dropped) = fit_constrained(
        &t,
        &m,
        params,
        &every_class(),
        OnViolation::Drop,
        FitOptions::seeded(1),
    )
    .unwrap();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].rows, 2);
    let out = model.sample(500, 3).unwrap();
    assert!(violations(&every_class(), &m, &t, &out).unwrap().is_empty());
}
