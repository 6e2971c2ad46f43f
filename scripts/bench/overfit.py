"""SDMetrics' DCROverfittingProtection of a synthetic table (training half against the held-out
half), and how many synthetic rows copy a training row exactly, beside how many held-out rows
do: python overfit.py TRAIN.csv HOLDOUT.csv SYNTH.csv META.json [BENCH_DIR]

Reads the tables as the reference's scorer does (its eval_quality.py, found in BENCH_DIR or
$SYNTH_REFERENCE). Prints one JSON line."""
import json
import os
import sys
import warnings

warnings.filterwarnings('ignore')
train, hold, syn, meta = sys.argv[1:5]
sys.path.insert(0, sys.argv[5] if len(sys.argv) > 5 else os.environ['SYNTH_REFERENCE'])
from eval_quality import load_metadata, read_csv  # noqa: E402
from sdmetrics.single_table import DCROverfittingProtection  # noqa: E402

m = load_metadata(meta)
a, b, s = read_csv(train, m, 'real'), read_csv(hold, m, 'real'), read_csv(syn, m, 'synthetic')
n = min(1000, len(a), len(b), len(s))
r = DCROverfittingProtection.compute_breakdown(a, s, b, m, None, num_rows_subsample=n,
                                               num_iterations=3)
seen = set(map(tuple, a.astype(str).values.tolist()))
print(json.dumps({
    'dcr_overfitting_protection': round(float(r['score']), 4),
    'exact_copies': sum(tuple(row) in seen for row in s.astype(str).values.tolist()),
    'holdout_exact_copies': sum(tuple(row) in seen for row in b.astype(str).values.tolist()),
}))
