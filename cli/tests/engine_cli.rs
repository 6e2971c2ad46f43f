//! `synth generate` and `synth evaluate` as a user runs them: real files in, real files and
//! figures out, clear errors for bad input.

mod common;

use std::process::Command;

use common::{
    PENGUINS, PENGUINS_META, Scratch, assert_fails_saying, assert_says, synth, synth_json,
    synth_ok, text,
};

#[test]
fn generate_then_evaluate_a_real_table() {
    let tmp = Scratch::new();
    let (out, model) = (tmp.path("synthetic.csv"), tmp.path("model"));
    let figures: serde_json::Value = synth_json(&[
        "generate",
        PENGUINS,
        "--metadata",
        PENGUINS_META,
        "--model",
        "ctgan",
        "--epochs",
        "2",
        "--batch-size",
        "100",
        "--seed",
        "7",
        "--json",
        "-o",
        &out,
        "--save-model",
        &model,
    ]);
    assert_eq!(
        (
            figures["rows"].as_u64(),
            figures["columns"].as_u64(),
            figures["epochs"].as_u64()
        ),
        (Some(344), Some(8), Some(2))
    );
    assert_eq!(figures["model"], "ctgan");
    for key in [
        "fit_seconds",
        "transformer_fit_seconds",
        "seconds_per_epoch",
        "sample_seconds",
        "peak_rss_mb",
    ] {
        assert!(
            figures[key].as_f64().is_some_and(|v| v >= 0.0),
            "{key}: {figures}"
        );
    }
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "species,island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year"
    );
    assert_eq!(csv.lines().count(), 345);

    // The saved model samples without the data, honouring a condition.
    let cond = tmp.path("gentoo.csv");
    synth_ok(&[
        "generate",
        "--load-model",
        &model,
        "--rows",
        "10",
        "--condition",
        "species=Gentoo",
        "-o",
        &cond,
    ]);
    let rows: Vec<_> = std::fs::read_to_string(&cond)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_owned)
        .collect();
    assert_eq!(rows.len(), 10);
    assert!(rows.iter().all(|r| r.starts_with("Gentoo,")), "{rows:?}");

    let html = tmp.path("report.html");
    let report: serde_json::Value = synth_json(&[
        "evaluate",
        PENGUINS,
        &out,
        "--metadata",
        PENGUINS_META,
        "--target",
        "species",
        "--json",
        "--html",
        &html,
    ]);
    let q = report["quality"]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&q), "{q}");
    assert!(report["quality"]["columns"].as_array().unwrap().len() >= 7);
    assert!(report["ml_efficacy"]["synthetic"].is_object());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("<svg") && !page.contains("<script"));
}

#[test]
fn bad_input_is_a_clear_error() {
    let tmp = Scratch::new();
    let out = tmp.path("o.csv");
    let header_only = tmp.write("h.csv", "a,b\n");
    // `synth generate` with `args` and an output fails, saying `needle`.
    let refused = |args: &[&str], needle: &str| {
        let args = [&["generate"], args, &["-o", &out]].concat();
        assert_fails_saying(&synth(&args), needle);
    };
    refused(
        &[PENGUINS, "--epochs", "1", "--condition", "species=Dodo"],
        "Dodo",
    );
    refused(&[&header_only], "header");
    // A batch that pac does not divide.
    refused(
        &[PENGUINS, "--model", "ctgan", "--batch-size", "123"],
        "pac",
    );
    refused(&["/nonexistent.csv"], "/nonexistent.csv");
    // Too few rows to learn from rather than copy.
    let nine: String = (0..9).map(|i| format!("{i},{}\n", i % 3)).collect();
    let nine = tmp.write("nine.csv", format!("a,b\n{nine}"));
    refused(&[&nine], "at least 10");
    refused(&[PENGUINS, "--rows", "1000000000"], "--rows 1000000000");
    refused(
        &[PENGUINS, "--max-minutes", "0"],
        "positive number of minutes",
    );

    // Outputs the run could not write are refused before anything else is looked at (the
    // batch that pac does not divide is never reached), and the input is never overwritten.
    let input = tmp.write("input.csv", std::fs::read(PENGUINS).unwrap());
    let before = std::fs::read(&input).unwrap();
    let missing = tmp.path("no-such-folder/out.csv");
    let no_format = tmp.path("out.foo");
    for (output, needle) in [
        (input.as_str(), "that is an input"),
        (missing.as_str(), "does not exist"),
        (no_format.as_str(), "unsupported output format"),
    ] {
        let args = [
            "generate",
            &input,
            "--model",
            "ctgan",
            "--batch-size",
            "123",
        ];
        let o = synth(&[&args[..], &["-o", output]].concat());
        assert_fails_saying(&o, needle);
        assert!(!text(&o.stderr).contains("pac"), "{}", text(&o.stderr));
    }
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the input is untouched"
    );
}

#[test]
fn a_printing_command_ends_quietly_when_its_reader_goes() {
    use std::process::Stdio;
    let child = Command::new(env!("CARGO_BIN_EXE_synth"))
        .args(["profile", PENGUINS])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes before the first line is written.
    let mut child = child;
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(101));
}

/// The browser the rendering test drives: `SYNTH_CHROMIUM`, or Debian's chromium.
fn chromium() -> std::path::PathBuf {
    let candidates = std::env::var_os("SYNTH_CHROMIUM")
        .map(std::path::PathBuf::from)
        .into_iter()
        .chain(["/usr/bin/chromium", "/usr/bin/chromium-browser"].map(Into::into));
    candidates.into_iter().find(|p| p.exists()).expect(
        "this test renders the report in headless Chromium: install Debian's chromium \
         (scripts/test does) or point SYNTH_CHROMIUM at a Chromium binary",
    )
}

/// The HTML report renders in a real browser: headless Chromium takes a screenshot of it,
/// and the picture is not a blank page. Chromium is required (scripts/test installs Debian's
/// package): without it the test fails, saying so, rather than passing unchecked.
#[test]
fn html_report_renders_in_headless_chromium() {
    let chromium = chromium();
    let tmp = Scratch::new();
    let html = tmp.path("report.html");
    // A synthetic table that differs from the real one: the real table against itself shuffled
    // would score 1.0 everywhere; the plots must show two distributions.
    let real = std::fs::read_to_string(PENGUINS).unwrap();
    let shifted: Vec<String> = real
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 || i % 3 != 0 {
                l.to_owned()
            } else {
                l.replacen("Adelie", "Gentoo", 1)
            }
        })
        .collect();
    let synthetic = tmp.write("s.csv", shifted.join("\n"));
    synth_ok(&[
        "evaluate",
        PENGUINS,
        &synthetic,
        "--metadata",
        PENGUINS_META,
        "--html",
        &html,
    ]);
    let shot = tmp.path("shot.png");
    let status = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", tmp.path("profile")))
        .arg(format!("--screenshot={shot}"))
        .arg(format!("file://{html}"))
        .output()
        .expect("run chromium");
    assert!(status.status.success(), "{}", text(&status.stderr));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert_eq!(&png[1..4], b"PNG");
    // A blank 1200x1600 page compresses to a few KB; charts and tables take far more.
    assert!(
        png.len() > 30_000,
        "the screenshot looks empty ({} bytes)",
        png.len()
    );
}

/// The constraints crate's stays table (check-out after check-in, a price in the night's
/// band, a city in its country), its broken copy and its rules.
fn stays(name: &str) -> String {
    format!(
        "{}/../shared/constraints/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn generate_keeps_declared_constraints_and_names_broken_real_rows() {
    let tmp = Scratch::new();
    let (rules, out) = (tmp.path("constraints.json"), tmp.path("synthetic.csv"));
    std::fs::copy(stays("stays.constraints.json"), &rules).unwrap();
    let (good, broken) = (stays("stays.csv"), stays("stays_broken.csv"));
    let run = |data: &str, model: &str, extra: &[&str]| {
        let mut args = vec![
            "generate",
            data,
            "--model",
            model,
            "--epochs",
            "3",
            "--batch-size",
            "100",
            "--rows",
            "2000",
            "--constraints",
            &rules,
            "-o",
            &out,
        ];
        args.extend_from_slice(extra);
        synth(&args)
    };
    for model in ["ctgan", "tvae"] {
        let o = run(&good, model, &[]);
        assert!(o.status.success(), "{model}: {}", text(&o.stderr));
        let csv = std::fs::read_to_string(&out).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some("checkin,checkout,low,price,high,country,city")
        );
        let mut n = 0;
        for line in lines {
            let f: Vec<&str> = line.split(',').collect();
            assert!(f[0] < f[1], "{model}: {line}");
            let num = |i: usize| f[i].parse::<f64>().unwrap();
            assert!(num(2) <= num(3) && num(3) <= num(4), "{model}: {line}");
            assert!(
                matches!(
                    (f[5], f[6]),
                    ("FR", "Paris") | ("FR", "Lyon") | ("DE", "Berlin")
                ),
                "{model}: {line}"
            );
            n += 1;
        }
        assert_eq!(n, 2000, "{model}");
    }
    // Conditions on a number, a date range and a category hold in every row.
    let o = run(
        &good,
        "ctgan",
        &[
            "--condition",
            "price>=50",
            "--condition",
            "checkin=2024-03-05..2024-03-12",
            "--condition",
            "country=FR",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let csv = std::fs::read_to_string(&out).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(
            f[3].parse::<f64>().unwrap() >= 50.0 && f[5] == "FR",
            "{line}"
        );
        assert!(("2024-03-05"..="2024-03-12").contains(&f[0]), "{line}");
    }
    let o = run(&good, "ctgan", &["--condition", "city>=Paris"]);
    assert_fails_saying(&o, "a range applies to numerical and datetime columns");
    // Two real rows check out the day they check in: named, and refused unless dropped.
    let o = run(&broken, "ctgan", &[]);
    assert_fails_saying(
        &o,
        "Inequality(checkin < checkout) in 2 rows (e.g. row 5 after the header",
    );
    let o = run(&broken, "ctgan", &["--on-violation", "drop"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_says(
        &o,
        "left out 2 real rows that break Inequality(checkin < checkout)",
    );
    // The rules the table obeys, found and kept without a file.
    let o = synth_ok(&[
        "generate",
        &good,
        "--model",
        "ctgan",
        "--epochs",
        "3",
        "--batch-size",
        "100",
        "--discover-constraints",
        "-o",
        &out,
    ]);
    assert_says(&o, "keeping Inequality(checkin < checkout)");
    let csv = std::fs::read_to_string(&out).unwrap();
    assert!(csv.lines().skip(1).all(|l| l[..10] < l[11..21]), "{csv}");
    // A constraint on a column the table lacks is refused before anything is trained.
    std::fs::write(
        &rules,
        r#"[{"constraint_class": "Positive", "constraint_parameters": {"column_name": "nope"}}]"#,
    )
    .unwrap();
    assert_fails_saying(&run(&good, "ctgan", &[]), "no column \"nope\"");
}

/// The rows of a CSV as maps, header first.
fn csv_rows(path: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn argn_generates_imputes_completes_and_rebalances_through_the_cli() {
    let tmp = Scratch::new();
    // No `--model`: argn is the default.
    let o = synth_ok(&[
        "generate",
        PENGUINS,
        "--metadata",
        PENGUINS_META,
        "--epochs",
        "20",
        "--seed",
        "3",
        "--json",
        "-o",
        &tmp.path("out.csv"),
        "--save-model",
        &tmp.path("model"),
    ]);
    let figures: serde_json::Value = serde_json::from_str(text(&o.stdout).trim()).unwrap();
    assert_eq!(
        (figures["rows"].as_u64(), figures["columns"].as_u64()),
        (Some(344), Some(8))
    );
    assert_eq!(figures["model"], "argn", "{figures}");
    // Penguins' extreme measurements are protected, and said so.
    assert!(
        figures["protected"]
            .as_array()
            .is_some_and(|p| !p.is_empty()),
        "{figures}"
    );
    assert_says(&o, "protected: ");
    assert_eq!(csv_rows(&tmp.path("out.csv")).len(), 344);
    // Same seed, same bytes, from the saved model.
    let model = tmp.path("model");
    let again = |out: &str, extra: &[&str]| {
        let mut args = vec!["generate", "--load-model", &model];
        args.extend_from_slice(extra);
        let o = synth(&[&args[..], &["-o", &tmp.path(out)]].concat());
        assert!(o.status.success(), "{}", text(&o.stderr));
    };
    again("a.csv", &["--rows", "200", "--seed", "5"]);
    again("b.csv", &["--rows", "200", "--seed", "5"]);
    assert_eq!(
        std::fs::read(tmp.path("a.csv")).unwrap(),
        std::fs::read(tmp.path("b.csv")).unwrap()
    );
    // Imputation: every given cell kept, every null filled.
    again("imputed.csv", &["--impute", PENGUINS]);
    let (real, imputed) = (csv_rows(PENGUINS), csv_rows(&tmp.path("imputed.csv")));
    assert_eq!(real.len(), imputed.len());
    assert!(real.iter().flat_map(|r| r.values()).any(String::is_empty));
    for (r, i) in real.iter().zip(&imputed) {
        for (k, v) in r {
            if v.is_empty() {
                assert!(!i[k].is_empty(), "{k} stayed null");
            } else {
                assert_eq!(&i[k], v, "{k}");
            }
        }
    }
    // Seed rows: the given column kept row by row, the others drawn.
    let seeds = tmp.write("seeds.csv", "island\nDream\nBiscoe\nDream\n");
    again("seeded.csv", &["--seed-rows", &seeds]);
    let seeded = csv_rows(&tmp.path("seeded.csv"));
    let islands: Vec<&str> = seeded.iter().map(|r| r["island"].as_str()).collect();
    assert_eq!(islands, ["Dream", "Biscoe", "Dream"]);
    assert!(seeded.iter().all(|r| !r["species"].is_empty()));
    // A seed value the model never saw is refused, as a condition on it is.
    let mars = tmp.write("mars.csv", "island\nDream\nMars\n");
    assert_fails_saying(
        &synth(&[
            "generate",
            "--load-model",
            &model,
            "--seed-rows",
            &mars,
            "-o",
            &tmp.path("x.csv"),
        ]),
        "seed row 2: column \"island\" has no category \"Mars\"",
    );
    // Rebalancing: exactly the shares asked.
    again(
        "balanced.csv",
        &[
            "--rows",
            "100",
            "--rebalance",
            "species=Adelie:0.3,Chinstrap:0.7",
        ],
    );
    let balanced = csv_rows(&tmp.path("balanced.csv"));
    let adelie = balanced.iter().filter(|r| r["species"] == "Adelie").count();
    let chinstrap = balanced
        .iter()
        .filter(|r| r["species"] == "Chinstrap")
        .count();
    assert_eq!((adelie, chinstrap), (30, 70));
    // Shares short of 1: the rest of the rows take the other categories.
    again(
        "partly.csv",
        &["--rows", "100", "--rebalance", "species=Chinstrap:0.5"],
    );
    let partly = csv_rows(&tmp.path("partly.csv"));
    let count = |s: &str| partly.iter().filter(|r| r["species"] == s).count();
    assert_eq!(count("Chinstrap"), 50);
    assert_eq!(count("Adelie") + count("Gentoo"), 50);
    assert!(count("Adelie") > 0 && count("Gentoo") > 0);
    // An unknown category is a clear error, and other models say they cannot complete rows.
    let fails_saying = |args: &[&str], needle: &str| assert_fails_saying(&synth(args), needle);
    let x = tmp.path("x.csv");
    let rebalance_fails = |spec: &str, needle: &str| {
        let args = ["generate", "--load-model", &model, "--rows", "5"];
        fails_saying(
            &[&args[..], &["--rebalance", spec, "-o", &x]].concat(),
            needle,
        )
    };
    rebalance_fails("species=Dodo:1", "no category \"Dodo\"");
    rebalance_fails("species=Adelie:0.7,Gentoo:0.7", "more than 1");
    // A saved model is of its own kind: naming another is refused, not ignored.
    fails_saying(
        &[
            "generate",
            "--load-model",
            &model,
            "--model",
            "tvae",
            "--rows",
            "5",
            "-o",
            &x,
        ],
        "cannot be used with",
    );
    fails_saying(
        &[
            "generate",
            PENGUINS,
            "--metadata",
            PENGUINS_META,
            "--model",
            "tvae",
            "--epochs",
            "1",
            "--impute",
            PENGUINS,
            "-o",
            &x,
        ],
        "argn model can",
    );
}
