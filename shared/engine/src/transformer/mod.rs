//! The data transformer shared by every model: it turns a [`Table`] into the `f32` matrix the
//! networks learn from and turns their output back into a table of the same shape, types and
//! value sets. Continuous columns (numerical, datetime) use mode-specific normalisation
//! ([`continuous`]); discrete columns (categorical, boolean; text, email and phone are
//! treated as categorical with the same frequency cut-off) are one-hot ([`discrete`]); `id`
//! columns are not modelled and are regenerated unique, and personal data (emails, phone
//! numbers, columns marked `pii`) is not modelled and is generated in the real shapes
//! ([`personal`]).

pub mod continuous;
pub mod discrete;
pub mod gmm;
pub mod personal;

use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use synth_table::{Column, ColumnData, ColumnMetadata, Metadata, SdType, Table};

use crate::condition::{Condition, Test};
use crate::error::{EngineError, Result};
use crate::random::rng_for;
use continuous::ContinuousTransform;
use discrete::{DiscreteTransform, IdTransform};
use personal::Shapes;

/// Knobs of the transformer; the defaults are the reference implementation's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransformerOptions {
    /// Most mixture modes per continuous column.
    pub max_modes: usize,
    /// Modes with a smaller mixture weight are dropped.
    pub weight_threshold: f64,
    /// Concentration of the Dirichlet-process prior on the mode weights.
    pub weight_concentration_prior: f64,
    pub max_gmm_iter: usize,
    /// Discrete columns with more distinct values keep the most frequent and pool the rest.
    pub max_categories: usize,
    /// Keep generated numbers within the real min / max.
    pub clip_to_range: bool,
}

impl Default for TransformerOptions {
    fn default() -> Self {
        Self {
            max_modes: 10,
            weight_threshold: 0.005,
            weight_concentration_prior: 0.001,
            max_gmm_iter: 100,
            max_categories: 500,
            clip_to_range: true,
        }
    }
}

/// The activation a span of the encoded matrix expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpanKind {
    /// One value in (−1, 1): a mode-relative offset.
    Tanh,
    /// A one-hot group.
    Softmax,
}

/// A contiguous group of encoded columns with one activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub kind: SpanKind,
    pub width: usize,
}

impl Span {
    /// `width` values squashed by tanh (a mode's normalised value).
    pub const fn tanh(width: usize) -> Self {
        Self {
            kind: SpanKind::Tanh,
            width,
        }
    }

    /// A one-hot block of `width` values (modes, categories).
    pub const fn softmax(width: usize) -> Self {
        Self {
            kind: SpanKind::Softmax,
            width,
        }
    }
}

/// The one-hot span of a discrete column, which models may condition on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiscreteSpan {
    pub column: String,
    /// Where the span starts in an encoded row.
    pub offset: usize,
    pub width: usize,
}

/// An encoded table: `n_rows × width` values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    pub data: Vec<f32>,
    pub n_rows: usize,
    pub width: usize,
}

/// A condition read against its column.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub condition: Condition,
    pub check: Check,
    /// For a category: (discrete column index, its slot), what CTGAN's conditional vector
    /// takes.
    pub slot: Option<(usize, usize)>,
    /// About what share of the real rows met it, when the model knows.
    pub real_share: Option<f64>,
}

/// What a decoded row must have.
#[derive(Debug, Clone)]
pub enum Check {
    /// The value's key (as categories are matched).
    Category(String),
    Range {
        low: Option<(f64, bool)>,
        high: Option<(f64, bool)>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ColumnTransform {
    Continuous(Box<ContinuousTransform>),
    Discrete(DiscreteTransform),
    Id(IdTransform),
}

impl ColumnTransform {
    fn name(&self) -> &str {
        match self {
            ColumnTransform::Continuous(c) => &c.name,
            ColumnTransform::Discrete(d) => &d.name,
            ColumnTransform::Id(i) => &i.name,
        }
    }

    fn width(&self) -> usize {
        match self {
            ColumnTransform::Continuous(c) => c.width(),
            ColumnTransform::Discrete(d) => d.width(),
            ColumnTransform::Id(_) => 0,
        }
    }

    fn spans(&self) -> Vec<Span> {
        match self {
            ColumnTransform::Continuous(c) => c.spans(),
            ColumnTransform::Discrete(d) => d.spans(),
            ColumnTransform::Id(_) => Vec::new(),
        }
    }
}

/// The fitted transformer of one table; serialisable, so a saved model can sample without
/// the training data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataTransformer {
    columns: Vec<ColumnTransform>,
    options: TransformerOptions,
    /// Seeds the mode sampling of `transform`, so encoding is reproducible.
    seed: u64,
}

enum Kind {
    Continuous,
    Discrete,
    Id,
    /// Personal data, generated in the real values' shapes (`email`: at example domains).
    Personal {
        email: bool,
    },
}

/// How a column is represented: a key or personal data (that shapes can stand for) is
/// regenerated, the rest by sdtype.
fn kind_of(meta: &ColumnMetadata, is_key: bool, data: &ColumnData) -> Kind {
    if is_key {
        return Kind::Id;
    }
    if meta.is_personal() && Shapes::fits(discrete::repr_of(data)) {
        return Kind::Personal {
            email: meta.sdtype == SdType::Email,
        };
    }
    match meta.sdtype {
        SdType::Numerical | SdType::Datetime => Kind::Continuous,
        SdType::Categorical | SdType::Boolean | SdType::Text | SdType::Email | SdType::Phone => {
            Kind::Discrete
        }
        SdType::Id => Kind::Id,
    }
}

/// How [`DataTransformer::inverse`] shares out what the model draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shares {
    /// In the real table's shares: each category, point mass, mixture mode and null in its
    /// share of the real rows, and numbers in their real distribution (see `continuous`
    /// and `discrete`): for rows drawn as the whole table is.
    Real,
    /// As the model drew them: for rows conditioned through the model's input, whose
    /// shares differ from the table's.
    AsDrawn,
}

impl DataTransformer {
    /// Fits every column described by `metadata` (in its order); the mixtures of the
    /// continuous columns are fitted in parallel.
    pub fn fit(
        table: &Table,
        metadata: &Metadata,
        options: &TransformerOptions,
        seed: u64,
    ) -> Result<Self> {
        Self::fit_until(table, metadata, options, seed, None)
    }

    /// [`DataTransformer::fit`], giving up with [`EngineError::Stopped`] once `stop` is
    /// raised (checked before each column: a large table's mixtures take a while).
    pub fn fit_until(
        table: &Table,
        metadata: &Metadata,
        options: &TransformerOptions,
        seed: u64,
        stop: Option<&AtomicBool>,
    ) -> Result<Self> {
        if table.n_rows() == 0 {
            return Err(EngineError::InvalidData("the table has no rows".into()));
        }
        if metadata.columns.is_empty() {
            return Err(EngineError::InvalidData(
                "the metadata describes no columns".into(),
            ));
        }
        if options.max_modes == 0 || options.max_categories < 2 {
            return Err(EngineError::param(
                "transformer",
                "max_modes must be at least 1 and max_categories at least 2",
            ));
        }
        described(table, metadata)?;
        let jobs: Vec<(usize, &str, Kind, &ColumnData)> = metadata
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, meta))| {
                let col = table.column(name).ok_or_else(|| {
                    EngineError::InvalidData(format!(
                        "column {name:?} is in the metadata but not the table"
                    ))
                })?;
                let is_key = metadata.primary_key.as_deref() == Some(name);
                Ok((
                    i,
                    name.as_str(),
                    kind_of(meta, is_key, &col.data),
                    &col.data,
                ))
            })
            .collect::<Result<_>>()?;
        let columns = jobs
            .into_par_iter()
            .map(|(i, name, kind, data)| {
                if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                    return Err(EngineError::Stopped);
                }
                Ok(match kind {
                    Kind::Continuous => {
                        ColumnTransform::Continuous(Box::new(ContinuousTransform::fit(
                            name,
                            data,
                            options,
                            &mut rng_for(seed, 1000 + i as u64),
                        )?))
                    }
                    Kind::Discrete => ColumnTransform::Discrete(DiscreteTransform::fit(
                        name,
                        data,
                        options.max_categories,
                    )),
                    Kind::Id => ColumnTransform::Id(IdTransform::fit(name, data)),
                    Kind::Personal { email } => ColumnTransform::Id(
                        IdTransform::personal(name, data, email)
                            .expect("a representation shapes fit"),
                    ),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            columns,
            options: options.clone(),
            seed,
        })
    }

    /// Width of an encoded row.
    pub fn output_width(&self) -> usize {
        self.columns.iter().map(ColumnTransform::width).sum()
    }

    /// The activation spans of an encoded row, in order.
    pub fn spans(&self) -> Vec<Span> {
        self.columns
            .iter()
            .flat_map(ColumnTransform::spans)
            .collect()
    }

    /// The one-hot spans of the discrete columns (the ones models condition on), in order.
    pub fn discrete_spans(&self) -> Vec<DiscreteSpan> {
        let mut offset = 0;
        let mut out = Vec::new();
        for c in &self.columns {
            if let ColumnTransform::Discrete(d) = c {
                out.push(DiscreteSpan {
                    column: d.name.clone(),
                    offset,
                    width: d.width(),
                });
            }
            offset += c.width();
        }
        out
    }

    /// Names of the columns produced by [`inverse`](Self::inverse), in order.
    pub fn column_names(&self) -> Vec<&str> {
        self.columns.iter().map(ColumnTransform::name).collect()
    }

    pub fn options(&self) -> &TransformerOptions {
        &self.options
    }

    /// Encodes a table with the same columns as the one fitted on.
    pub fn transform(&self, table: &Table) -> Result<Encoded> {
        let n = table.n_rows();
        let blocks: Vec<Vec<f32>> = self
            .columns
            .par_iter()
            .enumerate()
            .map(|(i, ct)| {
                let col = table.column(ct.name()).ok_or_else(|| {
                    EngineError::InvalidData(format!("column {:?} is missing", ct.name()))
                })?;
                match ct {
                    ColumnTransform::Continuous(c) => {
                        c.encode(&col.data, &mut rng_for(self.seed, 2000 + i as u64))
                    }
                    ColumnTransform::Discrete(d) => {
                        d.encode(&col.data).map_err(EngineError::InvalidData)
                    }
                    ColumnTransform::Id(_) => Ok(Vec::new()),
                }
            })
            .collect::<Result<_>>()?;
        let width = self.output_width();
        let mut data = vec![0f32; n * width];
        let mut offset = 0;
        for block in &blocks {
            let w = block.len() / n.max(1);
            for (j, col) in block.chunks_exact(n.max(1)).enumerate() {
                for (i, v) in col.iter().enumerate() {
                    data[i * width + offset + j] = *v;
                }
            }
            offset += w;
        }
        Ok(Encoded {
            data,
            n_rows: n,
            width,
        })
    }

    /// Decodes `n_rows` rows of model output (activated: tanh values and one-hot or soft
    /// one-hot groups) into a table; `seed` drives the draws from high-cardinality tails.
    pub fn inverse(&self, data: &[f32], n_rows: usize, seed: u64, shares: Shares) -> Result<Table> {
        let width = self.output_width();
        if data.len() != n_rows * width {
            return Err(EngineError::InvalidData(format!(
                "expected {n_rows} rows of width {width}, got {} values",
                data.len()
            )));
        }
        let mut offsets = Vec::with_capacity(self.columns.len());
        let mut offset = 0;
        for c in &self.columns {
            offsets.push(offset);
            offset += c.width();
        }
        let columns: Vec<Column> = self
            .columns
            .par_iter()
            .enumerate()
            .map(|(i, ct)| {
                let rows = || column_rows(data, width, offsets[i], ct.width());
                let data = match ct {
                    ColumnTransform::Continuous(c) => {
                        c.decode(&rows(), shares, &mut rng_for(seed, 5000 + i as u64))
                    }
                    ColumnTransform::Discrete(d) => {
                        d.decode(&rows(), shares, &mut rng_for(seed, 3000 + i as u64))
                    }
                    ColumnTransform::Id(id) => {
                        id.generate(n_rows, &mut rng_for(seed, 7000 + i as u64))
                    }
                };
                Column {
                    name: ct.name().to_owned(),
                    data,
                }
            })
            .collect();
        Table::new(columns).map_err(EngineError::InvalidData)
    }

    /// Reads a condition against its column: a known category of a discrete column, or a
    /// value or range of a numerical or datetime one. Errors name the column and why.
    pub fn resolve(&self, c: &Condition) -> Result<Resolved> {
        let column = &c.column;
        let ct = self
            .columns
            .iter()
            .find(|t| t.name() == column)
            .ok_or_else(|| EngineError::InvalidCondition(format!("unknown column {column:?}")))?;
        match (ct, &c.test) {
            (ColumnTransform::Discrete(d), Test::Equals(value)) => {
                let key = d.canonical(value);
                if !d.knows(&key) {
                    return Err(EngineError::InvalidCondition(format!(
                        "column {column:?} has no category {value:?}"
                    )));
                }
                let index = self
                    .columns
                    .iter()
                    .filter(|t| matches!(t, ColumnTransform::Discrete(_)))
                    .position(|t| t.name() == column)
                    .expect("a discrete column");
                let slot = d.slot_of(Some(&key)).expect("a known value has a slot");
                Ok(Resolved {
                    condition: c.clone(),
                    check: Check::Category(key.clone()),
                    slot: Some((index, slot)),
                    real_share: d.share_of(&key),
                })
            }
            (ColumnTransform::Discrete(_), Test::Within { .. }) => {
                Err(EngineError::InvalidCondition(format!(
                    "column {column:?} is categorical: a range applies to numerical and datetime columns"
                )))
            }
            (ColumnTransform::Continuous(t), test) => {
                let (low, high) = match test {
                    Test::Equals(v) => {
                        let x = t.read(v)?;
                        let h = t.half_step();
                        (Some((x - h, true)), Some((x + h, h == 0.0)))
                    }
                    Test::Within { low, high } => {
                        let read = |b: &Option<crate::condition::Bound>| {
                            b.as_ref()
                                .map(|b| t.read(&b.value).map(|x| (x, b.inclusive)))
                                .transpose()
                        };
                        (read(low)?, read(high)?)
                    }
                };
                if let (Some((l, _)), Some((h, _))) = (low, high)
                    && l > h
                {
                    return Err(EngineError::InvalidCondition(format!(
                        "{c}: the low end is above the high end"
                    )));
                }
                Ok(Resolved {
                    condition: c.clone(),
                    check: Check::Range { low, high },
                    slot: None,
                    real_share: t.share_within(low, high),
                })
            }
            (ColumnTransform::Id(_), _) => Err(EngineError::InvalidCondition(format!(
                "column {column:?} is an id or personal data: its values are generated, not learned"
            ))),
        }
    }

    /// Renumbers the regenerated id columns of a table assembled from several decodes, so
    /// they stay unique.
    pub fn regenerate_ids(&self, table: &mut Table) {
        let n = table.n_rows();
        for ct in &self.columns {
            if let ColumnTransform::Id(id) = ct
                && id.is_key()
                && let Some(c) = table.columns.iter_mut().find(|c| c.name == id.name)
            {
                // Keys draw nothing at random.
                c.data = id.generate(n, &mut rng_for(self.seed, 0));
            }
        }
    }

    /// Whether row `i` of a decoded table meets a resolved condition.
    pub fn meets(&self, table: &Table, r: &Resolved, i: usize) -> bool {
        let Some(column) = table.column(&r.condition.column) else {
            return false;
        };
        match &r.check {
            Check::Category(key) => discrete::value_key(&column.data, i).as_deref() == Some(key),
            Check::Range { low, high } => {
                let x = match &column.data {
                    ColumnData::Float(v) => v[i],
                    ColumnData::Int(v) | ColumnData::Datetime(v) => v[i].map(|x| x as f64),
                    ColumnData::Bool(_) | ColumnData::Str(_) => None,
                };
                x.is_some_and(|x| crate::condition::within(x, *low, *high))
            }
        }
    }
}

/// Every column of `table` is described by `metadata`; an error names the first that is not.
pub(crate) fn described(table: &Table, metadata: &Metadata) -> Result<()> {
    match table
        .columns
        .iter()
        .find(|c| metadata.column(&c.name).is_none())
    {
        Some(extra) => Err(EngineError::InvalidData(format!(
            "column {:?} has no metadata",
            extra.name
        ))),
        None => Ok(()),
    }
}

/// The index of the largest value (the first of equal ones).
pub(crate) fn argmax<T: PartialOrd>(v: &[T]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

/// `n` shared out in proportion to `weights` (not all zero), rounded by largest remainder
/// (ties to the first): whole counts that sum to `n`.
pub(crate) fn largest_remainders(weights: &[f64], n: usize) -> Vec<usize> {
    let total: f64 = weights.iter().sum();
    let exact: Vec<f64> = weights.iter().map(|w| w / total * n as f64).collect();
    let mut counts: Vec<usize> = exact.iter().map(|x| x.floor() as usize).collect();
    let mut by_remainder: Vec<usize> = (0..exact.len()).collect();
    by_remainder
        .sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())));
    let short = n.saturating_sub(counts.iter().sum());
    for &i in by_remainder.iter().cycle().take(short) {
        counts[i] += 1;
    }
    counts
}

/// One column's span of each row of a model's output: the output is row-major, `stride`
/// values a row, and the column's `width` values start at `offset`.
pub(crate) fn column_rows(data: &[f32], stride: usize, offset: usize, width: usize) -> Vec<&[f32]> {
    data.chunks_exact(stride)
        .map(|row| &row[offset..offset + width])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use synth_table::ColumnMetadata;

    fn col(name: &str, data: ColumnData) -> Column {
        Column {
            name: name.into(),
            data,
        }
    }

    /// A table with every sdtype, each with missing values.
    fn sample_table(n: usize) -> (Table, Metadata) {
        let day = 86_400_000_000i64;
        let table = Table::new(vec![
            col(
                "id",
                ColumnData::Int((0..n as i64).map(|i| Some(100 + i)).collect()),
            ),
            col(
                "price",
                ColumnData::Float(
                    (0..n)
                        .map(|i| {
                            (i % 7 != 3).then(|| {
                                [1.25, 2.5, 9.75, 10.0, 55.5][i % 5] + (i % 3) as f64 * 0.01
                            })
                        })
                        .collect(),
                ),
            ),
            col(
                "count",
                ColumnData::Int(
                    (0..n)
                        .map(|i| (i % 9 != 0).then_some((i % 13) as i64 * 10))
                        .collect(),
                ),
            ),
            col(
                "when",
                ColumnData::Datetime(
                    (0..n)
                        .map(|i| (i % 11 != 0).then_some(18_000 * day + (i % 40) as i64 * day))
                        .collect(),
                ),
            ),
            col(
                "colour",
                ColumnData::Str(
                    (0..n)
                        .map(|i| (i % 6 != 0).then(|| ["red", "green", "blue"][i % 3].to_owned()))
                        .collect(),
                ),
            ),
            col(
                "flag",
                ColumnData::Bool((0..n).map(|i| (i % 5 != 0).then_some(i % 2 == 0)).collect()),
            ),
            col(
                "email",
                ColumnData::Str(
                    (0..n)
                        .map(|i| (i % 4 != 0).then(|| format!("user{}@x.org", i % 50)))
                        .collect(),
                ),
            ),
        ])
        .unwrap();
        let meta = Metadata::new(vec![
            ("id".into(), ColumnMetadata::new(SdType::Id)),
            ("price".into(), ColumnMetadata::new(SdType::Numerical)),
            ("count".into(), ColumnMetadata::new(SdType::Numerical)),
            ("when".into(), ColumnMetadata::new(SdType::Datetime)),
            ("colour".into(), ColumnMetadata::new(SdType::Categorical)),
            ("flag".into(), ColumnMetadata::new(SdType::Boolean)),
            // Declared not personal: learned as text is (personal data is tested below).
            (
                "email".into(),
                ColumnMetadata {
                    pii: Some(false),
                    ..ColumnMetadata::new(SdType::Email)
                },
            ),
        ]);
        (table, meta)
    }

    fn emails(t: &Table) -> &[Option<String>] {
        match &t.column("email").unwrap().data {
            ColumnData::Str(v) => v,
            _ => panic!("emails are strings"),
        }
    }

    #[test]
    fn personal_columns_are_generated_never_copied() {
        let (table, mut meta) = sample_table(400);
        meta.columns
            .iter_mut()
            .find(|(n, _)| n == "email")
            .unwrap()
            .1 = ColumnMetadata::new(SdType::Email);
        let t = DataTransformer::fit(&table, &meta, &TransformerOptions::default(), 5).unwrap();
        let enc = t.transform(&table).unwrap();
        let back = t.inverse(&enc.data, 400, 9, Shares::Real).unwrap();
        let (real, got) = (emails(&table), emails(&back));
        let real_set: std::collections::HashSet<_> = real.iter().flatten().collect();
        assert!(got.iter().flatten().all(|v| !real_set.contains(v)));
        assert!(got.iter().flatten().all(|v| v.contains("@example.")));
        let nulls = got.iter().filter(|v| v.is_none()).count();
        assert!(
            (60..140).contains(&nulls),
            "{nulls} nulls of 400, a quarter real"
        );
        // Nor can a sample be asked to meet one.
        let condition = Condition::equals("email", "user1@x.org");
        assert!(t.resolve(&condition).is_err());
    }

    #[test]
    fn free_text_is_personal_unless_its_metadata_says_not() {
        let notes: Vec<Option<String>> = (0..300)
            .map(|i| Some(format!("called on day {i}, asked about order {}", i * 7)))
            .collect();
        let table = Table::new(vec![col("note", ColumnData::Str(notes.clone()))]).unwrap();
        let real: std::collections::HashSet<_> = notes.iter().flatten().collect();
        let copied = |meta: ColumnMetadata| {
            let m = Metadata::new(vec![("note".into(), meta)]);
            let t = DataTransformer::fit(&table, &m, &TransformerOptions::default(), 5).unwrap();
            let enc = t.transform(&table).unwrap();
            let back = t.inverse(&enc.data, 300, 9, Shares::Real).unwrap();
            let ColumnData::Str(got) = &back.column("note").unwrap().data else {
                panic!("text")
            };
            got.iter().flatten().filter(|v| real.contains(v)).count()
        };
        assert_eq!(copied(ColumnMetadata::new(SdType::Text)), 0);
        let learned = ColumnMetadata {
            pii: Some(false),
            ..ColumnMetadata::new(SdType::Text)
        };
        assert!(copied(learned) > 0, "learned text draws real values");
    }

    #[test]
    fn encode_decode_round_trips_every_sdtype_with_nulls() {
        let (table, meta) = sample_table(400);
        let options = TransformerOptions {
            max_categories: 20,
            ..Default::default()
        };
        let t = DataTransformer::fit(&table, &meta, &options, 5).unwrap();
        let enc = t.transform(&table).unwrap();
        assert_eq!(enc.width, t.output_width());
        assert_eq!(enc.width, t.spans().iter().map(|s| s.width).sum::<usize>());
        // Every softmax span of every row is exactly one-hot; α stays within ±0.99.
        for row in enc.data.chunks_exact(enc.width) {
            let mut off = 0;
            for s in t.spans() {
                let v = &row[off..off + s.width];
                match s.kind {
                    SpanKind::Tanh => assert!(v[0].abs() <= 0.99),
                    SpanKind::Softmax => {
                        assert_eq!(v.iter().filter(|x| **x == 1.0).count(), 1);
                        assert_eq!(v.iter().sum::<f32>(), 1.0);
                    }
                }
                off += s.width;
            }
        }
        // As drawn: the encoding's own modes (real shares would move rows between modes).
        let back = t
            .inverse(&enc.data, enc.n_rows, 9, Shares::AsDrawn)
            .unwrap();
        let names: Vec<_> = back.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            ["id", "price", "count", "when", "colour", "flag", "email"]
        );
        for name in ["price", "count", "when", "colour", "flag"] {
            assert_eq!(
                back.column(name).unwrap().data,
                table.column(name).unwrap().data,
                "column {name}"
            );
        }
        // 50 distinct emails over a cut-off of 20: the top 19 survive exactly, the rest come
        // back as real tail values, and nulls stay nulls.
        let (real, got) = (emails(&table), emails(&back));
        let real_set: std::collections::HashSet<_> = real.iter().flatten().collect();
        assert_eq!(
            got.iter().filter(|v| v.is_none()).count(),
            real.iter().filter(|v| v.is_none()).count()
        );
        assert!(got.iter().flatten().all(|v| real_set.contains(v)));
        assert!(got.iter().zip(real).filter(|(g, r)| g == r).count() > 200);
        // Ids are regenerated, unique, not learned.
        let ColumnData::Int(ids) = &back.column("id").unwrap().data else {
            panic!("int ids")
        };
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert_eq!(t.discrete_spans().len(), 3);
    }

    #[test]
    fn decoding_soft_output_keeps_types_ranges_and_categories() {
        let (table, meta) = sample_table(300);
        let t = DataTransformer::fit(&table, &meta, &TransformerOptions::default(), 1).unwrap();
        // Arbitrary activations: α beyond ±1 and soft one-hots.
        let width = t.output_width();
        let data: Vec<f32> = (0..50 * width)
            .map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 2.0)
            .collect();
        let out = t.inverse(&data, 50, 3, Shares::Real).unwrap();
        let ColumnData::Float(prices) = &out.column("price").unwrap().data else {
            panic!("floats")
        };
        for p in prices.iter().flatten() {
            assert!((1.25..=55.52).contains(p), "{p} outside the real range");
            assert!(
                ((p * 100.0).round() - p * 100.0).abs() < 1e-6,
                "{p} has more than 2 decimals"
            );
        }
        let ColumnData::Datetime(when) = &out.column("when").unwrap().data else {
            panic!("datetimes")
        };
        assert!(when.iter().flatten().all(|w| w % 86_400_000_000 == 0));
        let ColumnData::Str(colours) = &out.column("colour").unwrap().data else {
            panic!("strings")
        };
        assert!(
            colours
                .iter()
                .flatten()
                .all(|c| ["red", "green", "blue"].contains(&c.as_str()))
        );
        assert!(matches!(
            out.column("count").unwrap().data,
            ColumnData::Int(_)
        ));
        assert!(matches!(
            out.column("flag").unwrap().data,
            ColumnData::Bool(_)
        ));
    }

    #[test]
    fn conditions_resolve_to_slots_ranges_or_clear_errors() {
        let (table, meta) = sample_table(100);
        let t = DataTransformer::fit(&table, &meta, &TransformerOptions::default(), 1).unwrap();
        let resolve = |c: &str| t.resolve(&Condition::parse(c).unwrap());
        assert_eq!(resolve("colour=red").unwrap().slot.unwrap().0, 0);
        assert_eq!(resolve("flag=TRUE").unwrap().slot.unwrap().0, 1);
        let price = resolve("price>=1.25").unwrap();
        assert!(price.slot.is_none());
        assert!(
            matches!(price.check, Check::Range { low: Some((l, true)), high: None } if l == 1.25)
        );
        assert!(price.real_share.is_some_and(|s| (0.0..=1.0).contains(&s)));
        for bad in ["colour=purple", "colour>=red", "price=cheap", "nope=x"] {
            assert!(
                matches!(resolve(bad), Err(EngineError::InvalidCondition(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_raised_stop_flag_ends_the_fit() {
        let (table, meta) = sample_table(100);
        let fit = |raised: bool| {
            let stop = AtomicBool::new(raised);
            let options = TransformerOptions::default();
            DataTransformer::fit_until(&table, &meta, &options, 1, Some(&stop))
        };
        assert!(matches!(fit(true), Err(EngineError::Stopped)));
        assert!(fit(false).is_ok());
    }

    #[test]
    fn rejects_mismatched_metadata() {
        let (table, mut meta) = sample_table(10);
        meta.columns
            .push(("ghost".into(), ColumnMetadata::new(SdType::Numerical)));
        assert!(DataTransformer::fit(&table, &meta, &TransformerOptions::default(), 1).is_err());
        let (table, mut meta) = sample_table(10);
        meta.columns[4].1 = ColumnMetadata::new(SdType::Numerical);
        assert!(DataTransformer::fit(&table, &meta, &TransformerOptions::default(), 1).is_err());
    }
}
