#!/usr/bin/env bash
# Synth's models side by side with the Python reference on this machine, as issue-sized
# figures: each table is split into two shuffled halves; every model learns half A and is
# scored against it with SDMetrics (QualityReport, DCRBaselineProtection) and against the
# held-out half B (DCROverfittingProtection, exact copies). Half B scored against half A is
# the yardstick: what a generator that copies nothing gets.
#
#   scripts/bench/models.sh REFERENCE_DIR TABLE.csv[:META.json]... [-- SYNTH_MODELS...]
#
# REFERENCE_DIR holds reference.sh and eval_quality.py (the reference's bench folder).
# SYNTH_MODELS default to "argn"; each runs with seeds 0, 1 and 2 and its defaults. The
# reference runs CTGAN and TVAE (SDV, 300 epochs, one thread) and GaussianCopula once each.
# Prints one Markdown table per input table. Work files go to $BENCH_OUT (a temp dir).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
ref="$(cd "$1" && pwd)"; shift
tables=(); models=(argn)
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; models=("$@"); break; fi
  tables+=("$1"); shift
done
out="${BENCH_OUT:-$(mktemp -d)}"; mkdir -p "$out"
synth="${SYNTH:-$here/../../target/release/synth}"
[ -x "$synth" ] || synth="$(command -v synth)"
py="${SYNTH_REF_HOME:-$HOME/.cache/synth-reference}/score/bin/python"
"$ref/reference.sh" score --help >/dev/null 2>&1 || true   # creates the scoring venv once

row() {  # row NAME CSV TRAIN_JSON: one Markdown row of scores for a synthetic CSV
  local s o
  s=$("$ref/reference.sh" score "$a" "$2" "$meta")
  o=$("$py" "$here/overfit.py" "$a" "$b" "$2" "$meta" "$ref")
  python3 - "$1" "$s" "$o" "${3:-}" <<'PY'
import json, sys
name, s, o, t = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), sys.argv[4]
fit = json.loads(t).get('fit_seconds') if t else None
print(f"| {name} | {s['overall']:.4f} | {s['column_shapes']:.4f} | {s['column_pair_trends']:.4f} "
      f"| {s.get('dcr_baseline_protection', float('nan')):.4f} | {o['dcr_overfitting_protection']:.3f} "
      f"| {o['exact_copies']} | {'' if fit is None else f'{fit:.1f}'} |")
PY
}

for spec in "${tables[@]}"; do
  csv="${spec%%:*}"; meta="${spec#*:}"; [ "$meta" = "$spec" ] && meta="${csv%.csv}.json"
  name="$(basename "${csv%.csv}")"; a="$out/${name}_a.csv"; b="$out/${name}_b.csv"
  "$py" "$here/split.py" "$csv" "$a" "$b"
  echo "### $name ($(($(wc -l < "$a") - 1)) training rows)"
  echo "| model | quality | shapes | pairs | DCR baseline | DCR overfitting | copies | fit s |"
  echo "|---|---|---|---|---|---|---|---|"
  row "half B (yardstick)" "$b"
  for m in ctgan tvae; do
    t=$("$ref/reference.sh" train --model $m --epochs 300 --impl sdv --threads 1 --data "$a" \
        --meta "$meta" --out "$out/ref_${m}_$name.csv")
    row "reference $m (300 epochs)" "$out/ref_${m}_$name.csv" "$t"
  done
  t=$("$ref/reference.sh" train --model gaussiancopula --epochs 1 --threads 1 --data "$a" \
      --meta "$meta" --out "$out/ref_gc_$name.csv")
  row "reference gaussiancopula" "$out/ref_gc_$name.csv" "$t"
  for m in "${models[@]}"; do
    for seed in 0 1 2; do
      t=$("$synth" generate "$a" --metadata "$meta" --model "$m" --seed $seed --json \
          -o "$out/synth_${m}_${name}_$seed.csv" 2>/dev/null)
      row "synth $m (seed $seed)" "$out/synth_${m}_${name}_$seed.csv" "$t"
    done
  done
  echo
done
