//! Constraints on their own: parsing SDV's JSON, checking metadata and real rows, the
//! plan's round trip, rows written back from any model output keeping every rule (a
//! property test over random tables with planted rules), and discovery.

use proptest::prelude::*;
use synth_constraints::{
    Constraint, ConstraintError, OnViolation, Ordering, Plan, discover, parse, validate, violations,
};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

const DAY: i64 = 86_400_000_000;

fn col(name: &str, data: ColumnData) -> Column {
    Column {
        name: name.into(),
        data,
    }
}

/// A float column of `n` rows, row `i` holding `f(i)`.
fn floats(name: &str, n: usize, f: impl Fn(usize) -> f64) -> Column {
    col(
        name,
        ColumnData::Float((0..n).map(|i| Some(f(i))).collect()),
    )
}

fn meta(columns: &[(&str, SdType)]) -> Metadata {
    Metadata::new(
        columns
            .iter()
            .map(|(n, t)| (n.to_string(), ColumnMetadata::new(*t)))
            .collect(),
    )
}

/// Stays: checkin and checkout days, nightly price bounds, a discount share, rooms in
/// steps of 2, a country and its cities, a unique booking code.
fn stays(n: usize) -> (Table, Metadata) {
    let cities = [
        ("FR", "Paris"),
        ("FR", "Lyon"),
        ("DE", "Berlin"),
        ("IT", "Rome"),
    ];
    let t = Table::new(vec![
        col(
            "checkin",
            ColumnData::Datetime(
                (0..n)
                    .map(|i| Some(19_000 * DAY + (i % 40) as i64 * DAY))
                    .collect(),
            ),
        ),
        col(
            "checkout",
            ColumnData::Datetime(
                (0..n)
                    .map(|i| Some(19_000 * DAY + (i % 40) as i64 * DAY + (1 + i % 9) as i64 * DAY))
                    .collect(),
            ),
        ),
        col(
            "low",
            ColumnData::Float((0..n).map(|i| Some(50.0 + (i % 13) as f64)).collect()),
        ),
        col(
            "price",
            ColumnData::Float(
                (0..n)
                    .map(|i| Some(50.0 + (i % 13) as f64 + (i % 7) as f64 * 1.5))
                    .collect(),
            ),
        ),
        col(
            "high",
            ColumnData::Float(
                (0..n)
                    .map(|i| Some(70.0 + (i % 13) as f64 + (i % 5) as f64))
                    .collect(),
            ),
        ),
        col(
            "discount",
            ColumnData::Float((0..n).map(|i| Some((i % 10) as f64 / 10.0)).collect()),
        ),
        col(
            "rooms",
            ColumnData::Int(
                (0..n)
                    .map(|i| (i % 11 != 0).then_some(2 * (1 + i % 6) as i64))
                    .collect(),
            ),
        ),
        col(
            "country",
            ColumnData::Str((0..n).map(|i| Some(cities[i % 4].0.to_owned())).collect()),
        ),
        col(
            "city",
            ColumnData::Str((0..n).map(|i| Some(cities[i % 4].1.to_owned())).collect()),
        ),
        col(
            "code",
            ColumnData::Int((0..n).map(|i| Some(1000 + i as i64)).collect()),
        ),
        col(
            "refund",
            ColumnData::Float((0..n).map(|i| Some(-((i % 4) as f64))).collect()),
        ),
    ])
    .unwrap();
    let mut m = Metadata::from_json(include_str!("data/every_class.metadata.json")).unwrap();
    m.order_like(&t);
    (t, m)
}

/// Every class at once, on [`stays`]' columns (the engine's tests declare the same).
fn every_class() -> Vec<Constraint> {
    parse(include_str!("data/every_class.json")).unwrap()
}

#[test]
fn parses_sdv_json_and_names_the_wrong_constraint() {
    let cs = every_class();
    assert_eq!(cs.len(), 9);
    assert_eq!(cs[0].describe(), "Inequality(checkin < checkout)");
    assert_eq!(cs[1].describe(), "Range(low <= price <= high)");
    let wrapped = format!(
        r#"{{"constraints": {}}}"#,
        serde_json::to_string(&cs).unwrap()
    );
    assert_eq!(parse(&wrapped).unwrap(), cs);
    let err = parse(
        r#"[{"constraint_class": "Positive", "constraint_parameters": {"column_name": "x"}},
        {"constraint_class": "Bogus", "constraint_parameters": {}}]"#,
    )
    .unwrap_err();
    assert!(err.to_string().contains("constraint 2"), "{err}");
    let err = parse(r#"[{"constraint_class": "Positive", "constraint_parameters": {"column_name": "x", "colour": 1}}]"#)
        .unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");
    assert!(parse("{}").is_err());
}

#[test]
fn metadata_refuses_unknown_columns_and_wrong_types() {
    let (_, m) = stays(10);
    let bad = |json: &str| validate(&parse(json).unwrap(), &m).unwrap_err().to_string();
    assert!(bad(r#"[{"constraint_class": "Positive", "constraint_parameters": {"column_name": "nope"}}]"#).contains("\"nope\""));
    assert!(bad(r#"[{"constraint_class": "Positive", "constraint_parameters": {"column_name": "city"}}]"#).contains("numerical"));
    assert!(bad(r#"[{"constraint_class": "Inequality", "constraint_parameters": {"low_column_name": "checkin", "high_column_name": "price"}}]"#).contains("numerical or all datetime"));
    assert!(bad(r#"[{"constraint_class": "FixedCombinations", "constraint_parameters": {"column_names": ["city"]}}]"#).contains("two or more"));
    assert!(bad(r#"[{"constraint_class": "FixedCombinations", "constraint_parameters": {"column_names": ["city", "price"]}}]"#).contains("categorical"));
    assert!(bad(r#"[{"constraint_class": "FixedIncrements", "constraint_parameters": {"column_name": "rooms", "increment_value": 0}}]"#).contains("positive"));
    assert!(bad(r#"[{"constraint_class": "Inequality", "constraint_parameters": {"low_column_name": "low", "high_column_name": "low"}}]"#).contains("twice"));
    validate(&every_class(), &m).unwrap();
    // A personal column (pii) is generated, not learned: no constraint holds it, and none
    // is suggested on it (a combination of cities would hand the real ones back).
    let (t, mut m) = stays(200);
    m.columns
        .iter_mut()
        .find(|(n, _)| n == "city")
        .unwrap()
        .1
        .pii = Some(true);
    let err = validate(&every_class(), &m).unwrap_err().to_string();
    assert!(err.contains("\"city\" is personal data"), "{err}");
    let found = synth_constraints::discover(&t, &m);
    assert!(
        found.iter().all(|c| !c.columns().contains(&"city")),
        "{found:?}"
    );
    assert!(!found.is_empty());
}

#[test]
fn real_rows_that_break_a_constraint_are_counted_shown_and_refused_or_dropped() {
    let (mut t, m) = stays(100);
    // Rows 3 and 50 check out before they check in; row 7 has negative rooms.
    if let ColumnData::Datetime(v) = &mut t.columns[1].data {
        v[3] = Some(18_000 * DAY);
        v[50] = Some(18_000 * DAY);
    }
    if let ColumnData::Int(v) = &mut t.columns[6].data {
        v[7] = Some(-2);
    }
    let cs = every_class();
    let Err(ConstraintError::Violated(vs)) = Plan::fit(&t, &m, &cs, OnViolation::Fail) else {
        panic!("refused")
    };
    assert_eq!(vs.len(), 2);
    assert_eq!(vs[0].constraint, "Inequality(checkin < checkout)");
    assert_eq!(
        (vs[0].rows, vs[0].examples[0].row, vs[0].examples[1].row),
        (2, 3, 50)
    );
    assert!(vs[0].examples[0].values.contains_key("checkout"));
    assert_eq!(
        (vs[1].constraint.as_str(), vs[1].rows),
        ("Positive(rooms > 0)", 1)
    );
    let message = ConstraintError::Violated(vs).to_string();
    assert!(
        message.contains("in 2 rows (e.g. row 4 after the header"),
        "{message}"
    );

    let prepared = Plan::fit(&t, &m, &cs, OnViolation::Drop).unwrap();
    assert_eq!(prepared.table.n_rows(), 97);
    assert_eq!(prepared.dropped.len(), 2);
}

#[test]
fn the_real_table_goes_forward_and_comes_back_unchanged() {
    let (t, m) = stays(200);
    let prepared = Plan::fit(&t, &m, &every_class(), OnViolation::Fail).unwrap();
    // The model learns a difference, a fraction, a multiple and one joint category.
    let learned: Vec<&str> = prepared
        .table
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        learned.contains(&"country+city") && !learned.contains(&"city"),
        "{learned:?}"
    );
    assert!(matches!(
        prepared.table.column("checkout").unwrap().data,
        ColumnData::Int(_)
    ));
    assert_eq!(
        prepared.metadata.column("checkout").unwrap().sdtype,
        SdType::Numerical
    );
    assert_eq!(prepared.plan.reverse(&prepared.table).unwrap(), t);
    // It saves as JSON and reads back the same.
    let json = serde_json::to_string(&prepared.plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), prepared.plan);
}

#[test]
fn chains_on_shared_columns_compose_in_any_declared_order() {
    let n = 60;
    let t = Table::new(vec![
        floats("a", n, |i| i as f64),
        floats("b", n, |i| i as f64 + 1.0 + (i % 3) as f64),
        floats("c", n, |i| i as f64 + 5.0 + (i % 4) as f64),
    ])
    .unwrap();
    let m = meta(&[
        ("a", SdType::Numerical),
        ("b", SdType::Numerical),
        ("c", SdType::Numerical),
    ]);
    let ineq = |l: &str, h: &str| {
        format!(
            r#"{{"constraint_class": "Inequality", "constraint_parameters": {{"low_column_name": "{l}", "high_column_name": "{h}"}}}}"#
        )
    };
    for order in [
        [ineq("a", "b"), ineq("b", "c")],
        [ineq("b", "c"), ineq("a", "b")],
    ] {
        let cs = parse(&format!("[{}, {}, {}]", order[0], order[1], ineq("a", "c"))).unwrap();
        let prepared = Plan::fit(&t, &m, &cs, OnViolation::Fail).unwrap();
        assert_eq!(prepared.plan.reverse(&prepared.table).unwrap(), t);
        // Any output of a model comes back ordered: a <= b <= c, and a <= c.
        let garbage = Table::new(vec![
            col(
                "a",
                ColumnData::Float((0..50).map(|i| Some(i as f64 * 3.0 - 70.0)).collect()),
            ),
            col(
                "b",
                ColumnData::Float((0..50).map(|i| Some(40.0 - i as f64 * 2.0)).collect()),
            ),
            col(
                "c",
                ColumnData::Float(
                    (0..50)
                        .map(|i| Some((i % 7) as f64 * -9.0 + 20.0))
                        .collect(),
                ),
            ),
        ])
        .unwrap();
        let back = prepared.plan.reverse(&garbage).unwrap();
        let (kept, _) = prepared.plan.sieve().keep(&mut back.clone()).unwrap();
        assert_eq!(kept.len(), 50);
        assert!(violations(&cs, &m, &t, &back).unwrap().is_empty());
    }
}

#[test]
fn unique_keys_are_refused_across_batches() {
    let (t, m) = stays(40);
    let cs = parse(r#"[{"constraint_class": "Unique", "constraint_parameters": {"column_names": ["country", "city"]}}]"#).unwrap();
    let Err(ConstraintError::Violated(vs)) = Plan::fit(&t, &m, &cs, OnViolation::Fail) else {
        panic!("the real table repeats combinations")
    };
    assert_eq!(vs[0].rows, 36);
    let prepared = Plan::fit(&t, &m, &cs, OnViolation::Drop).unwrap();
    assert_eq!(prepared.table.n_rows(), 4);
    let mut sieve = prepared.plan.sieve();
    assert_eq!(sieve.keep(&mut t.clone()).unwrap().0, [0, 1, 2, 3]);
    assert!(sieve.keep(&mut t.clone()).unwrap().0.is_empty());

    // One integer column: a repeated code moves to the nearest free one, so none is lost.
    let cs = parse(
        r#"[{"constraint_class": "Unique", "constraint_parameters": {"column_names": ["code"]}}]"#,
    )
    .unwrap();
    let prepared = Plan::fit(&t, &m, &cs, OnViolation::Fail).unwrap();
    let mut sieve = prepared.plan.sieve();
    let mut twice = t.clone();
    twice.append(t.clone()).unwrap();
    assert_eq!(sieve.keep(&mut twice).unwrap().0.len(), 80);
    let mut again = t.clone();
    assert_eq!(sieve.keep(&mut again).unwrap().0.len(), 40);
    let ColumnData::Int(codes) = &again.column("code").unwrap().data else {
        panic!("ints")
    };
    // Moved to free codes near the taken ones: within 80 of where they were.
    assert!(
        codes
            .iter()
            .zip(0..)
            .all(|(c, i)| (c.unwrap() - (1000 + i)).abs() <= 80),
        "{codes:?}"
    );
    twice.append(again).unwrap();
    assert!(violations(&cs, &m, &t, &twice).unwrap().is_empty());
}

/// Garbage in the shape of what the model learns: any numbers in numerical columns, any
/// learned category in the others.
fn any_output(learned: &Table, values: &[(f64, i64, usize)]) -> Table {
    let columns = learned
        .columns
        .iter()
        .map(|c| {
            let data = match &c.data {
                ColumnData::Float(_) => {
                    ColumnData::Float(values.iter().map(|v| Some(v.0)).collect())
                }
                ColumnData::Int(_) => ColumnData::Int(values.iter().map(|v| Some(v.1)).collect()),
                ColumnData::Str(real) => ColumnData::Str(
                    values
                        .iter()
                        .map(|v| real[v.2 % real.len()].clone())
                        .collect(),
                ),
                ColumnData::Datetime(_) => {
                    ColumnData::Datetime(values.iter().map(|v| Some(v.1 * 1_000_003)).collect())
                }
                ColumnData::Bool(_) => {
                    ColumnData::Bool(values.iter().map(|v| Some(v.2 % 2 == 0)).collect())
                }
            };
            col(&c.name, data)
        })
        .collect();
    Table::new(columns).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random tables with planted rules: every row written back from any model output keeps
    /// every declared constraint.
    #[test]
    fn no_written_back_row_breaks_a_declared_constraint(
        rows in prop::collection::vec((-1e3..1e3f64, 0.0..100.0f64, 0.0..=1.0f64, 0..7i64, 0..6usize), 25..120),
        output in prop::collection::vec((-1e4..1e4f64, -1_000_000i64..1_000_000, 0..10_000usize), 1..200),
        strict in any::<bool>(),
        clamp in any::<bool>(),
    ) {
        let ordering = if clamp { Ordering::Clamp } else { Ordering::Reparametrise };
        let n = rows.len();
        let r2 = |x: f64| (x * 100.0).round() / 100.0;
        let t = Table::new(vec![
            col("a", ColumnData::Float(rows.iter().map(|r| Some(r2(r.0))).collect())),
            col("b", ColumnData::Float(rows.iter().map(|r| Some(r2(r2(r.0) + r2(r.1) + if strict { 0.01 } else { 0.0 }))).collect())),
            col("m", ColumnData::Float(rows.iter().map(|r| Some(r2(r2(r.0) + r.2 * r2(r.1)))).collect())),
            col("q", ColumnData::Int(rows.iter().map(|r| Some(r.3 * 25)).collect())),
            col("d", ColumnData::Datetime(rows.iter().map(|r| Some(r.3 * DAY)).collect())),
            col("e", ColumnData::Datetime(rows.iter().map(|r| Some((r.3 + r.4 as i64) * DAY)).collect())),
            col("k", ColumnData::Str(rows.iter().map(|r| Some(format!("k{}", r.4))).collect())),
            col("l", ColumnData::Str(rows.iter().map(|r| Some(format!("l{}", r.4 / 2))).collect())),
        ]).unwrap();
        let m = meta(&[("a", SdType::Numerical), ("b", SdType::Numerical), ("m", SdType::Numerical),
            ("q", SdType::Numerical), ("d", SdType::Datetime), ("e", SdType::Datetime),
            ("k", SdType::Categorical), ("l", SdType::Categorical)]);
        let cs = parse(&format!(r#"[
            {{"constraint_class": "Inequality", "constraint_parameters": {{"low_column_name": "a", "high_column_name": "b", "strict_boundaries": {strict}}}}},
            {{"constraint_class": "Range", "constraint_parameters": {{"low_column_name": "a", "middle_column_name": "m", "high_column_name": "b", "strict_boundaries": false}}}},
            {{"constraint_class": "Inequality", "constraint_parameters": {{"low_column_name": "d", "high_column_name": "e"}}}},
            {{"constraint_class": "Positive", "constraint_parameters": {{"column_name": "q"}}}},
            {{"constraint_class": "ScalarRange", "constraint_parameters": {{"column_name": "q", "low_value": 0, "high_value": 150, "strict_boundaries": false}}}},
            {{"constraint_class": "FixedIncrements", "constraint_parameters": {{"column_name": "q", "increment_value": 25}}}},
            {{"constraint_class": "FixedCombinations", "constraint_parameters": {{"column_names": ["k", "l"]}}}},
            {{"constraint_class": "ScalarInequality", "constraint_parameters": {{"column_name": "a", "relation": "<", "value": 1000.5}}}}
        ]"#)).unwrap();
        let prepared = Plan::fit_with(&t, &m, &cs, OnViolation::Fail, ordering).unwrap();
        prop_assert_eq!(&prepared.plan.reverse(&prepared.table).unwrap(), &t);
        let back = prepared.plan.reverse(&any_output(&prepared.table, &output)).unwrap();
        let found = violations(&cs, &m, &t, &back).unwrap();
        prop_assert!(found.is_empty(), "{:?}", found);
        prop_assert_eq!(back.n_rows(), output.len());
        let _ = n;
    }
}

/// Flights: departure before arrival, a carrier and its hub, a positive count of seats in
/// steps of 10; and noise columns with no rule between them.
fn flights(n: usize) -> (Table, Metadata) {
    let hubs = ["AMS", "CDG", "FRA", "LHR"];
    let mut x = 7u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut rows: Vec<[u64; 4]> = (0..n).map(|_| [next(), next(), next(), next()]).collect();
    rows.sort_by_key(|r| r[0] % 997);
    let t = Table::new(vec![
        col(
            "dep",
            ColumnData::Float(rows.iter().map(|r| Some((r[0] % 1000) as f64)).collect()),
        ),
        col(
            "arr",
            ColumnData::Float(
                rows.iter()
                    .map(|r| Some((r[0] % 1000) as f64 + 30.0 + (r[1] % 300) as f64))
                    .collect(),
            ),
        ),
        col(
            "carrier",
            ColumnData::Str(
                rows.iter()
                    .map(|r| Some(format!("C{}", r[2] % 4)))
                    .collect(),
            ),
        ),
        col(
            "hub",
            ColumnData::Str(
                rows.iter()
                    .map(|r| Some(hubs[(r[2] % 4) as usize].to_owned()))
                    .collect(),
            ),
        ),
        col(
            "seats",
            ColumnData::Int(
                rows.iter()
                    .map(|r| Some(10 * (5 + (r[3] % 20) as i64)))
                    .collect(),
            ),
        ),
        col(
            "noise1",
            ColumnData::Float(
                rows.iter()
                    .map(|r| Some((r[1] % 500) as f64 - 250.0))
                    .collect(),
            ),
        ),
        col(
            "noise2",
            ColumnData::Float(
                rows.iter()
                    .map(|r| Some((r[3] % 500) as f64 - 250.5))
                    .collect(),
            ),
        ),
        col(
            "tag",
            ColumnData::Str(
                rows.iter()
                    .map(|r| Some(format!("t{}", r[1] % 3)))
                    .collect(),
            ),
        ),
    ])
    .unwrap();
    let m = meta(&[
        ("dep", SdType::Numerical),
        ("arr", SdType::Numerical),
        ("carrier", SdType::Categorical),
        ("hub", SdType::Categorical),
        ("seats", SdType::Numerical),
        ("noise1", SdType::Numerical),
        ("noise2", SdType::Numerical),
        ("tag", SdType::Categorical),
    ]);
    (t, m)
}

#[test]
fn discovery_finds_the_planted_rules_and_nothing_on_shuffled_columns() {
    let (t, m) = flights(2000);
    let found: Vec<String> = discover(&t, &m).iter().map(Constraint::describe).collect();
    for planted in [
        "Inequality(dep < arr)",
        "FixedCombinations(carrier, hub)",
        "Positive(seats > 0)",
        "FixedIncrements(seats in steps of 10)",
    ] {
        assert!(
            found.contains(&planted.to_owned()),
            "{planted} not in {found:?}"
        );
    }
    assert!(
        !found
            .iter()
            .any(|f| f.contains("noise") || f.contains("tag")),
        "{found:?}"
    );
    // Every suggestion holds on the real table.
    let suggested = discover(&t, &m);
    assert!(violations(&suggested, &m, &t, &t).unwrap().is_empty());

    // Shuffle each column on its own: no relation between columns is left to find.
    let mut shuffled = t.clone();
    for (k, c) in shuffled.columns.iter_mut().enumerate() {
        let n = c.data.len();
        // Multipliers prime to 2000: each a permutation of the rows.
        let step = [3, 7, 9, 11, 13, 17, 19, 21][k] * 7919;
        let order: Vec<usize> = (0..n).map(|i| (i * step + k * 31) % n).collect();
        let mut one = Table::new(vec![c.clone()]).unwrap();
        one = one.take_rows(&order);
        *c = one.columns.remove(0);
    }
    let found: Vec<String> = discover(&shuffled, &m)
        .iter()
        .map(Constraint::describe)
        .collect();
    assert!(
        !found
            .iter()
            .any(|f| f.starts_with("Inequality") || f.starts_with("FixedCombinations")),
        "{found:?}"
    );
}

#[test]
fn a_rule_the_sampled_rows_keep_but_another_breaks_is_not_suggested() {
    // 12,000 rows: the pair search reads every 2.4th; row 1 (not read) breaks a <= b.
    let n = 12_000;
    let t = Table::new(vec![
        floats("a", n, |i| i as f64),
        floats("b", n, |i| if i == 1 { -5.0 } else { i as f64 + 1.0 }),
        floats("c", n, |i| i as f64 + 2.0),
    ])
    .unwrap();
    let m = meta(&[
        ("a", SdType::Numerical),
        ("b", SdType::Numerical),
        ("c", SdType::Numerical),
    ]);
    let found: Vec<String> = discover(&t, &m).iter().map(Constraint::describe).collect();
    assert!(found.contains(&"Inequality(a < c)".to_owned()), "{found:?}");
    assert!(
        !found
            .iter()
            .any(|f| f.contains("(a < b)") || f.contains("(a <= b)")),
        "{found:?}"
    );
}
