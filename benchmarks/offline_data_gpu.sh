#!/usr/bin/env bash
# Issue 29's collection-speed figure on a CUDA machine, where the policy acts on the GPU and
# `heldout collect` writes in a child process (heldout/protocol/background_writer.py: spare_core).
# Each round times evaluation, collection writing inline, collection writing in the child, and the
# play alone (benchmarks/offline_data.py); the untrained procgen-quickstart PPO plays (no run folder
# to carry: its episodes run to the 1,000-step time-out, so 60 evaluation episodes ~ 60k steps).
#
# Here, once:   ../shared/gpu/bundle.sh h5py isal
# Device call:  source .gpu/activate.sh && bash benchmarks/offline_data_gpu.sh    (about 5 minutes)
set -euo pipefail
out=${OUT:-/tmp}
python3 benchmarks/offline_data.py --device cuda --steps 60000 --episodes 60 --repeats 3 --skip-memory \
    --json "$out/offline_data_gpu.json"
