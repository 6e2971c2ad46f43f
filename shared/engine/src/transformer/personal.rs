//! Personal data — emails, phone numbers, free text, any column marked `pii` — is never learned and
//! never copied: a model would hand real addresses back (a categorical column's values are
//! real ones by design). Such a column is generated as SDV anonymises it, with values of the
//! real ones' shapes and none of their characters: each letter and digit of a real value is
//! replaced by a random one, its punctuation kept (`+44 (20) 7946-0958` keeps its layout), and
//! an email is written at one of the domains reserved for examples (RFC 2606), so a generated
//! address never reaches anyone. Only shapes are kept (`aaaa.aaaaa`, `+99 (99) 9999-9999`),
//! never a real value, so a saved model holds no personal data either.
//!
//! Written by hand: fake-data crates draw from fixed formats (US phone numbers, Lorem
//! words), not from the shapes of the table at hand.

use rand::Rng;
use serde::{Deserialize, Serialize};
use synth_table::ColumnData;

use super::discrete::{ValueRepr, value_key};
use crate::random::{EngineRng, weighted_index};

/// Most shapes kept; rarer ones are left out (their rows take the kept shapes).
const MAX_SHAPES: usize = 50;

/// The domains generated emails are written at (reserved for examples, RFC 2606).
const EXAMPLE_DOMAINS: [&str; 3] = ["example.com", "example.net", "example.org"];

/// The shapes of a personal column's real values, and how many were null.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shapes {
    /// Emails: shapes of the part before the `@`; generated ones get an example domain.
    email: bool,
    /// Shapes (lowercase letter `a`, uppercase `A`, digit `9`, anything else as it is), most
    /// frequent first, with their counts.
    shapes: Vec<(String, u64)>,
    nulls: u64,
    rows: u64,
}

/// A value's shape: what it holds where, without what it holds.
fn shape_of(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_ascii_digit() || c.is_numeric() {
                '9'
            } else if c.is_uppercase() {
                'A'
            } else if c.is_alphabetic() {
                'a'
            } else {
                c
            }
        })
        .collect()
}

impl Shapes {
    /// Whether a column of this representation can be generated from shapes (text and
    /// numbers; a personal boolean or datetime column is learned as any other).
    pub fn fits(repr: ValueRepr) -> bool {
        matches!(repr, ValueRepr::Str | ValueRepr::Int | ValueRepr::Float)
    }

    pub fn fit(data: &ColumnData, email: bool) -> Self {
        let mut counts: std::collections::HashMap<String, u64> = Default::default();
        let mut nulls = 0;
        let numeric = !matches!(data, ColumnData::Str(_));
        let finite = |v: &String| !numeric || v.parse::<f64>().is_ok_and(f64::is_finite);
        for i in 0..data.len() {
            // A number that is not finite (NaN, inf) is as good as missing.
            let Some(v) = value_key(data, i).filter(finite) else {
                nulls += 1;
                continue;
            };
            let local = match v.rsplit_once('@') {
                Some((local, _)) if email => local,
                _ => v.as_str(),
            };
            *counts.entry(shape_of(local)).or_default() += 1;
        }
        let mut shapes: Vec<(String, u64)> = counts.into_iter().collect();
        // Most frequent first; ties (every shape of free text is seen once) in an order
        // that is fixed but unrelated to the text, so the shapes kept are a fair sample of
        // them, not the alphabetically first (those starting with a digit or a capital).
        let scattered = |s: &str| {
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            s.hash(&mut h);
            h.finish()
        };
        shapes.sort_by_cached_key(|(s, c)| (std::cmp::Reverse(*c), scattered(s), s.clone()));
        shapes.truncate(MAX_SHAPES);
        Self {
            email,
            shapes,
            nulls,
            rows: data.len() as u64,
        }
    }

    /// `n` values of the real shapes, in their real shares, nulls in theirs.
    pub fn generate(&self, n: usize, repr: ValueRepr, rng: &mut EngineRng) -> ColumnData {
        let null_share = self.nulls as f64 / self.rows.max(1) as f64;
        self.draw(n, repr, null_share, rng)
    }

    /// `n` values of the real shapes and no null (what imputing fills nulls with); `None`
    /// when the real column had no value to take a shape from.
    pub fn generate_present(
        &self,
        n: usize,
        repr: ValueRepr,
        rng: &mut EngineRng,
    ) -> Option<ColumnData> {
        (!self.shapes.is_empty()).then(|| self.draw(n, repr, 0.0, rng))
    }

    fn draw(&self, n: usize, repr: ValueRepr, null_share: f64, rng: &mut EngineRng) -> ColumnData {
        let weights: Vec<f64> = self.shapes.iter().map(|(_, c)| *c as f64).collect();
        let values = (0..n).map(|_| {
            if self.shapes.is_empty() || rng.random::<f64>() < null_share {
                return None;
            }
            let shape = &self.shapes[weighted_index(rng, &weights)].0;
            let mut v = fill(shape, rng);
            if self.email {
                v = format!("{v}@{}", EXAMPLE_DOMAINS[rng.random_range(0..3)]);
            }
            Some((shape, v))
        });
        let values: Vec<Option<(&String, String)>> = values.collect();
        match repr {
            ValueRepr::Int => ColumnData::Int(values.into_iter().map(|d| number(d, rng)).collect()),
            ValueRepr::Float => {
                ColumnData::Float(values.into_iter().map(|d| number(d, rng)).collect())
            }
            _ => ColumnData::Str(values.into_iter().map(|d| d.map(|(_, v)| v)).collect()),
        }
    }
}

/// A drawn number as its type, drawn again from its shape while it does not fit (19 digits
/// may pass an i64's largest).
fn number<T: std::str::FromStr>(
    drawn: Option<(&String, String)>,
    rng: &mut EngineRng,
) -> Option<T> {
    let (shape, first) = drawn?;
    std::iter::once(first)
        .chain(std::iter::repeat_with(|| fill(shape, rng)).take(15))
        .find_map(|v| v.parse().ok())
}

/// A value of `shape`: random letters and digits where the shape has them.
fn fill(shape: &str, rng: &mut EngineRng) -> String {
    let letter = |rng: &mut EngineRng| (b'a' + rng.random_range(0..26u8)) as char;
    shape
        .chars()
        .map(|c| match c {
            'a' => letter(rng),
            'A' => letter(rng).to_ascii_uppercase(),
            '9' => (b'0' + rng.random_range(0..10u8)) as char,
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::rng_for;

    #[test]
    fn emails_keep_their_shapes_and_go_to_example_domains() {
        let real: Vec<String> = (0..200).map(|i| format!("user{i}@ex.com")).collect();
        let column = real
            .iter()
            .cloned()
            .map(Some)
            .chain(std::iter::repeat_n(None, 50));
        let shapes = Shapes::fit(&ColumnData::Str(column.collect()), true);
        let ColumnData::Str(out) = shapes.generate(1000, ValueRepr::Str, &mut rng_for(1, 1)) else {
            panic!("text")
        };
        let nulls = out.iter().filter(|v| v.is_none()).count();
        assert!(
            (150..250).contains(&nulls),
            "{nulls} nulls of 1000, 20% real"
        );
        for v in out.iter().flatten() {
            assert!(!real.contains(v), "{v} is a real address");
            let (local, domain) = v.split_once('@').unwrap();
            assert!(EXAMPLE_DOMAINS.contains(&domain), "{v}");
            assert!(
                ["aaaa9", "aaaa99", "aaaa999"].contains(&shape_of(local).as_str()),
                "{v}"
            );
        }
        // Nothing real is kept, only shapes.
        let saved = serde_json::to_string(&shapes).unwrap();
        assert!(
            !saved.contains("user") && !saved.contains("ex.com"),
            "{saved}"
        );
    }

    #[test]
    fn unique_text_keeps_a_fair_sample_of_its_shapes() {
        // 1,000 notes, each its own shape, a tenth starting with a digit: the shapes kept are
        // not the alphabetically first (digits sort before letters).
        let notes: Vec<Option<String>> = (0..1000)
            .map(|i| {
                let words = "x".repeat(1 + i % 17) + " " + &"y".repeat(1 + i / 17);
                Some(if i % 10 == 0 {
                    format!("{i} {words}")
                } else {
                    words
                })
            })
            .collect();
        let shapes = Shapes::fit(&ColumnData::Str(notes), false);
        let ColumnData::Str(drawn) = shapes.generate(1000, ValueRepr::Str, &mut rng_for(0, 0))
        else {
            panic!("text")
        };
        let digit_first = drawn
            .iter()
            .flatten()
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()))
            .count();
        assert!(
            digit_first < 300,
            "{digit_first} of 1000 start with a digit"
        );
    }

    #[test]
    fn phone_numbers_keep_their_layout_and_numbers_stay_numbers() {
        let phones = ["+44 (20) 7946-0958", "+44 (20) 7946-0959"].map(|p| Some(p.to_owned()));
        let phones = ColumnData::Str(phones.to_vec());
        let shapes = Shapes::fit(&phones, false);
        let ColumnData::Str(out) = shapes.generate(20, ValueRepr::Str, &mut rng_for(2, 1)) else {
            panic!("text")
        };
        for v in out.iter().flatten() {
            assert_eq!(shape_of(v), "+99 (99) 9999-9999", "{v}");
        }
        let ids = ColumnData::Int(vec![Some(123_456_789), Some(987_654_321), None]);
        let shapes = Shapes::fit(&ids, false);
        let ColumnData::Int(out) = shapes.generate(30, ValueRepr::Int, &mut rng_for(3, 1)) else {
            panic!("integers")
        };
        assert!(
            out.iter()
                .flatten()
                .all(|&x| (0..1_000_000_000).contains(&x))
        );
        assert!(out.iter().flatten().count() > 10);
        // Nineteen digits overflow an i64 at times: drawn again, never a made-up null.
        let big = ColumnData::Int(vec![Some(9_000_000_000_000_000_000); 3]);
        let shapes = Shapes::fit(&big, false);
        let ColumnData::Int(out) = shapes.generate(200, ValueRepr::Int, &mut rng_for(4, 1)) else {
            panic!("integers")
        };
        assert!(out.iter().all(Option::is_some));
        // A float that is not finite counts as missing.
        let floats = ColumnData::Float(vec![Some(1.5), Some(f64::NAN)]);
        assert_eq!(Shapes::fit(&floats, false).nulls, 1);
    }
}
