//! Numbers written for people: with a currency sign, thousands separators, a decimal comma
//! or a percent sign (`$1,952.09`, `1.234,50 €`, `1 234`, `12.5%`). A column is read with
//! one style found from all its values, so `1,234` is a thousand and more in a column that
//! writes `12,345,678` and a decimal in one that writes `372,7`; a column whose values do
//! not agree on a style stays text. Inference and applying metadata both read a column
//! through [`read`], so a column inferred numerical is converted the same way.
//!
//! Hand-written: number parsers take a fixed format, and finding a column's format from its
//! values is this platform's rule. Values are read as written (`12.5%` is 12.5); a generated
//! table writes them as plain numbers.

use synth_table::ColumnData;

/// Currency signs a value may start or end with.
const CURRENCY: &[char] = &[
    '$', '€', '£', '¥', '₹', '₩', '₽', '₺', '₪', '฿', '₫', '₴', '₦', '₱', '¢',
];

/// Characters that group digits by thousands besides `,` and `.`.
const SPACES: &[char] = &[' ', '\u{a0}', '\u{202f}', '\''];

/// A value taken apart: its sign, the text around the digits, and the digits with their
/// separators.
struct Parts<'a> {
    negative: bool,
    prefix: &'a str,
    body: &'a str,
    suffix: &'a str,
}

/// `-$1,234.50` → negative, `$`, `1,234.50`, ``. `None` when the text around the digits is
/// anything but a currency sign (optionally led by up to three capitals, `US$`), a percent
/// sign or a three-letter currency code.
fn parts(s: &str) -> Option<Parts<'_>> {
    let s = s.trim();
    let (mut negative, s) = match s.strip_prefix(['-', '−']) {
        Some(rest) => (true, rest.trim_start()),
        None => (false, s),
    };
    let digits_at = s.find(|c: char| c.is_ascii_digit())?;
    let (prefix, rest) = s.split_at(digits_at);
    let mut prefix = prefix.trim_end();
    if let Some(p) = prefix.strip_suffix(['-', '−'])
        && !negative
    {
        negative = true;
        prefix = p.trim_end();
    }
    let is_sign = |p: &str| {
        let mut chars = p.chars();
        chars.next_back().is_some_and(|c| CURRENCY.contains(&c))
            && chars.as_str().len() <= 3
            && chars.all(|c| c.is_ascii_uppercase())
    };
    if !(prefix.is_empty() || is_sign(prefix)) {
        return None;
    }
    let body_len = rest
        .find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | ',') || SPACES.contains(&c)))
        .unwrap_or(rest.len());
    let (body, suffix) = rest.split_at(body_len);
    let body = body.trim_end_matches(SPACES);
    let suffix = suffix.trim();
    let is_code = |p: &str| p.len() == 3 && p.chars().all(|c| c.is_ascii_uppercase());
    let suffix_ok = suffix.is_empty()
        || suffix == "%"
        || (prefix.is_empty() && (is_sign(suffix) || is_code(suffix)));
    // The body ends on a digit: `1,234.` or `12 ` are not numbers written this way.
    let body_ok = body.ends_with(|c: char| c.is_ascii_digit());
    (suffix_ok && body_ok).then_some(Parts {
        negative,
        prefix,
        body,
        suffix,
    })
}

/// How a column writes its numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    prefix: String,
    suffix: String,
    /// Between thousands, if the column groups them.
    group: Option<char>,
    decimal: char,
}

impl Style {
    /// Plain numbers (`1234.5`) are read as numbers already; a style is only worth reading
    /// with when it has something else.
    fn is_plain(&self) -> bool {
        self.prefix.is_empty()
            && self.suffix.is_empty()
            && self.group.is_none()
            && self.decimal == '.'
    }

    /// The one style every value's separators agree on (whether each value then parses in
    /// it is the caller's check).
    fn detect<'a>(values: impl Iterator<Item = &'a str> + Clone) -> Option<Style> {
        let first = parts(values.clone().next()?)?;
        let (prefix, suffix) = (first.prefix, first.suffix);
        let mut seps: Vec<char> = Vec::new();
        let mut decimal_seen = None;
        let mut comma_decimal = false;
        for v in values.clone() {
            let p = parts(v)?;
            if p.prefix != prefix || p.suffix != suffix {
                return None;
            }
            let here: Vec<char> = p.body.chars().filter(|c| !c.is_ascii_digit()).collect();
            for c in &here {
                if !seps.contains(c) {
                    seps.push(*c);
                }
            }
            // Where a value has two kinds of separator, the last one is the decimal.
            if let Some(&last) = here.last()
                && here.iter().any(|c| *c != last)
            {
                if decimal_seen.is_some_and(|d| d != last) {
                    return None;
                }
                decimal_seen = Some(last);
            }
            // One comma not followed by exactly three digits: a decimal comma.
            if here == [','] && p.body.rsplit(',').next().is_some_and(|d| d.len() != 3) {
                comma_decimal = true;
            }
        }
        let (group, decimal) = match (seps.as_slice(), decimal_seen) {
            ([], _) => (None, '.'),
            (_, Some(d)) => (seps.iter().copied().find(|c| *c != d), d),
            ([','], None) if comma_decimal => (None, ','),
            ([c], None) if *c == '.' => {
                // Dots only: grouping if some value has more than one, else a decimal point.
                let grouped = values.clone().any(|v| v.matches('.').count() > 1);
                if grouped {
                    (Some('.'), ',')
                } else {
                    (None, '.')
                }
            }
            ([c], None) => (Some(*c), if *c == ',' { '.' } else { ',' }),
            _ => return None,
        };
        Some(Style {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            group,
            decimal,
        })
    }

    /// A value in this style: the number and whether it was written with decimals.
    fn parse(&self, s: &str) -> Option<(f64, bool)> {
        let p = parts(s)?;
        if p.prefix != self.prefix || p.suffix != self.suffix {
            return None;
        }
        let (int, frac) = match p.body.split_once(self.decimal) {
            Some((i, f)) => (i, Some(f)),
            None => (p.body, None),
        };
        if frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit())) {
            return None;
        }
        let mut groups = match self.group {
            Some(g) => int.split(g).collect::<Vec<_>>(),
            None => vec![int],
        };
        let grouped = groups.len() > 1;
        let head = groups.remove(0);
        let digits_only = |g: &str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
        if !digits_only(head)
            || (grouped && head.len() > 3)
            || groups.iter().any(|g| g.len() != 3 || !digits_only(g))
            // Leading zeros (`007`) are codes, not quantities.
            || (head.len() > 1 && head.starts_with('0'))
        {
            return None;
        }
        let mut text = String::with_capacity(p.body.len() + 1);
        if p.negative {
            text.push('-');
        }
        text.push_str(head);
        groups.iter().for_each(|g| text.push_str(g));
        if let Some(f) = frac {
            text.push('.');
            text.push_str(f);
        }
        let x = text.parse::<f64>().ok().filter(|x| x.is_finite())?;
        Some((x, frac.is_some()))
    }
}

/// A text column of numbers written in one style other than plain (see the module's doc)
/// as numbers: integers when none is written with decimals, else floats; `None` when the
/// values do not agree on such a style.
pub(crate) fn read(values: &[Option<String>]) -> Option<ColumnData> {
    let present = values.iter().flatten().map(String::as_str);
    let style = Style::detect(present).filter(|s| !s.is_plain())?;
    // Missing values stay missing; one value that does not parse refuses the style.
    let parsed: Vec<Option<(f64, bool)>> = values
        .iter()
        .map(|v| match v.as_deref() {
            None => Some(None),
            Some(s) => style.parse(s).map(Some),
        })
        .collect::<Option<_>>()?;
    let integral = parsed
        .iter()
        .flatten()
        .all(|(x, decimals)| !decimals && x.abs() < 9.0e15);
    Some(if integral {
        ColumnData::Int(parsed.iter().map(|p| p.map(|(x, _)| x as i64)).collect())
    } else {
        ColumnData::Float(parsed.iter().map(|p| p.map(|(x, _)| x)).collect())
    })
}

/// The style of `values` described for a reason a user reads (`"$1,952.09"`); `None` for
/// plain numbers or no common style.
pub(crate) fn describe<'a>(values: impl Iterator<Item = &'a str> + Clone) -> Option<String> {
    let example = values.clone().next()?;
    let style = Style::detect(values.clone()).filter(|s| !s.is_plain())?;
    values
        .into_iter()
        .all(|v| style.parse(v).is_some())
        .then(|| format!("numbers written like {example:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(values: &[&str]) -> Option<ColumnData> {
        let v: Vec<Option<String>> = values
            .iter()
            .map(|s| (!s.is_empty()).then(|| (*s).to_owned()))
            .collect();
        read(&v)
    }

    /// A column's values as numbers, and whether they came out as integers.
    fn numbers(values: &[&str]) -> (Vec<Option<f64>>, bool) {
        match column(values) {
            Some(ColumnData::Float(v)) => (v, false),
            Some(ColumnData::Int(v)) => (v.iter().map(|x| x.map(|x| x as f64)).collect(), true),
            other => panic!("{values:?}: {other:?}"),
        }
    }

    #[test]
    fn currency_thousands_decimal_commas_and_percents_read_as_numbers() {
        let n = Some;
        type Case<'a> = (&'a [&'a str], &'a [Option<f64>], bool);
        let cases: [Case; 10] = [
            (
                &["$1,952.09", "$3,819.69", "", "-$12.50"],
                &[n(1952.09), n(3819.69), None, n(-12.5)],
                false,
            ),
            (
                &["372,70", "1323,26", "5,5"],
                &[n(372.7), n(1323.26), n(5.5)],
                false,
            ),
            (&["1.234,50 €", "12,00 €"], &[n(1234.5), n(12.0)], false),
            (
                &["778,820", "1,234,567", "12"],
                &[n(778_820.0), n(1_234_567.0), n(12.0)],
                true,
            ),
            (
                &["1 234", "56 789", "12"],
                &[n(1234.0), n(56789.0), n(12.0)],
                true,
            ),
            (
                &["1.234.567", "12.345"],
                &[n(1_234_567.0), n(12_345.0)],
                true,
            ),
            (
                &["89.3%", "9.4%", "100%"],
                &[n(89.3), n(9.4), n(100.0)],
                false,
            ),
            (&["1'234.50", "99.00"], &[n(1234.5), n(99.0)], false),
            (&["US$5", "US$1,000"], &[n(5.0), n(1000.0)], true),
            (&["5 EUR", "1,000 EUR"], &[n(5.0), n(1000.0)], true),
        ];
        for (values, expected, integers) in cases {
            assert_eq!(numbers(values), (expected.to_vec(), integers), "{values:?}");
        }
    }

    #[test]
    fn what_is_not_one_style_of_number_stays_text() {
        for values in [
            &["1.5", "2"][..],                       // plain numbers: read as numbers already
            &["$5", "€5"],                           // two currencies
            &["1,5", "1,234.5"],                     // a decimal comma, then a thousands comma
            &["1.2.3", "2.0.1"],                     // versions
            &["1,2,3", "4,5"],                       // lists
            &["+1 555 123 4567", "+1 555 987 6543"], // phone numbers
            &["007", "012"],                         // codes with leading zeros
            &["12kg", "3kg"],                        // units
            &["1,23,456", "12"],                     // groups of other than three
            &["$", "$5"],                            // no digits
            &["abc", "def"],
        ] {
            assert_eq!(column(values), None, "{values:?}");
        }
    }

    #[test]
    fn the_style_is_described_with_an_example() {
        let v = ["$1,952.09", "$5.00"];
        assert_eq!(
            describe(v.iter().copied()).as_deref(),
            Some("numbers written like \"$1,952.09\"")
        );
        assert_eq!(describe(["1.5", "2"].iter().copied()), None);
    }
}
