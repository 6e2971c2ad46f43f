//! The HTML report: one self-contained page (inline CSS and SVG, no script, nothing fetched)
//! with the scores, real-vs-synthetic distributions per column, the real and synthetic
//! correlation heatmaps side by side, and the privacy and efficacy figures — so it can be
//! stored with a generation and opened anywhere, offline.

use std::collections::HashMap;
use std::fmt::Write as _;

use plotters::prelude::*;
use synth_table::{Metadata, SdType, Table};

use crate::EvaluationReport;
use crate::values::{self, Shape};

const REAL: RGBColor = RGBColor(31, 119, 180);
const SYNTH: RGBColor = RGBColor(255, 127, 14);
const BINS: usize = 30;
const MAX_BARS: usize = 15;

/// Render the report as an HTML page. `real` and `synthetic` are the tables the report was
/// computed from (the plots need their values, the report keeps only scores).
pub fn render_html(
    report: &EvaluationReport,
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
) -> String {
    let mut h = String::new();
    h.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Synth evaluation report</title><style>\
         body{font-family:sans-serif;margin:24px;color:#222;max-width:1280px}\
         table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;\
         padding:4px 10px;text-align:left}th{background:#f3f3f3}td.n{text-align:right}\
         .grid{display:flex;flex-wrap:wrap;gap:12px}.grid>div{border:1px solid #eee}\
         .big{font-size:28px;font-weight:bold}.muted{color:#777}\
         .legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}\
         </style></head><body>\n<h1>Synthetic data evaluation</h1>\n",
    );
    let q = &report.quality;
    let _ = write!(
        h,
        "<p class=\"big\">Quality {}</p>\n<table><tr><th>Measure</th><th>Score</th></tr>\
         <tr><td>Column shapes</td><td class=\"n\">{}</td></tr>\
         <tr><td>Column pair trends</td><td class=\"n\">{}</td></tr>\
         <tr><td>Diagnostic: data validity</td><td class=\"n\">{}</td></tr>\
         <tr><td>Diagnostic: data structure</td><td class=\"n\">{}</td></tr></table>\n",
        pct(q.score),
        pct(q.column_shapes),
        pct(q.column_pair_trends),
        pct(report.diagnostic.data_validity),
        pct(Some(report.diagnostic.data_structure)),
    );

    h.push_str("<h2>Column shapes</h2>\n<p class=\"legend\"><span style=\"background:#1f77b4\"></span>real<span style=\"background:#ff7f0e\"></span>synthetic</p>\n<div class=\"grid\">\n");
    for c in &q.columns {
        let Some(meta) = metadata.column(&c.column) else {
            continue;
        };
        let (Some(r), Some(s)) = (real.column(&c.column), synthetic.column(&c.column)) else {
            continue;
        };
        let title = format!("{} — {} {}", c.column, c.metric, pct(c.score));
        let svg = match values::shape_of(meta.sdtype) {
            Some(Shape::Continuous) => histogram(
                &title,
                &values::numeric(&r.data),
                &values::numeric(&s.data),
                meta.sdtype == SdType::Datetime,
            ),
            _ => bars(&title, &values::labels(&r.data), &values::labels(&s.data)),
        };
        let _ = writeln!(h, "<div>{}</div>", svg.unwrap_or_else(|e| plot_error(&e)));
    }
    h.push_str("</div>\n");

    h.push_str(
        "<h2>Correlations (Pearson, numerical and datetime columns)</h2>\n<div class=\"grid\">\n",
    );
    let names: Vec<&str> = q
        .columns
        .iter()
        .filter(|c| c.metric == "KSComplement")
        .map(|c| c.column.as_str())
        .collect();
    if names.len() >= 2 {
        let mut real_m = HashMap::new();
        let mut synth_m = HashMap::new();
        for p in &q.pairs {
            if let Some(v) = p.real_correlation {
                real_m.insert((p.column_1.as_str(), p.column_2.as_str()), v);
            }
            if let Some(v) = p.synthetic_correlation {
                synth_m.insert((p.column_1.as_str(), p.column_2.as_str()), v);
            }
        }
        for (title, m) in [("Real data", &real_m), ("Synthetic data", &synth_m)] {
            let svg = heatmap(title, &names, m).unwrap_or_else(|e| plot_error(&e));
            let _ = writeln!(h, "<div>{svg}</div>");
        }
    } else {
        h.push_str("<p class=\"muted\">Fewer than two numerical columns.</p>");
    }
    h.push_str("</div>\n");

    h.push_str("<h2>Column pairs</h2>\n<table><tr><th>Column 1</th><th>Column 2</th><th>Metric</th><th>Score</th><th>Counts</th></tr>\n");
    for p in &q.pairs {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            esc(&p.column_1),
            esc(&p.column_2),
            esc(&p.metric),
            pct(p.score),
            if p.meets_threshold {
                "yes"
            } else {
                "no (weak in real data)"
            }
        );
    }
    h.push_str("</table>\n");

    h.push_str(
        "<h2>Diagnostic</h2>\n<table><tr><th>Column</th><th>Check</th><th>Score</th></tr>\n",
    );
    for c in &report.diagnostic.columns {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            esc(&c.column),
            esc(&c.metric),
            pct(c.score)
        );
    }
    h.push_str("</table>\n");

    let p = &report.privacy;
    let _ = write!(
        h,
        "<h2>Privacy</h2>\n<table><tr><th>Measure</th><th>Value</th></tr>\
         <tr><td>DCR share (synthetic rows closer to training than to holdout; ~50% is good)</td><td class=\"n\">{}</td></tr>\
         <tr><td>Median distance to closest training row</td><td class=\"n\">{:.4}</td></tr>\
         <tr><td>Median distance to closest holdout row</td><td class=\"n\">{}</td></tr>\
         <tr><td>Synthetic rows copying a training row</td><td class=\"n\">{}</td></tr>\
         <tr><td>Holdout rows equal to a training row (baseline)</td><td class=\"n\">{}</td></tr>\
         <tr><td>Median nearest-neighbour distance ratio</td><td class=\"n\">{:.3}</td></tr>\
         </table><p class=\"muted\">{} synthetic and {} reference rows sampled per table.</p>\n",
        pct(p.dcr_share),
        p.median_dcr_train,
        p.median_dcr_holdout
            .map_or("—".into(), |v| format!("{v:.4}")),
        pct(Some(p.exact_match_share)),
        pct(p.holdout_exact_match_share),
        p.median_nndr,
        p.sampled_synthetic_rows,
        p.sampled_reference_rows,
    );

    if let Some(e) = &report.ml_efficacy {
        let row = |name: &str, s: &crate::EfficacyScores| {
            format!(
                "<tr><td>{name}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                pct(s.accuracy),
                pct(s.f1_macro),
                s.r2.map_or("—".into(), |v| format!("{v:.3}")),
                s.train_rows
            )
        };
        let _ = write!(
            h,
            "<h2>Machine-learning efficacy: predicting {}</h2>\n<p>{} ({}), tested on {} real rows{}.</p>\
             <table><tr><th>Trained on</th><th>Accuracy</th><th>Macro F1</th><th>R²</th><th>Rows</th></tr>{}{}</table>\n",
            esc(&e.target),
            esc(&e.task),
            esc(&e.model),
            e.test_rows,
            if e.holdout_seen_by_generator {
                " (split from the training data: the synthetic score is optimistic)"
            } else {
                ""
            },
            row("real", &e.real),
            row("synthetic", &e.synthetic),
        );
    }
    h.push_str("</body></html>\n");
    h
}

fn pct(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn plot_error(e: &str) -> String {
    format!("<p class=\"muted\">plot unavailable: {}</p>", esc(e))
}

/// Overlaid density histograms over the range of both sides.
fn histogram(
    title: &str,
    real: &[Option<f64>],
    synth: &[Option<f64>],
    datetime: bool,
) -> Result<String, String> {
    // Datetimes (ns) are shown as fractional years.
    let conv = |x: f64| {
        if datetime {
            1970.0 + x / (365.2425 * 86_400e9)
        } else {
            x
        }
    };
    let r: Vec<f64> = real.iter().flatten().map(|&x| conv(x)).collect();
    let s: Vec<f64> = synth.iter().flatten().map(|&x| conv(x)).collect();
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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (400, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(lo..hi, 0f64..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(5)
            .y_labels(4)
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (d, color) in [(&dr, REAL), (&ds, SYNTH)] {
            chart
                .draw_series(d.iter().enumerate().map(|(i, &v)| {
                    let a = lo + i as f64 * width;
                    Rectangle::new([(a, 0.0), (a + width, v)], color.mix(0.5).filled())
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (400, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 14))
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(-0.5f64..n as f64 - 0.5, 0f64..top)
            .map_err(|e| e.to_string())?;
        let label = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(WHITE)
            .x_labels(n + 1)
            .x_label_formatter(&label)
            .y_labels(4)
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .draw()
            .map_err(|e| e.to_string())?;
        for (m, color, off) in [(&sr, REAL, -0.4), (&ss, SYNTH, 0.0)] {
            chart
                .draw_series(cats.iter().enumerate().map(|(i, (k, _))| {
                    let v = m.get(*k).copied().unwrap_or(0.0);
                    let a = i as f64 + off;
                    Rectangle::new([(a, 0.0), (a + 0.4, v)], color.filled())
                }))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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
    let short: Vec<String> = names.iter().map(|s| s.chars().take(10).collect()).collect();
    let label = |v: &f64| {
        let i = (v - 0.5).round();
        if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
            short[i as usize].clone()
        } else {
            String::new()
        }
    };
    // Rows are drawn from the top, so the y axis names them bottom-up.
    let y_label = |v: &f64| {
        let i = (v - 0.5).round();
        if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
            short[n - 1 - i as usize].clone()
        } else {
            String::new()
        }
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (440, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
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
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
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
        assert!(histogram("x", &[None], &[None], false).is_err());
    }
}
