//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the scores, real-vs-synthetic distributions per column, the real and synthetic
//! correlation heatmaps side by side, and the privacy and efficacy figures — so it can be
//! stored with a generation and opened anywhere, offline.

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, PreEscaped, html};
use plotters::prelude::*;
use synth_table::{Metadata, SdType, Table};

use crate::values::{self, Shape};
use crate::{ColumnPairTrend, DiagnosticReport, EvaluationReport, MlEfficacyReport, QualityReport};

const REAL: RGBColor = RGBColor(31, 119, 180);
const SYNTH: RGBColor = RGBColor(255, 127, 14);
const BINS: usize = 30;
const MAX_BARS: usize = 15;

/// The page's style sheet (inline: the page fetches nothing).
const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1280px}\
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;\
padding:4px 10px;text-align:left}th{background:#f3f3f3}td.n{text-align:right}\
.grid{display:flex;flex-wrap:wrap;gap:12px}.grid>div{border:1px solid #eee}\
.big{font-size:28px;font-weight:bold}.muted{color:#777}\
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}";

/// Render the report as an HTML page. `real` and `synthetic` are the tables the report was
/// computed from (the plots need their values, the report keeps only scores). The page is a
/// maud template: every text it shows from the data (column names, metrics) is escaped.
pub fn render_html(
    report: &EvaluationReport,
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Synth evaluation report" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                "\n" h1 { "Synthetic data evaluation" } "\n"
                (scores(report))
                (protection(&report.protected, metadata))
                (column_shapes(report, real, synthetic, metadata))
                (correlations(&report.quality))
                (pairs(&report.quality.pairs))
                (diagnostic(&report.diagnostic))
                (privacy(report))
                @if let Some(e) = &report.ml_efficacy { (efficacy(e)) }
            }
        }
        "\n"
    }
    .into_string()
}

fn scores(report: &EvaluationReport) -> Markup {
    let q = &report.quality;
    let y = report.holdout_yardstick.as_ref();
    let rows = [
        ("Quality", q.score, y.map(|y| y.quality)),
        ("Column shapes", q.column_shapes, y.map(|y| y.column_shapes)),
        (
            "Column pair trends",
            q.column_pair_trends,
            y.map(|y| y.column_pair_trends),
        ),
        (
            "Diagnostic: data validity",
            report.diagnostic.data_validity,
            None,
        ),
        (
            "Diagnostic: data structure",
            Some(report.diagnostic.data_structure),
            None,
        ),
    ];
    html! {
        p.big { "Quality " (pct(q.score)) } "\n"
        table {
            tr {
                th { "Measure" } th { "Score" }
                @if y.is_some() { th { "Holdout vs training" } }
            }
            @for (name, score, beside) in rows {
                tr {
                    td { (name) } td.n { (pct(score)) }
                    @if y.is_some() { td.n { (pct(beside.flatten())) } }
                }
            }
        }
        @if y.is_some() {
            p.muted {
                "Holdout vs training: the real rows the model never saw, scored against the "
                "training rows as a synthetic table is: what a generator that copies nothing "
                "scores. Far above it means copying; far below, that the model misses the data."
            }
        }
        "\n"
    }
}

/// What the model never reproduced, column by column.
fn protection(protected: &[crate::Protected], metadata: &Metadata) -> Markup {
    html! {
        @if !protected.is_empty() {
            h2 { "Protected values" } "\n"
            p.muted { "Values the model never writes, so no rare real value is reproduced." }
            table {
                tr { th { "Column" } th { "What is protected" } }
                @for p in protected {
                    tr {
                        td { (p.column) }
                        td {
                            @if p.rare_categories > 0 {
                                (p.rare_categories) " rare categories (" (p.rare_rows) " rows) never written. "
                            }
                            @if let Some((rows, to)) = p.clipped_low {
                                "The " (rows) " lowest values written as " (metadata.show(&p.column, to)) ". "
                            }
                            @if let Some((rows, to)) = p.clipped_high {
                                "The " (rows) " highest values written as " (metadata.show(&p.column, to)) "."
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A real-vs-synthetic plot per column the metadata describes.
fn column_shapes(
    report: &EvaluationReport,
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> Markup {
    let plots = report.quality.columns.iter().filter_map(|c| {
        let meta = metadata.column(&c.column)?;
        let (r, s) = (real.column(&c.column)?, synthetic.column(&c.column)?);
        let title = format!("{} — {} {}", c.column, c.metric, pct(c.score));
        Some(match values::shape_of(meta) {
            Some(Shape::Continuous) => histogram(
                &title,
                &values::numeric(&r.data),
                &values::numeric(&s.data),
                meta.sdtype == SdType::Datetime,
            ),
            _ => bars(&title, &values::labels(&r.data), &values::labels(&s.data)),
        })
    });
    html! {
        h2 { "Column shapes" } "\n"
        p.legend {
            span style="background:#1f77b4" {} "real"
            span style="background:#ff7f0e" {} "synthetic"
        }
        "\n" div.grid { "\n" @for plot in plots { (figure(plot)) } } "\n"
    }
}

/// A plot in its frame, or why there is none.
fn figure(svg: Result<String, String>) -> Markup {
    html! {
        div {
            @match svg {
                Ok(svg) => (PreEscaped(svg)),
                Err(e) => p.muted { "plot unavailable: " (e) },
            }
        }
        "\n"
    }
}

/// The real and synthetic correlation heatmaps of the numerical and datetime columns.
fn correlations(q: &QualityReport) -> Markup {
    let names: Vec<&str> = q
        .columns
        .iter()
        .filter(|c| c.metric == "KSComplement")
        .map(|c| c.column.as_str())
        .collect();
    let side = |pick: fn(&ColumnPairTrend) -> Option<f64>| -> HashMap<(&str, &str), f64> {
        q.pairs
            .iter()
            .filter_map(|p| Some(((p.column_1.as_str(), p.column_2.as_str()), pick(p)?)))
            .collect()
    };
    html! {
        h2 { "Correlations (Pearson, numerical and datetime columns)" } "\n"
        div.grid {
            "\n"
            @if names.len() >= 2 {
                (figure(heatmap("Real data", &names, &side(|p| p.real_correlation))))
                (figure(heatmap("Synthetic data", &names, &side(|p| p.synthetic_correlation))))
            } @else {
                p.muted { "Fewer than two numerical columns." }
            }
        }
        "\n"
    }
}

fn pairs(pairs: &[ColumnPairTrend]) -> Markup {
    let head = ["Column 1", "Column 2", "Metric", "Score", "Counts"];
    html! {
        h2 { "Column pairs" } "\n"
        table {
            tr { @for h in head { th { (h) } } } "\n"
            @for p in pairs {
                tr {
                    td { (p.column_1) } td { (p.column_2) } td { (p.metric) }
                    td.n { (pct(p.score)) }
                    td { @if p.meets_threshold { "yes" } @else { "no (weak in real data)" } }
                }
                "\n"
            }
        }
        "\n"
    }
}

fn diagnostic(d: &DiagnosticReport) -> Markup {
    html! {
        h2 { "Diagnostic" } "\n"
        table {
            tr { th { "Column" } th { "Check" } th { "Score" } } "\n"
            @for c in &d.columns {
                tr { td { (c.column) } td { (c.metric) } td.n { (pct(c.score)) } } "\n"
            }
        }
        "\n"
    }
}

fn privacy(report: &EvaluationReport) -> Markup {
    let p = &report.privacy;
    let holdout = p
        .median_dcr_holdout
        .map_or("—".into(), |v| format!("{v:.4}"));
    let yardstick = report
        .holdout_yardstick
        .as_ref()
        .map_or(String::new(), |y| {
            format!(" (holdout rows: {:.4})", y.median_dcr_train)
        });
    let rows = [
        (
            "DCR share (synthetic rows closer to training than to holdout; ~50% is good)",
            pct(p.dcr_share),
        ),
        (
            "Median distance to closest training row",
            format!("{:.4}{yardstick}", p.median_dcr_train),
        ),
        ("Median distance to closest holdout row", holdout),
        (
            "Synthetic rows copying a training row",
            pct(Some(p.exact_match_share)),
        ),
        (
            "Holdout rows equal to a training row (baseline)",
            pct(p.holdout_exact_match_share),
        ),
        (
            "Median nearest-neighbour distance ratio",
            format!("{:.3}", p.median_nndr),
        ),
    ];
    html! {
        h2 { "Privacy" } "\n"
        table {
            tr { th { "Measure" } th { "Value" } }
            @for (name, value) in rows { tr { td { (name) } td.n { (value) } } }
        }
        p.muted {
            (p.sampled_synthetic_rows) " synthetic and " (p.sampled_reference_rows)
            " reference rows sampled per table."
        }
        "\n"
    }
}

fn efficacy(e: &MlEfficacyReport) -> Markup {
    let seen = if e.holdout_seen_by_generator {
        " (split from the training data: the synthetic score is optimistic)"
    } else {
        ""
    };
    let head = ["Trained on", "Accuracy", "Macro F1", "R²", "Rows"];
    html! {
        h2 { "Machine-learning efficacy: predicting " (e.target) } "\n"
        p { (e.task) " (" (e.model) "), tested on " (e.test_rows) " real rows" (seen) "." }
        table {
            tr { @for h in head { th { (h) } } }
            @for (name, s) in [("real", &e.real), ("synthetic", &e.synthetic)] {
                tr {
                    td { (name) }
                    td.n { (pct(s.accuracy)) }
                    td.n { (pct(s.f1_macro)) }
                    td.n { (s.r2.map_or("—".into(), |v| format!("{v:.3}"))) }
                    td.n { (s.train_rows) }
                }
            }
        }
        "\n"
    }
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))
}

/// Overlaid density histograms over the range of both sides.
fn histogram(
    title: &str,
    real: &[Option<f64>],
    synth: &[Option<f64>],
    datetime: bool,
) -> Result<String, String> {
    let r: Vec<f64> = real.iter().flatten().copied().collect();
    let s: Vec<f64> = synth.iter().flatten().copied().collect();
    let (mut lo, mut hi) = r
        .iter()
        .chain(&s)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| {
            (l.min(x), h.max(x))
        });
    if lo > hi {
        return Err("no values".into());
    }
    if lo == hi {
        lo -= 0.5;
        hi += 0.5;
    }
    let width = (hi - lo) / BINS as f64;
    let density = |v: &[f64]| -> Vec<f64> {
        let mut c = vec![0.0; BINS];
        for x in v {
            c[(((x - lo) / width) as usize).min(BINS - 1)] += 1.0;
        }
        let n = v.len().max(1) as f64;
        c.iter().map(|k| k / n).collect()
    };
    let (dr, ds) = (density(&r), density(&s));
    let top = dr
        .iter()
        .chain(&ds)
        .fold(0.0f64, |a, &b| a.max(b))
        .max(1e-9)
        * 1.1;
    // Datetimes (ns) are labelled as dates, with the time of day when the range is short.
    let day_ns = 86_400e9;
    let date_format = if hi - lo < 5.0 * day_ns {
        "%Y-%m-%d %H:%M"
    } else {
        "%Y-%m-%d"
    };
    let date = |x: &f64| synth_table::datetime::format((x / 1e3) as i64, date_format);
    let ticks: Option<&TickNames<'_>> = datetime.then_some(&date);
    let count = if datetime { 3 } else { 5 };
    share_plot(title, lo..hi, top, (count, ticks), |chart| {
        for (d, color) in [(&dr, REAL), (&ds, SYNTH)] {
            chart
                .draw_series(d.iter().enumerate().map(|(i, &v)| {
                    let a = lo + i as f64 * width;
                    Rectangle::new([(a, 0.0), (a + width, v)], color.mix(0.5).filled())
                }))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// Side-by-side bars of category shares (the most frequent categories of both sides).
fn bars(title: &str, real: &[Option<String>], synth: &[Option<String>]) -> Result<String, String> {
    let share = |v: &[Option<String>]| -> HashMap<String, f64> {
        let mut m = HashMap::new();
        for x in v {
            *m.entry(x.clone().unwrap_or_else(|| "(missing)".into()))
                .or_insert(0.0) += 1.0 / v.len().max(1) as f64;
        }
        m
    };
    let (sr, ss) = (share(real), share(synth));
    let mut cats: Vec<(&String, f64)> = sr
        .iter()
        .map(|(k, v)| (k, *v))
        .chain(
            ss.iter()
                .filter(|(k, _)| !sr.contains_key(*k))
                .map(|(k, v)| (k, *v)),
        )
        .collect();
    cats.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    cats.truncate(MAX_BARS);
    if cats.is_empty() {
        return Err("no values".into());
    }
    let top = cats
        .iter()
        .map(|(k, _)| {
            sr.get(*k)
                .copied()
                .unwrap_or(0.0)
                .max(ss.get(*k).copied().unwrap_or(0.0))
        })
        .fold(0.0f64, f64::max)
        .max(1e-9)
        * 1.1;
    let labels: Vec<String> = cats
        .iter()
        .map(|(k, _)| k.chars().take(12).collect())
        .collect();
    let n = cats.len();
    let label = |v: &f64| tick(*v, 0.0, n).map_or_else(String::new, |i| labels[i].clone());
    let x = -0.5f64..n as f64 - 0.5;
    share_plot(title, x, top, (n + 1, Some(&label)), |chart| {
        for (m, color, off) in [(&sr, REAL, -0.4), (&ss, SYNTH, 0.0)] {
            chart
                .draw_series(cats.iter().enumerate().map(|(i, (k, _))| {
                    let v = m.get(*k).copied().unwrap_or(0.0);
                    let a = i as f64 + off;
                    Rectangle::new([(a, 0.0), (a + 0.4, v)], color.filled())
                }))
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// How a chart names its x ticks.
type TickNames<'a> = dyn Fn(&f64) -> String + 'a;

/// A 2-D chart of values in 0..1 shown as percent.
type ShareChart<'a, 'b> = ChartContext<
    'a,
    SVGBackend<'b>,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// A 400×260 SVG of shares (the y axis in percent, up to `top`) over `x`, titled as the column
/// plots are; `x_labels` is how many ticks and how each is named (numbers when `None`).
fn share_plot(
    title: &str,
    x: std::ops::Range<f64>,
    top: f64,
    x_labels: (usize, Option<&TickNames<'_>>),
    draw: impl FnOnce(&mut ShareChart) -> Result<(), String>,
) -> Result<String, String> {
    svg((400, 260), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(x, 0f64..top)
            .map_err(|e| e.to_string())?;
        let percent = |v: &f64| format!("{:.0}%", v * 100.0);
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(x_labels.0)
            .y_labels(4)
            .y_label_formatter(&percent);
        if let Some(name) = x_labels.1 {
            mesh.x_label_formatter(name);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        draw(&mut chart)
    })
}

/// Column names as an axis has room for them: one longer than 10 characters ends in `…`,
/// so a cut one is seen to be cut.
fn axis_names(names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|s| match s.chars().count() {
            0..=10 => (*s).to_owned(),
            _ => s.chars().take(9).chain(['…']).collect(),
        })
        .collect()
}

/// An SVG of `size`, drawn by `draw` on a white page.
fn svg(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, plotters::coord::Shift>) -> Result<(), String>,
) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Which of `n` categories a tick at `v` names: those at `offset + i` for a whole `i`.
fn tick(v: f64, offset: f64, n: usize) -> Option<usize> {
    let i = (v - offset).round();
    ((v - offset - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n).then_some(i as usize)
}

/// A correlation matrix as coloured cells: blue −1, white 0, red +1, grey unknown.
fn heatmap(title: &str, names: &[&str], m: &HashMap<(&str, &str), f64>) -> Result<String, String> {
    let n = names.len();
    let get = |i: usize, j: usize| -> Option<f64> {
        if i == j {
            return Some(1.0);
        }
        m.get(&(names[i], names[j]))
            .or_else(|| m.get(&(names[j], names[i])))
            .copied()
    };
    let color = |v: Option<f64>| -> RGBColor {
        match v {
            None => RGBColor(200, 200, 200),
            Some(v) => {
                let t = v.clamp(-1.0, 1.0);
                let fade = |c: u8, t: f64| (255.0 - (255.0 - f64::from(c)) * t) as u8;
                if t >= 0.0 {
                    RGBColor(fade(214, t), fade(39, t), fade(40, t))
                } else {
                    RGBColor(fade(31, -t), fade(119, -t), fade(180, -t))
                }
            }
        }
    };
    let short = axis_names(names);
    let label = |v: &f64| tick(*v, 0.5, n).map_or_else(String::new, |i| short[i].clone());
    // Rows are drawn from the top, so the y axis names them bottom-up.
    let y_label = |v: &f64| tick(*v, 0.5, n).map_or_else(String::new, |i| short[n - 1 - i].clone());
    svg((440, 420), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n as f64, 0f64..n as f64)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(2 * n + 1)
            .y_labels(2 * n + 1)
            .x_label_formatter(&label)
            .y_label_formatter(&y_label)
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .map(|(i, j)| {
                        // Row i from the top, so the diagonal runs top-left to bottom-right.
                        let y = (n - 1 - i) as f64;
                        Rectangle::new(
                            [(j as f64, y), (j as f64 + 1.0, y + 1.0)],
                            color(get(i, j)).filled(),
                        )
                    }),
            )
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(
                (0..n)
                    .flat_map(|i| (0..n).map(move |j| (i, j)))
                    .filter_map(|(i, j)| {
                        let v = get(i, j)?;
                        let y = (n - 1 - i) as f64;
                        Some(Text::new(
                            format!("{v:.2}"),
                            (j as f64 + 0.3, y + 0.6),
                            ("sans-serif", 11).into_font(),
                        ))
                    }),
            )
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plots_are_inline_svg() {
        let svg = histogram("x", &[Some(1.0), Some(2.0)], &[Some(1.5)], false).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{svg}");
        let svg = bars("c", &[Some("a".into()), None], &[Some("b".into())]).unwrap();
        assert!(svg.contains("(missing)"));
        let m = HashMap::from([(("a", "b"), -0.5)]);
        let svg = heatmap("h", &["a", "b"], &m).unwrap();
        assert!(svg.contains("-0.50") && svg.contains("1.00"));
        let long = HashMap::from([(("ts_iso_nulls", "b"), 0.5)]);
        let svg = heatmap("h", &["ts_iso_nulls", "b"], &long).unwrap();
        assert!(svg.contains("ts_iso_nu…"), "{svg}");
        assert!(histogram("x", &[None], &[None], false).is_err());
        // Datetimes (ns) are labelled as dates, not fractional years.
        let day = 86_400e9;
        let (jan, mar) = (19_723.0 * day, 19_783.0 * day);
        let svg = histogram("d", &[Some(jan), Some(mar)], &[Some(jan)], true).unwrap();
        assert!(svg.contains("2024-0") && !svg.contains("2024.0"), "{svg}");
        let hours = histogram("d", &[Some(jan), Some(jan + day / 2.0)], &[], true).unwrap();
        assert!(hours.contains("2024-01-01 0"), "{hours}");
    }

    /// Text from the data is escaped by the template; the plots go in as they are.
    #[test]
    fn the_page_escapes_what_the_data_says() {
        use synth_table::{Column, ColumnData, ColumnMetadata};
        let name = "a<b & \"c\">";
        let table = |values: [&str; 3]| {
            let data = (0..30).map(|i| Some(values[i % 3].to_owned())).collect();
            Table::new(vec![Column {
                name: name.into(),
                data: ColumnData::Str(data),
            }])
            .unwrap()
        };
        let (real, synth) = (table(["<x>", "y", "z"]), table(["<x>", "y", "y"]));
        let meta = Metadata::new(vec![(
            name.into(),
            ColumnMetadata::new(SdType::Categorical),
        )]);
        let report = crate::evaluate(&real, &synth, &meta, &Default::default()).unwrap();
        let page = render_html(&report, &real, &synth, &meta);
        assert!(
            page.starts_with("<!DOCTYPE html>\n<html lang=\"en\"><head>"),
            "{page}"
        );
        assert!(
            page.contains("<td>a&lt;b &amp; &quot;c&quot;&gt;</td>"),
            "{page}"
        );
        assert!(!page.contains(name));
        assert!(page.contains("<style>body{") && page.contains(".grid>div{"));
        assert!(page.contains("Fewer than two numerical columns."));
        assert_eq!(page.matches("<svg").count(), 1);
        assert!(page.ends_with("</body></html>\n"));
    }
}
