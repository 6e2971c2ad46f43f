//! Fixtures shared by the models' unit tests.

use std::sync::{Arc, Mutex};

use synth_table::{ColumnData, Metadata, SdType, Table};

use crate::{
    Condition, EngineDevice, EngineError, EpochCallback, EpochReport, FitOptions, Synthesizer,
};

// The builder the engine's integration tests use too.
#[path = "../tests/common/table.rs"]
mod columns;
pub(crate) use columns::table_of;

/// A small table with a numerical, a categorical and a boolean column, nulls included.
pub(crate) fn table(n: usize) -> (Table, Metadata) {
    let sizes = (0..n)
        .map(|i| (i % 10 != 0).then_some((i % 4) as f64 * 10.0 + (i % 7) as f64 * 0.5))
        .collect();
    let kinds = (0..n)
        .map(|i| (i % 13 != 0).then(|| ["a", "b", "c"][i % 3].to_owned()))
        .collect();
    let oks = (0..n).map(|i| Some(i % 4 == 0)).collect();
    table_of(vec![
        ("size", SdType::Numerical, ColumnData::Float(sizes)),
        ("kind", SdType::Categorical, ColumnData::Str(kinds)),
        ("ok", SdType::Boolean, ColumnData::Bool(oks)),
    ])
}

/// The model's per-epoch losses, generator's and critic's.
pub(crate) fn losses(model: &dyn Synthesizer) -> Vec<(f64, Option<f64>)> {
    let history = model.loss_history();
    history
        .iter()
        .map(|r| (r.generator_loss, r.critic_loss))
        .collect()
}

/// An `on_epoch` callback that keeps every report, and where it keeps them.
pub(crate) fn epoch_sink() -> (Arc<Mutex<Vec<EpochReport>>>, EpochCallback) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let callback: EpochCallback = Box::new(move |r| sink.lock().unwrap().push(r.clone()));
    (seen, callback)
}

/// Fits seeded (seed 1) with an `on_epoch` sink and checks that epochs 1..=`epochs` were
/// each reported once, in order, exactly as the fitted model's loss history keeps them;
/// returns the reports.
pub(crate) fn assert_reports_every_epoch<M: Synthesizer>(
    epochs: usize,
    fit: impl FnOnce(FitOptions) -> M,
) -> Vec<EpochReport> {
    let (seen, on_epoch) = epoch_sink();
    let model = fit(FitOptions {
        on_epoch: Some(on_epoch),
        ..FitOptions::seeded(1)
    });
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        (1..=epochs).collect::<Vec<_>>()
    );
    assert_eq!(&seen[..], model.loss_history());
    seen
}

/// Sampling with `kind = b` and `ok = ok` on [`table`]'s model gives only such rows, and
/// so do ranges of the numerical `size`; an unknown column, an unseen
/// category, a range on a category, a value that is not a number and two values for one
/// column are each refused as an invalid condition.
pub(crate) fn assert_conditions_hold(model: &dyn Synthesizer, rows: usize, ok: bool) {
    let wanted = [
        Condition::equals("kind", "b"),
        Condition::equals("ok", ok.to_string()),
    ];
    let out = model.sample_conditional(rows, &wanted, 2).unwrap();
    assert_eq!(out.n_rows(), rows);
    let ColumnData::Str(kinds) = &out.column("kind").unwrap().data else {
        panic!("strings")
    };
    assert!(kinds.iter().all(|k| k.as_deref() == Some("b")));
    let ColumnData::Bool(oks) = &out.column("ok").unwrap().data else {
        panic!("bools")
    };
    assert!(oks.iter().all(|k| *k == Some(ok)));
    let sizes = |c: &str| {
        let out = model
            .sample_conditional(20, &[Condition::parse(c).unwrap()], 3)
            .unwrap();
        let ColumnData::Float(v) = &out.column("size").unwrap().data else {
            panic!("floats")
        };
        v.clone()
    };
    assert!(
        sizes("size>=10")
            .iter()
            .all(|s| s.is_some_and(|s| s >= 10.0))
    );
    assert!(
        sizes("size=5..20")
            .iter()
            .all(|s| s.is_some_and(|s| (5.0..=20.0).contains(&s)))
    );
    for bad in ["kind=zzz", "nope=a", "kind>=3", "size=ten", "size=20..5"] {
        let err = model
            .sample_conditional(5, &[Condition::parse(bad).unwrap()], 1)
            .unwrap_err();
        assert!(
            matches!(err, EngineError::InvalidCondition(_)),
            "{bad}: {err}"
        );
    }
    let clash = [
        Condition::equals("kind", "a"),
        Condition::equals("kind", "b"),
    ];
    assert!(matches!(
        model.sample_conditional(5, &clash, 1),
        Err(EngineError::InvalidCondition(_))
    ));
}

/// A saved model loads back as `name` and samples and reports exactly as the fitted one;
/// without its weights file it does not load. Returns the folder it was saved in.
pub(crate) fn assert_reloads(model: &dyn Synthesizer, name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path()).unwrap();
    let loaded = crate::load(dir.path(), EngineDevice::Cpu).unwrap();
    assert_eq!(loaded.model_name(), name);
    assert_eq!(loaded.sample(77, 4).unwrap(), model.sample(77, 4).unwrap());
    assert_eq!(loaded.loss_history(), model.loss_history());
    let weights = dir.path().join(crate::WEIGHTS_FILE);
    let kept = std::fs::read(&weights).unwrap();
    std::fs::remove_file(&weights).unwrap();
    assert!(crate::load(dir.path(), EngineDevice::Cpu).is_err());
    std::fs::write(&weights, kept).unwrap();
    dir
}
