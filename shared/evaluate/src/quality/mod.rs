//! The quality report: SDMetrics' QualityReport (0.32) recomputed, so a Synth score means
//! what an SDMetrics score means. Overall = mean of Column Shapes and Column Pair Trends.

pub mod pairs;
pub mod shapes;

use serde::{Deserialize, Serialize};
use synth_table::{Metadata, Table};

use crate::EvaluateError;
use crate::values::{check_columns, mean_of};
pub use pairs::{ColumnPairTrend, PairOptions};
pub use shapes::ColumnShape;

/// Scores and their per-column and per-pair detail. A property is `None` when nothing in it
/// could be scored (SDMetrics' NaN), and the overall score is then the other property alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub score: Option<f64>,
    pub column_shapes: Option<f64>,
    pub column_pair_trends: Option<f64>,
    pub columns: Vec<ColumnShape>,
    pub pairs: Vec<ColumnPairTrend>,
}

/// Compute the quality report of a synthetic table against the real one.
pub fn quality_report(
    real: &Table,
    synthetic: &Table,
    metadata: &Metadata,
    options: &PairOptions,
) -> Result<QualityReport, EvaluateError> {
    check_columns(real, synthetic, metadata)?;
    let columns = shapes::column_shapes(real, synthetic, metadata)?;
    let pairs = pairs::column_pair_trends(real, synthetic, metadata, options)?;
    let column_shapes = mean_of(columns.iter().map(|c| c.score));
    let column_pair_trends = mean_of(
        pairs
            .iter()
            .map(|p| if p.meets_threshold { p.score } else { None }),
    );
    Ok(QualityReport {
        score: mean_of([column_shapes, column_pair_trends]),
        column_shapes,
        column_pair_trends,
        columns,
        pairs,
    })
}
