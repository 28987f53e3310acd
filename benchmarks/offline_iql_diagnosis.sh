#!/usr/bin/env bash
# Issue 29 item 4(c): why IQL's three seeds play identical episodes on the Procgen coinrun set
# (docs/offline.md, "Measured: Procgen coinrun at a CPU budget"). Needs the runs of
# benchmarks/offline_procgen.yaml (BC) and offline_procgen_rl.yaml (IQL) and their dataset.
# 1. every IQL and BC policy on 4,096 dataset frames (benchmarks/offline_iql_diagnosis.py);
# 2. each BC run evaluated greedily (argmax, as IQL acts) on both splits;
# 3. the budget: IQL seeds 0-2 with 4x the updates at the same transitions consumed (batch 128: 220
#    updates) and BC seed 0 with 4x the transitions (440 updates of 256), then measured as in 1 and
#    the BC run evaluated greedily.
# Usage: bash benchmarks/offline_iql_diagnosis.sh   (from the repository root; ~30 min on 2 cores)
set -euo pipefail
heldout() { python -m heldout "$@"; }
data=data/offline-procgen-expert
res=benchmarks/results/offline_procgen
python benchmarks/offline_iql_diagnosis.py "$data" "$res/iql_diagnosis.json" \
    runs/offline-procgen-rl/coinrun/iql/seed* runs/offline-procgen/coinrun/bc/seed* > /dev/null
for run in runs/offline-procgen/coinrun/bc/seed*; do
    for split in train test; do
        heldout eval "$run" --split "$split" --deterministic --no-progress > /dev/null
    done
done
common=(--preset procgen-quickstart --env coinrun --num-levels 200 --dataset "$data" --eval-freq 0
    --eval-episodes 100 --torch-threads 1 --checkpoint-freq 0 --out runs/offline-procgen-iql-budget --no-progress)
iql4x() { heldout train "${common[@]}" --agent iql --agent-arg batch_size=128 --timesteps 28160 --seed "$1" > /dev/null; }
# two runs at a time, one thread each
iql4x 0 & a=$!
heldout train "${common[@]}" --agent bc --timesteps 112640 --seed 0 > /dev/null & b=$!
wait "$a"; wait "$b"
iql4x 1 & a=$!
iql4x 2 & b=$!
wait "$a"; wait "$b"
budget=runs/offline-procgen-iql-budget/coinrun
for split in train test; do
    heldout eval "$budget"/bc/seed0-* --split "$split" --deterministic --no-progress > /dev/null
done
python benchmarks/offline_iql_diagnosis.py "$data" "$res/iql_budget_diagnosis.json" \
    "$budget"/iql/seed* "$budget"/bc/seed* > /dev/null
