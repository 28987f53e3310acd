#!/usr/bin/env bash
# Issue 29 item 4(b), steps 2-5 of benchmarks/offline_diversity.yaml: the three datasets of an expert
# run, BC on each (5 seeds), every BC run on the expert's held-out list, the summary.
# Usage: bash benchmarks/offline_diversity.sh EXPERT_RUN_DIR   (from the repository root)
set -euo pipefail
expert=$1
heldout() { python -m heldout "$@"; }
for k in 5 25 200; do
    [ -e "data/offline-diversity-k$k" ] ||
        heldout collect "$expert" --steps 50000 --num-levels "$k" --out "data/offline-diversity-k$k" --no-progress
done
heldout sweep benchmarks/offline_diversity.yaml --workers 2
# the expert's held-out list: leak-free against all its 200 training levels, hence against every K
test_levels=$(python -c "import json, sys; print(','.join(map(str, json.load(open(sys.argv[1]))['eval_levels']['test'])))" "$expert/split.json")
for run in runs/offline-diversity-bc/*/*/bc/seed*; do
    compgen -G "$run/eval/test-levels=*.json" > /dev/null ||
        heldout eval "$run" --split test --levels "$test_levels" --episodes 100 --no-progress > /dev/null
done
python benchmarks/offline_diversity.py runs/offline-diversity-bc "$expert" benchmarks/results/offline_diversity
