//! The whole evaluation on the shared datasets: report shape, determinism, and figures that
//! must move the right way.

mod common;

use synth_evaluate::{EvaluateOptions, evaluate, split};

#[test]
fn penguins_report_has_the_issue_shape_and_is_deterministic() {
    let (real, synth, meta) = common::dataset("penguins");
    let (train, holdout) = split(&real, 0.3, 1);
    let options = EvaluateOptions {
        seed: 3,
        target: Some("species".into()),
        holdout: Some(&holdout),
        ..EvaluateOptions::default()
    };
    let report = evaluate(&train, &synth, &meta, &options).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    for key in [
        "score",
        "column_shapes",
        "column_pair_trends",
        "columns",
        "pairs",
    ] {
        assert!(json["quality"].get(key).is_some(), "quality.{key}");
    }
    for part in ["diagnostic", "privacy", "ml_efficacy"] {
        assert!(json[part].is_object(), "{part}");
    }
    assert_eq!(json["quality"]["columns"].as_array().unwrap().len(), 8);
    assert_eq!(json["quality"]["pairs"].as_array().unwrap().len(), 28);
    let again = evaluate(&train, &synth, &meta, &options).unwrap();
    assert_eq!(report, again);

    // The fixture carries a never-seen category and noise beyond the real ranges.
    let d = &report.diagnostic;
    assert!(
        d.data_validity.unwrap() < 1.0 && d.data_validity.unwrap() > 0.8,
        "{d:?}"
    );
    assert_eq!(d.data_structure, 1.0, "{d:?}");
    // Species is easy to predict from the measurements; the bootstrap keeps that.
    let e = report.ml_efficacy.as_ref().unwrap();
    assert_eq!(e.task, "classification");
    assert!(e.real.accuracy.unwrap() > 0.9, "{e:?}");
    assert!(e.synthetic.accuracy.unwrap() > 0.7, "{e:?}");
    assert!(!e.holdout_seen_by_generator);
    let p = &report.privacy;
    assert!(
        p.dcr_share.is_some() && p.median_dcr_holdout.is_some(),
        "{p:?}"
    );
}

#[test]
fn a_copy_of_the_training_rows_fails_privacy_and_passes_quality() {
    let (real, _, meta) = common::dataset("seattle_weather");
    let (train, holdout) = split(&real, 0.5, 7);
    let options = EvaluateOptions {
        holdout: Some(&holdout),
        target: Some("temp_max".into()),
        ..EvaluateOptions::default()
    };
    let r = evaluate(&train, &train, &meta, &options).unwrap();
    assert!((r.quality.score.unwrap() - 1.0).abs() < 1e-12);
    assert_eq!(r.diagnostic.score, Some(1.0));
    assert_eq!(r.privacy.exact_match_share, 1.0);
    assert_eq!(r.privacy.dcr_share, Some(1.0));
    let e = r.ml_efficacy.unwrap();
    assert_eq!(e.task, "regression");
    assert!(e.real.r2.unwrap() > 0.5, "{e:?}");
    assert_eq!(e.real, e.synthetic);

    // An honest holdout split in two: neither half is closer to the "training" half.
    let (a, b) = split(&holdout, 0.5, 9);
    let r = evaluate(
        &train,
        &a,
        &meta,
        &EvaluateOptions {
            holdout: Some(&b),
            ..options
        },
    )
    .unwrap();
    let share = r.privacy.dcr_share.unwrap();
    assert!((0.3..0.7).contains(&share), "{share}");
    // The yardstick is the holdout scored as if it were synthetic: exactly what the
    // report gives for that table, and below what the copy scores.
    let y = r
        .holdout_yardstick
        .clone()
        .expect("a yardstick with a holdout");
    let as_synthetic = evaluate(&train, &b, &meta, &EvaluateOptions::default()).unwrap();
    assert_eq!(y.quality, as_synthetic.quality.score);
    assert_eq!(
        y.column_pair_trends,
        as_synthetic.quality.column_pair_trends
    );
    assert_eq!(y.median_dcr_train, as_synthetic.privacy.median_dcr_train);
    assert!(y.quality.unwrap() < 1.0 && y.median_dcr_train > 0.0);
    let none = evaluate(&train, &a, &meta, &EvaluateOptions::default()).unwrap();
    assert!(none.holdout_yardstick.is_none());
}

#[test]
fn without_a_holdout_efficacy_splits_and_says_so() {
    let (real, synth, meta) = common::dataset("penguins");
    let options = EvaluateOptions {
        target: Some("body_mass_g".into()),
        ..EvaluateOptions::default()
    };
    let r = evaluate(&real, &synth, &meta, &options).unwrap();
    assert_eq!(r.privacy.dcr_share, None);
    let e = r.ml_efficacy.unwrap();
    assert!(e.holdout_seen_by_generator);
    assert_eq!(e.test_rows + e.real.train_rows, 342); // two rows have no body mass
    assert!(e.real.r2.unwrap() > 0.6, "{e:?}");
}

#[test]
fn the_html_report_is_self_contained() {
    let (real, synth, meta) = common::dataset("seattle_weather");
    let (train, holdout) = split(&real, 0.3, 1);
    let options = EvaluateOptions {
        target: Some("weather".into()),
        holdout: Some(&holdout),
        ..EvaluateOptions::default()
    };
    let report = evaluate(&train, &synth, &meta, &options).unwrap();
    let html = synth_evaluate::render_html(&report, &train, &synth, &meta);
    // 6 column plots + 2 heatmaps, nothing fetched from elsewhere.
    assert_eq!(html.matches("<svg").count(), 8, "{html}");
    assert!(!html.contains("plot unavailable"));
    for banned in ["<script", "<link", "src=", "url("] {
        assert!(!html.contains(banned), "{banned}");
    }
    assert!(html.contains("predicting weather") && html.contains("DCR share"));
    assert!(html.contains("Holdout vs training") && !html.contains("Protected values"));
    let mut protected = report.clone();
    // A datetime is shown as the data writes it, not as microseconds.
    let day = 86_400_000_000.0;
    protected.protected = vec![
        synth_evaluate::Protected {
            column: "weather".into(),
            rare_categories: 2,
            rare_rows: 3,
            clipped_low: None,
            clipped_high: Some((4, 35.6)),
            ..Default::default()
        },
        synth_evaluate::Protected {
            column: "date".into(),
            rare_categories: 0,
            rare_rows: 0,
            clipped_low: Some((2, 15_000.0 * day)),
            clipped_high: None,
            ..Default::default()
        },
    ];
    assert_eq!(
        meta.column("date").unwrap().datetime_format.as_deref(),
        Some("%Y-%m-%d")
    );
    // The JSON report says it too: the date beside its microseconds.
    let shown = protected.protected[1].clone().shown(&meta);
    assert_eq!(shown.clipped_low_shown.as_deref(), Some("2011-01-26"));
    assert_eq!(shown.clipped_high_shown, None);
    let html = synth_evaluate::render_html(&protected, &train, &synth, &meta);
    assert!(html.contains("Protected values") && html.contains("2 rare categories (3 rows)"));
    assert!(html.contains("The 4 highest values written as 35.6"));
    assert!(
        html.contains("The 2 lowest values written as 2011-01-26"),
        "{html}"
    );
    if let Ok(dir) = std::env::var("SYNTH_REPORT_DIR") {
        std::fs::write(format!("{dir}/seattle_weather_report.html"), &html).unwrap();
    }
}
