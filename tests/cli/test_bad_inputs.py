"""One clear answer to every bad input: the catalogue of docs/bad-inputs.md, run through the real CLI.

Every case runs ``heldout.cli.main(argv)`` in process, in a temporary working folder that holds a
tiny real run folder (CartPole, a few hundred steps), copies of it with a broken file, and bad input
files. Each must end with exit code 2 and exactly one line on stderr that names the bad value, no
traceback, and nothing created or changed under the folder (a snapshot of its whole tree before and
after). Tripwires stop a case that reaches training, a run folder, a model load or a benchmark, so a
check that goes missing fails fast instead of training for hours.

The same file writes the catalogue, from the real outputs, so the page stays true:

    PYTHONPATH=. python tests/cli/test_bad_inputs.py --write docs/bad-inputs.md

and :func:`test_every_case_gets_the_line_the_catalogue_gives` fails when a message drifts from it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "bad-inputs.md"

#: The fixture run: CartPole contexts, 2 envs x 32 steps x 2 updates, 2 evaluation episodes a split.
FIXTURE_TRAIN = [
    "train",
    "--preset", "cartpole-gravity-extrapolation",
    "--timesteps", "128",
    "--num-envs", "2",
    "--agent-arg", "n_steps=32",
    "--agent-arg", "batch_size=32",
    "--agent-arg", "n_epochs=1",
    "--eval-episodes", "2",
    "--eval-freq", "0",
    "--checkpoint-freq", "64",
    "--seed", "0",
    "--no-progress",
]  # fmt: skip

CARTPOLE = ["--preset", "cartpole-gravity-extrapolation"]
PROCGEN = ["--preset", "procgen-quickstart"]
MINIGRID = ["--preset", "minigrid-doorkey"]
BC = [*MINIGRID, "--agent", "bc", "--dataset"]


@dataclass(frozen=True)
class Case:
    """One bad input: its id, the argv after ``heldout``, and the bad value the message must name.

    ``machine``: the message depends on the machine (its devices), so the catalogue's copy is not
    compared; ``needs_no_cuda``: the input is bad only on a machine without CUDA; ``hide``: run as
    where that package (ray, optuna) is not installed (``import`` fails and ``find_spec`` is None meanwhile).
    """

    id: str
    argv: tuple[str, ...]
    bad: str
    machine: bool = False
    needs_no_cuda: bool = False
    hide: str = ""
    group: str = field(default="")

    @property
    def command(self) -> str:
        return "heldout " + " ".join(_quote(a) for a in self.argv)


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w@%+=:,./-]+", arg) else "'" + arg.replace("'", "'\\''") + "'"


def _case(id: str, argv: list[str], bad: str, **kw: Any) -> Case:
    return Case(id, tuple(argv), bad, **kw)


# fmt: off
CASES: list[Case] = [
    # -- heldout train: the config's own numbers ---------------------------------------------------
    _case("train-seed-negative", ["train", *CARTPOLE, "--seed", "-1"], "-1"),
    _case("train-seed-too-large", ["train", *CARTPOLE, "--seed", "99999999999"], "99999999999"),
    _case("train-seed-fraction", ["train", *CARTPOLE, "--seed", "1.5"], "1.5"),
    _case("train-timesteps-infinite", ["train", *CARTPOLE, "--timesteps", "1e400"], "1e400"),
    _case("train-timesteps-fraction", ["train", *CARTPOLE, "--timesteps", "100.5"], "100.5"),
    _case("train-timesteps-nan", ["train", *CARTPOLE, "--timesteps", "nan"], "nan"),
    _case("train-timesteps-zero", ["train", *CARTPOLE, "--timesteps", "0"], "'0'"),
    _case("train-timesteps-beyond-int64", ["train", *CARTPOLE, "--timesteps", "1e30"], "1e30"),
    _case("train-num-envs-negative", ["train", *CARTPOLE, "--num-envs", "-4"], "-4"),
    _case("train-eval-freq-negative", ["train", *CARTPOLE, "--eval-freq", "-5"], "-5"),
    _case("train-checkpoint-minutes-nan", ["train", *CARTPOLE, "--checkpoint-minutes", "nan"], "nan"),
    _case("train-checkpoint-minutes-infinite", ["train", *CARTPOLE, "--checkpoint-minutes", "inf"], "inf"),
    _case("train-checkpoint-freq-negative", ["train", *CARTPOLE, "--checkpoint-freq", "-1"], "-1"),
    _case("train-torch-threads-negative", ["train", *CARTPOLE, "--torch-threads", "-2"], "-2"),
    # -- heldout train: agent keyword arguments ---------------------------------------------------
    _case("train-agent-arg-no-value", ["train", *CARTPOLE, "--agent-arg", "gamma"], "gamma"),
    _case("train-agent-arg-no-key", ["train", *CARTPOLE, "--agent-arg", "=0.9"], "=0.9"),
    _case("train-agent-arg-unknown", ["train", *CARTPOLE, "--agent-arg", "gama=0.9"], "gama"),
    _case("train-gamma-above-1", ["train", *CARTPOLE, "--agent-arg", "gamma=1.5"], "1.5"),
    _case("train-gamma-zero", ["train", *CARTPOLE, "--agent-arg", "gamma=0"], "gamma"),
    _case("train-gae-lambda-negative", ["train", *CARTPOLE, "--agent-arg", "gae_lambda=-0.1"], "-0.1"),
    _case("train-clip-range-negative", ["train", *CARTPOLE, "--agent-arg", "clip_range=-1"], "-1"),
    _case("train-clip-range-schedule-negative", ["train", *CARTPOLE, "--agent-arg", "clip_range=lin_-0.2"], "lin_-0.2"),
    _case("train-learning-rate-negative", ["train", *CARTPOLE, "--agent-arg", "learning_rate=-1"], "-1"),
    _case("train-learning-rate-nan", ["train", *CARTPOLE, "--agent-arg", "learning_rate=nan"], "nan"),
    _case("train-learning-rate-infinite", ["train", *CARTPOLE, "--agent-arg", "learning_rate=1e400"], "inf"),
    _case("train-learning-rate-text", ["train", *CARTPOLE, "--agent-arg", "learning_rate=fast"], "fast"),
    _case("train-n-steps-zero", ["train", *CARTPOLE, "--agent-arg", "n_steps=0"], "n_steps"),
    _case("train-n-steps-text", ["train", *CARTPOLE, "--agent-arg", "n_steps=abc"], "abc"),
    _case("train-batch-size-fraction", ["train", *CARTPOLE, "--agent-arg", "batch_size=0.5"], "0.5"),
    _case("train-n-epochs-boolean", ["train", *CARTPOLE, "--agent-arg", "n_epochs=true"], "True"),
    _case("train-normalize-advantage-yes", ["train", *CARTPOLE, "--agent-arg", "normalize_advantage=yes"], "yes"),
    _case("train-ent-coef-negative", ["train", *CARTPOLE, "--agent-arg", "ent_coef=-0.01"], "-0.01"),
    _case("train-vf-coef-negative", ["train", *CARTPOLE, "--agent-arg", "vf_coef=-1"], "-1"),
    _case("train-max-grad-norm-zero", ["train", *CARTPOLE, "--agent-arg", "max_grad_norm=0"], "max_grad_norm"),
    _case("train-rollout-of-one-step", ["train", *CARTPOLE, "--num-envs", "1", "--agent-arg", "n_steps=1"], "n_steps 1"),
    _case("train-policy-kwargs-malformed", ["train", *CARTPOLE, "--agent-arg", "policy_kwargs={net_arch: 5}"], "net_arch"),
    # -- heldout train: names -----------------------------------------------------------------------
    _case("train-env-unknown", ["train", "--env", "coinrn"], "coinrn"),
    _case("train-agent-unknown", ["train", *CARTPOLE, "--agent", "ppoo"], "ppoo"),
    _case("train-preset-unknown", ["train", "--preset", "cartpole-gravity"], "cartpole-gravity"),
    _case("train-policy-unknown", ["train", *CARTPOLE, "--agent-arg", "policy=CNNPolicy"], "CNNPolicy"),
    _case("train-wrapper-unknown", ["train", *CARTPOLE, "--wrapper", "frame-stak"], "frame-stak"),
    _case("train-augmentation-unknown", ["train", *PROCGEN, "--agent", "drac", "--augmentation", "corp"], "corp"),
    _case("train-augmentation-for-ppo", ["train", *PROCGEN, "--augmentation", "crop"], "crop"),
    _case("train-precision-unknown", ["train", *CARTPOLE, "--precision", "fp16"], "fp16"),
    _case("train-precision-agent-arg-unknown", ["train", *CARTPOLE, "--agent-arg", "precision=half"], "half"),
    _case("train-engine-unknown", ["train", *CARTPOLE, "--engine", "fast"], "fast"),
    _case("train-engine-agent-arg-unknown", ["train", *CARTPOLE, "--agent-arg", "engine=cleanrl"], "cleanrl"),
    # -- heldout train: the heads' geometry (hyperbolic representations, docs/agents.md) ------------
    _case("train-representation-unknown", ["train", *CARTPOLE, "--agent-arg", "representation=klein"], "klein"),
    _case("train-curvature-zero", ["train", *CARTPOLE, "--agent-arg", "representation=poincare", "--agent-arg", "curvature=0"], "curvature=0"),
    _case("train-curvature-negative", ["train", *CARTPOLE, "--agent-arg", "curvature=-1"], "curvature=-1"),
    _case("train-curvature-text", ["train", *CARTPOLE, "--agent-arg", "curvature=flat"], "flat"),
    _case("train-s-rym-not-boolean", ["train", *CARTPOLE, "--agent-arg", "s_rym=maybe"], "maybe"),
    _case("train-feature-reg-euclidean", ["train", *CARTPOLE, "--agent-arg", "feature_reg=true"], "feature_reg=true"),
    _case("train-representation-on-sgqn", ["train", *PROCGEN, "--agent", "sgqn", "--agent-arg", "representation=poincare"], "sgqn"),
    _case("train-visible-context-unknown", ["train", *CARTPOLE, "--visible-context", "shown"], "shown"),
    # -- heldout train: the device --------------------------------------------------------------------
    _case("train-device-unknown", ["train", *CARTPOLE, "--device", "gpu"], "gpu"),
    _case("train-device-cuda-without-cuda", ["train", *CARTPOLE, "--device", "cuda"], "cuda", machine=True, needs_no_cuda=True),
    _case("train-device-cuda-index", ["train", *CARTPOLE, "--device", "cuda:99"], "cuda:99", machine=True),
    _case("train-device-tpu", ["train", *CARTPOLE, "--device", "xla"], "xla", machine=True),
    # -- heldout train: an agent or option that cannot run on the env -------------------------------
    _case("train-cnn-policy-on-vectors", ["train", *CARTPOLE, "--agent-arg", "policy=CnnPolicy"], "CnnPolicy"),
    _case("train-sgqn-on-continuous-actions", ["train", "--preset", "pendulum-mass-extrapolation", "--agent", "sgqn"], "sgqn"),
    _case("train-rad-on-vectors", ["train", *CARTPOLE, "--agent", "rad"], "rad"),
    _case("train-saliency-log-without-images", ["train", *CARTPOLE, "--saliency-log-freq", "1000"], "1000"),
    _case("train-level-flag-on-contexts", ["train", *CARTPOLE, "--num-levels", "10"], "num_levels=10"),
    _case("train-distribution-mode-on-contexts", ["train", *CARTPOLE, "--distribution-mode", "hard"], "hard"),
    _case("train-env-option-on-contexts", ["train", *CARTPOLE, "--env-option", "use_backgrounds=false"], "use_backgrounds"),
    _case("train-context-bins-on-levels", ["train", *PROCGEN, "--context-bins", "3"], "context_bins=3"),
    _case("train-visible-context-scale-on-levels", ["train", *PROCGEN, "--visible-context-scale", "bounds"], "visible_context_scale='bounds'"),
    _case("train-context-on-levels", ["train", *PROCGEN, "--test-context", "gravity=1:2"], "coinrun"),
    _case("train-distribution-mode-on-minigrid", ["train", "--preset", "quickstart", "--distribution-mode", "hard"], "hard"),
    _case("train-minihack-task-unknown", ["train", "--env", "minihack-multiroom-n3"], "minihack-multiroom-n3"),
    _case("train-minihack-without-nle", ["train", "--env", "minihack-multiroom-n4"], "minihack", hide="nle"),
    _case("train-minihack-env-option", ["train", "--env", "minihack-keyroom-s5", "--env-option", "use_backgrounds=false"], "use_backgrounds"),
    _case("train-minihack-test-levels-overlap", ["train", "--env", "minihack-corridor-r5", "--num-levels", "10", "--test-start", "5"], "5"),
    # -- heldout train: Procgen options -----------------------------------------------------------------
    _case("train-env-option-not-boolean", ["train", *PROCGEN, "--env-option", "use_backgrounds=maybe"], "maybe"),
    _case("train-env-option-yes", ["train", *PROCGEN, "--env-option", "use_backgrounds=yes"], "yes"),
    _case("train-env-option-number", ["train", *PROCGEN, "--env-option", "use_backgrounds=1"], "1"),
    _case("train-env-option-unknown", ["train", *PROCGEN, "--env-option", "use_backgrund=false"], "use_backgrund"),
    _case("train-distribution-mode-unknown", ["train", *PROCGEN, "--distribution-mode", "medium"], "medium"),
    _case("train-distribution-mode-not-for-game", ["train", *PROCGEN, "--distribution-mode", "extreme"], "extreme"),
    _case("train-split-overlap", ["train", *PROCGEN, "--num-levels", "100", "--test-start", "50"], "overlap"),
    _case("train-test-levels-fewer-than-episodes", ["train", *PROCGEN, "--num-test-levels", "10", "--eval-episodes", "100"], "hold 10 levels"),
    _case("train-start-level-negative", ["train", *PROCGEN, "--start-level", "-5"], "-5"),
    # -- heldout train: level samplers (PLR, Robust PLR) ------------------------------------------------
    _case("train-level-sampler-unknown", ["train", "--preset", "quickstart", "--level-sampler", "plrr"], "plrr"),
    _case("train-sampler-arg-unknown", ["train", "--preset", "quickstart", "--level-sampler", "plr", "--sampler-arg", "temprature=0.3"], "temprature"),
    _case("train-sampler-arg-out-of-range", ["train", "--preset", "quickstart", "--level-sampler", "plr", "--sampler-arg", "staleness_coef=1.5"], "1.5"),
    _case("train-sampler-arg-not-a-number", ["train", "--preset", "quickstart", "--level-sampler", "plr", "--sampler-arg", "temperature=hot"], "hot"),
    _case("train-sampler-arg-unknown-strategy", ["train", "--preset", "quickstart", "--level-sampler", "plr", "--sampler-arg", "strategy=value_l2"], "value_l2"),
    _case("train-sampler-arg-buffer-size-zero", ["train", "--preset", "quickstart", "--level-sampler", "robust-plr", "--sampler-arg", "buffer_size=0"], "buffer_size=0"),
    _case("train-sampler-arg-of-the-other-sampler", ["train", "--preset", "quickstart", "--level-sampler", "plr", "--sampler-arg", "replay_prob=0.5"], "replay_prob"),
    _case("train-sampler-arg-on-uniform", ["train", "--preset", "quickstart", "--sampler-arg", "temperature=0.3"], "temperature"),
    _case("train-sampler-arg-no-value", ["train", "--preset", "quickstart", "--sampler-arg", "temperature"], "temperature"),
    _case("train-level-sampler-off-policy-agent", ["train", *PROCGEN, "--agent", "sgqn", "--level-sampler", "plr"], "sgqn"),
    _case("train-level-sampler-on-contexts", ["train", *CARTPOLE, "--level-sampler", "robust-plr"], "robust-plr"),
    # -- heldout train: exploration bonuses ----------------------------------------------------------
    _case("train-bonus-unknown", ["train", "--preset", "quickstart", "--bonus", "e3c"], "e3c"),
    _case("train-bonus-arg-unknown", ["train", "--preset", "quickstart", "--bonus", "e3b", "--bonus-arg", "rigde=0.1"], "rigde"),
    _case("train-bonus-arg-out-of-range", ["train", "--preset", "quickstart", "--bonus", "rnd", "--bonus-arg", "coef=-1"], "coef=-1"),
    _case("train-bonus-arg-not-a-number", ["train", "--preset", "quickstart", "--bonus", "e3b", "--bonus-arg", "ridge=small"], "small"),
    _case("train-bonus-e3b-embedding-size-zero", ["train", "--preset", "quickstart", "--bonus", "e3b", "--bonus-arg", "dim=0"], "dim=0"),
    _case("train-bonus-part-unknown", ["train", "--preset", "quickstart", "--bonus", "product", "--bonus-arg", "global=e3b"], "e3b"),
    _case("train-bonus-part-arg-out-of-range", ["train", "--preset", "quickstart", "--bonus", "product", "--bonus-arg", "episodic.ridge=0"], "episodic.ridge=0"),
    _case("train-bonus-arg-without-bonus", ["train", "--preset", "quickstart", "--bonus-arg", "coef=0.1"], "coef"),
    _case("train-bonus-count-on-continuous-observations", ["train", *CARTPOLE, "--bonus", "count"], "float32"),
    _case("train-bonus-count-info-key-missing", ["train", "--preset", "quickstart", "--bonus", "count", "--bonus-arg", "key=agent_pos"], "agent_pos"),
    _case("train-bonus-e3b-on-continuous-actions", ["train", "--preset", "pendulum-mass-extrapolation", "--bonus", "e3b"], "Box"),
    _case("train-bonus-off-policy-agent", ["train", *PROCGEN, "--agent", "sgqn", "--bonus", "rnd"], "sgqn"),
    # -- heldout train: contexts ------------------------------------------------------------------------
    _case("train-context-feature-unknown", ["train", *CARTPOLE, "--train-context", "gravty=5:6"], "gravty"),
    _case("train-context-overlap", ["train", *CARTPOLE, "--test-context", "gravity=10:20"], "overlap"),
    _case("train-context-out-of-bounds", ["train", *CARTPOLE, "--test-context", "gravity=20:40"], "40"),
    _case("train-context-unreadable", ["train", *CARTPOLE, "--train-context", "gravity=abc"], "abc"),
    _case("train-context-combinatorial-edge", ["train", "--preset", "cartpole-gravity-length-combinatorial", "--test-context", "gravity=9.8"], "9.8"),
    # -- heldout train: files -----------------------------------------------------------------------------
    _case("train-config-malformed-yaml", ["train", "--config", "files/malformed.yaml"], "files/malformed.yaml"),
    _case("train-config-missing", ["train", "--config", "files/missing.yaml"], "files/missing.yaml"),
    _case("train-config-not-a-mapping", ["train", "--config", "files/list.yaml"], "files/list.yaml"),
    _case("train-config-unknown-field", ["train", "--config", "files/unknown-field.yaml"], "timestep"),
    _case("train-config-not-boolean", ["train", *CARTPOLE, "--config", "files/not-boolean.yaml"], "maybe"),
    _case("train-config-yaml-on-is-no-boolean", ["train", *CARTPOLE, "--config", "files/on-boolean.yaml"], "'on'"),
    _case("train-config-leakage-unknown", ["train", *PROCGEN, "--config", "files/leakage-typo.yaml"], "layot"),
    _case("train-config-leakage-contradicts-old-field", ["train", *PROCGEN, "--config", "files/leakage-both.yaml"], "leakage_check=False"),
    _case("train-leakage-unknown", ["train", *PROCGEN, "--leakage", "layot"], "layot"),
    _case("train-leakage-and-no-leakage-check", ["train", *PROCGEN, "--leakage", "look", "--no-leakage-check"], "--no-leakage-check"),
    _case("train-import-syntax-error", ["train", "--import", "files/syntax_error.py"], "syntax_error.py"),
    _case("train-import-missing", ["train", "--import", "files/missing.py"], "files/missing.py"),
    _case("train-out-is-a-file", ["train", *CARTPOLE, "--out", "files/a-file.txt"], "files/a-file.txt"),
    _case("train-trust-pickle-without-resume", ["train", *CARTPOLE, "--trust-pickle"], "--trust-pickle"),
    _case("train-unknown-flag", ["train", "--levels", "0:10"], "--levels"),
    _case("train-json-without-dry-run", ["train", *CARTPOLE, "--json"], "--json"),
    _case("train-config-duplicate-key", ["train", "--config", "files/duplicate-key.yaml"], "'timesteps'"),
    _case("train-config-alias-bomb", ["train", "--config", "files/alias-bomb.yaml"], "aliases"),
    _case("train-config-huge-integer", ["train", "--config", "files/huge-integer.yaml"], "files/huge-integer.yaml"),
    # -- heldout train --resume ---------------------------------------------------------------------------
    _case("resume-missing-folder", ["train", "--resume", "no-such-run"], "no-such-run"),
    _case("resume-dry-run", ["train", "--resume", "cartpole-run", "--dry-run"], "--dry-run"),
    _case("resume-with-config-flags", ["train", "--resume", "cartpole-run", "--seed", "3"], "--seed"),
    _case("resume-malformed-config", ["train", "--resume", "run-malformed-config"], "run-malformed-config/config.yaml"),
    _case("resume-truncated-summary", ["train", "--resume", "run-truncated-summary"], "run-truncated-summary/summary.json"),
    _case("resume-malformed-status", ["train", "--resume", "run-malformed-status"], "run-malformed-status/status.json"),
    # a field of a run folder is untrusted input: a number of any size, NaN, the wrong type
    _case("resume-checkpoint-number-huge", ["train", "--resume", "run-state-huge-number"], "num_timesteps"),
    _case("resume-status-pid-huge", ["train", "--resume", "run-status-pid-huge"], "pid"),
    _case("resume-split-seed-huge", ["train", "--resume", "run-split-seed-huge"], "eval_levels"),
    _case("resume-progress-step-not-a-number", ["train", "--resume", "run-progress-bad-step"], "progress.csv"),
    # -- heldout eval -------------------------------------------------------------------------------------
    _case("eval-missing-folder", ["eval", "no-such-run"], "no-such-run"),
    _case("eval-not-a-run-folder", ["eval", "files"], "files/config.yaml"),
    _case("eval-malformed-config", ["eval", "run-malformed-config"], "run-malformed-config/config.yaml"),
    _case("eval-config-not-a-mapping", ["eval", "run-config-list"], "run-config-list/config.yaml"),
    _case("eval-config-bad-value", ["eval", "run-config-bad-seed"], "run-config-bad-seed/config.yaml"),
    _case("eval-split-unknown", ["eval", "cartpole-run", "--split", "tset"], "tset"),
    _case("eval-seed-negative", ["eval", "cartpole-run", "--seed", "-1"], "-1"),
    _case("eval-episodes-infinite", ["eval", "cartpole-run", "--episodes", "1e400"], "1e400"),
    _case("eval-episodes-fraction", ["eval", "cartpole-run", "--episodes", "2.5"], "2.5"),
    _case("eval-num-envs-zero", ["eval", "cartpole-run", "--num-envs", "0"], "'0'"),
    _case("eval-device-unknown", ["eval", "cartpole-run", "--device", "gpu"], "gpu"),
    _case("eval-device-cuda-without-cuda", ["eval", "cartpole-run", "--device", "cuda"], "cuda", machine=True, needs_no_cuda=True),
    _case("eval-checkpoint-unknown", ["eval", "cartpole-run", "--checkpoint", "999"], "999"),
    _case("eval-context-feature-unknown", ["eval", "cartpole-run", "--context", "gravty=3"], "gravty"),
    _case("eval-context-out-of-bounds", ["eval", "cartpole-run", "--context", "gravity=100:200"], "200"),
    _case("eval-wrapper-unknown", ["eval", "cartpole-run", "--wrapper", "frame-stak"], "frame-stak"),
    _case("eval-wrapper-changes-observations", ["eval", "cartpole-run", "--wrapper", "frame-stack:k=2"], "frame-stack"),
    _case("eval-procgen-flag-on-contexts", ["eval", "cartpole-run", "--distribution-mode", "hard"], "--distribution-mode"),
    _case("eval-shift-on-contexts", ["eval", "cartpole-run", "--shift", "backgrounds-off"], "--shift"),
    _case("eval-env-option-not-boolean", ["eval", "procgen-run", "--env-option", "use_backgrounds=maybe"], "maybe"),
    _case("eval-env-option-unknown", ["eval", "procgen-run", "--env-option", "use_backgrund=false"], "use_backgrund"),
    _case("eval-levels-empty-range", ["eval", "procgen-run", "--levels", "5:2"], "[5, 2)"),
    _case("eval-levels-fewer-than-episodes", ["eval", "procgen-run", "--levels", "100000:100005", "--episodes", "50"], "100000:100005"),
    _case("eval-distribution-mode-unknown", ["eval", "procgen-run", "--distribution-mode", "medium"], "medium"),
    _case("eval-shift-unknown", ["eval", "procgen-run", "--shift", "backgrounds-of"], "backgrounds-of"),
    _case("eval-final-checkpoint-corrupt", ["eval", "run-final-checkpoint-corrupt"], "weights.pt"),
    _case("eval-import-syntax-error", ["eval", "cartpole-run", "--import", "files/syntax_error.py"], "syntax_error.py"),
    # -- heldout saliency -----------------------------------------------------------------------------------
    _case("saliency-contextual-run", ["saliency", "cartpole-run", "--out", "maps"], "cartpole"),
    _case("saliency-out-missing", ["saliency", "procgen-run"], "--out"),
    _case("saliency-method-unknown", ["saliency", "procgen-run", "--out", "maps", "--method", "gradiant"], "gradiant"),
    _case("saliency-target-unknown", ["saliency", "procgen-run", "--out", "maps", "--target", "vaule"], "vaule"),
    _case("saliency-split-unknown", ["saliency", "procgen-run", "--out", "maps", "--split", "tset"], "tset"),
    _case("saliency-seed-negative", ["saliency", "procgen-run", "--out", "maps", "--seed", "-3"], "-3"),
    _case("saliency-device-unknown", ["saliency", "procgen-run", "--out", "maps", "--device", "gpu"], "gpu"),
    _case("saliency-episodes-zero", ["saliency", "procgen-run", "--out", "maps", "--episodes", "0"], "'0'"),
    _case("saliency-max-steps-infinite", ["saliency", "procgen-run", "--out", "maps", "--max-steps", "1e400"], "1e400"),
    _case("saliency-out-is-a-file", ["saliency", "procgen-run", "--out", "files/a-file.txt"], "files/a-file.txt"),
    _case("saliency-missing-folder", ["saliency", "no-such-run", "--out", "maps"], "no-such-run"),
    # -- heldout report -------------------------------------------------------------------------------------
    _case("report-missing-folder", ["report", "no-such-run", "--out", "report"], "no-such-run"),
    _case("report-truncated-summary", ["report", "run-truncated-summary", "--out", "report"], "run-truncated-summary/summary.json"),
    _case("report-malformed-config", ["report", "run-malformed-config", "--out", "report"], "run-malformed-config/config.yaml"),
    _case("report-reference-unknown", ["report", "cartpole-run", "--out", "report", "--reference", "ppo2"], "ppo2"),
    _case("report-reps-zero", ["report", "cartpole-run", "--out", "report", "--reps", "0"], "'0'"),
    _case("report-seed-negative", ["report", "cartpole-run", "--out", "report", "--seed", "-1"], "-1"),
    _case("report-out-is-a-file", ["report", "cartpole-run", "--out", "files/a-file.txt"], "files/a-file.txt"),
    _case("report-not-a-run-folder", ["report", "files", "--out", "report"], "files"),
    _case("report-summary-number-huge", ["report", "run-summary-huge-number", "--out", "report"], "timesteps"),
    _case("report-eval-return-nan", ["report", "run-eval-return-nan", "--out", "report"], "'nan'"),
    # -- heldout stats --------------------------------------------------------------------------------------
    _case("stats-missing-file", ["stats", "files/no-such-scores.json"], "files/no-such-scores.json"),
    _case("stats-truncated-json", ["stats", "files/scores-truncated.json"], "files/scores-truncated.json"),
    _case("stats-nan-score", ["stats", "files/scores-nan.json"], "nan"),
    _case("stats-wrong-layout", ["stats", "files/scores-list.json"], "files/scores-list.json"),
    _case("stats-mode-unknown", ["stats", "files/scores.json", "--mode", "medium"], "medium"),
    _case("stats-reference-unknown", ["stats", "files/scores.json", "--reference", "PP0"], "PP0"),
    _case("stats-reps-zero", ["stats", "files/scores.json", "--reps", "0"], "'0'"),
    _case("stats-seed-negative", ["stats", "files/scores.json", "--seed", "-1"], "-1"),
    # -- heldout sweep ------------------------------------------------------------------------------
    _case("sweep-spec-missing", ["sweep", "files/no-such-sweep.yaml"], "files/no-such-sweep.yaml"),
    _case("sweep-spec-malformed", ["sweep", "files/malformed.yaml"], "files/malformed.yaml"),
    _case("sweep-spec-unknown-key", ["sweep", "files/sweep-unknown-key.yaml"], "gird"),
    _case("sweep-grid-empty", ["sweep", "files/sweep-empty-grid.yaml"], "the grid is empty"),
    _case("sweep-seed-twice", ["sweep", "files/sweep-seed-twice.yaml"], "lists 1 twice"),
    _case("sweep-env-unknown", ["sweep", "files/sweep-unknown-env.yaml"], "cartpol"),
    _case("sweep-agent-unknown", ["sweep", "files/sweep-unknown-agent.yaml"], "ppoo"),
    _case("sweep-preset-unknown", ["sweep", "files/sweep-unknown-preset.yaml"], "quickstar"),
    _case("sweep-override-unknown", ["sweep", "files/sweep-unknown-override.yaml"], "timestep"),
    _case("sweep-agent-arg-unknown", ["sweep", "files/sweep-unknown-agent-arg.yaml"], "gama"),
    _case("sweep-value-bad", ["sweep", "files/sweep-bad-value.yaml"], "-5"),
    _case("sweep-spec-duplicate-key", ["sweep", "files/sweep-duplicate-key.yaml"], "'seed'"),
    _case("sweep-spec-alias-bomb", ["sweep", "files/sweep-alias-bomb.yaml"], "aliases"),
    _case("sweep-grid-too-large", ["sweep", "files/sweep-huge.yaml"], "--max-runs"),
    _case("sweep-max-runs-zero", ["sweep", "files/sweep-ok.yaml", "--max-runs", "0"], "'0'"),
    _case("sweep-zip-lengths-differ", ["sweep", "files/sweep-zip-unequal.yaml"], "seed has 3"),
    _case("sweep-out-set", ["sweep", "files/sweep-out.yaml"], "'out'"),
    _case("sweep-resources-bad", ["sweep", "files/sweep-resources.yaml"], "1.5"),
    _case("sweep-resources-unknown-key", ["sweep", "files/sweep-resources-key.yaml"], "'gpu'"),
    _case("sweep-folder-of-another-sweep", ["sweep", "files/sweep-other-folder.yaml"], "someone-else"),
    _case("sweep-folder-of-no-sweep", ["sweep", "files/sweep-stray-folder.yaml"], "sweeps/stray"),
    _case("sweep-backend-unknown", ["sweep", "files/sweep-ok.yaml", "--backend", "slurm"], "slurm"),
    _case("sweep-ray-not-installed", ["sweep", "files/sweep-ok.yaml", "--backend", "ray"], "ray", hide="ray"),
    _case("sweep-address-without-ray", ["sweep", "files/sweep-ok.yaml", "--address", "auto"], "'auto'"),
    _case("sweep-address-malformed", ["sweep", "files/sweep-ok.yaml", "--backend", "ray", "--address", "head"], "'head'"),
    _case("sweep-address-unreachable", ["sweep", "files/sweep-ok.yaml", "--backend", "ray", "--address", "127.0.0.1:1"], "127.0.0.1:1"),
    _case("sweep-workers-with-ray", ["sweep", "files/sweep-ok.yaml", "--backend", "ray", "--workers", "2"], "--workers 2"),
    _case("sweep-workers-zero", ["sweep", "files/sweep-ok.yaml", "--workers", "0"], "'0'"),
    _case("sweep-max-retries-negative", ["sweep", "files/sweep-ok.yaml", "--max-retries", "-1"], "-1"),
    _case("sweep-unknown-flag", ["sweep", "files/sweep-ok.yaml", "--dryrun"], "--dryrun"),
    _case("sweep-tune-no-section", ["sweep", "files/sweep-ok.yaml", "--tune"], "no tune section"),
    _case("sweep-tune-unknown-key", ["sweep", "files/sweep-tune-unknown-key.yaml", "--tune"], "spcae"),
    _case("sweep-tune-unknown-method", ["sweep", "files/sweep-tune-method.yaml", "--tune"], "grdi"),
    _case("sweep-tune-range-in-grid", ["sweep", "files/sweep-tune-range-grid.yaml", "--tune"], "method: random"),
    _case("sweep-tune-random-no-samples", ["sweep", "files/sweep-tune-no-samples.yaml", "--tune"], "samples"),
    _case("sweep-tune-batch-not-optuna", ["sweep", "files/sweep-tune-batch.yaml", "--tune"], "batch"),
    _case("sweep-tune-optuna-batch-zero", ["sweep", "files/sweep-tune-optuna-batch.yaml", "--tune"], "0"),
    _case("sweep-tune-optuna-not-installed", ["sweep", "files/sweep-tune-optuna.yaml", "--tune"], "optuna", hide="optuna"),
    _case("sweep-tune-optuna-on-ray", ["sweep", "files/sweep-tune-optuna.yaml", "--tune", "--backend", "ray"], "method optuna"),
    # -- heldout findings ---------------------------------------------------------------------------
    _case("findings-unknown", ["findings", "run", "gap-few-level"], "gap-few-level"),
    _case("findings-scale-unknown", ["findings", "run", "gap-few-levels", "--scale", "gpu"], "'gpu'"),
    _case("findings-report-before-run", ["findings", "report", "gap-few-levels"], "run it first"),
    _case("findings-no-action", ["findings"], "name an action"),
    _case("findings-backend-unknown", ["findings", "run", "gap-few-levels", "--backend", "slurm"], "slurm"),
    _case("findings-seeds-zero", ["findings", "run", "gap-few-levels", "--seeds", "0"], "--seeds"),
    _case("findings-seeds-misspelt", ["findings", "run", "gap-few-levels", "--sedes", "5"], "did you mean '--seeds'"),
    _case("sweep-tune-samples-over-space", ["sweep", "files/sweep-tune-samples.yaml", "--tune"], "holds 2"),
    _case("sweep-tune-seeds-overlap", ["sweep", "files/sweep-tune-seeds.yaml", "--tune"], "tune.seeds: 0"),
    _case("sweep-tune-seed-tuned", ["sweep", "files/sweep-tune-seed.yaml", "--tune"], "'seed'"),
    _case("sweep-tune-key-in-grid", ["sweep", "files/sweep-tune-in-grid.yaml", "--tune"], "'agent'"),
    _case("sweep-tune-agent-arg-unknown", ["sweep", "files/sweep-tune-agent-arg.yaml", "--tune"], "gama"),
    _case("sweep-tune-value-bad", ["sweep", "files/sweep-tune-bad-value.yaml", "--tune"], "-5"),
    _case("sweep-tune-by-unknown", ["sweep", "files/sweep-tune-by.yaml", "--tune"], "agnet"),
    _case("sweep-tune-no-validation", ["sweep", "files/sweep-tune-no-validation.yaml", "--tune"], "no validation split"),
    # -- heldout list ---------------------------------------------------------------------------------------
    _case("list-import-syntax-error", ["list", "--import", "files/syntax_error.py"], "syntax_error.py"),
    _case("list-import-missing", ["list", "--import", "files/missing.py"], "files/missing.py"),
    _case("list-unknown-flag", ["list", "--all"], "--all"),
    # -- heldout levels check -------------------------------------------------------------------------------
    _case("levels-no-check", ["levels"], "levels check"),
    _case("levels-check-overlapping-ranges", ["levels", "check", "--env", "maze", "--train", "0:200", "--test", "150:300"], "150"),
    _case("levels-check-empty-range", ["levels", "check", "--env", "maze", "--train", "5:5"], "5:5"),
    _case("levels-check-unreadable-range", ["levels", "check", "--env", "maze", "--test", "1-9"], "1-9"),
    _case("levels-check-too-many-levels", ["levels", "check", "--env", "maze", "--test", "1000:2000000"], "1000:2000000"),
    _case("levels-check-unknown-env", ["levels", "check", "--env", "maz"], "maz"),
    _case("levels-check-contextual-env", ["levels", "check", "--env", "cartpole"], "cartpole"),
    _case("levels-check-env-and-all", ["levels", "check", "--env", "maze", "--all"], "--all"),
    _case("levels-check-neither-env-nor-all", ["levels", "check"], "--env"),
    _case("levels-check-bad-option", ["levels", "check", "--env", "maze", "--env-option", "shiny=true"], "shiny"),
    _case("levels-check-option-not-boolean", ["levels", "check", "--env", "maze", "--env-option", "use_backgrounds=2"], "use_backgrounds=2"),
    _case("levels-check-mode-unknown", ["levels", "check", "--env", "maze", "--distribution-mode", "medium"], "medium"),
    _case("levels-check-minihack-without-nle", ["levels", "check", "--env", "minihack-corridor-r5"], "minihack", hide="nle"),
    _case("levels-check-option-on-minigrid", ["levels", "check", "--env", "minigrid-doorkey-5x5", "--env-option", "use_backgrounds=false"], "use_backgrounds"),
    _case("levels-check-all-bad-range", ["levels", "check", "--all", "--train", "0:0"], "0:0"),
    _case("levels-check-json-folder-missing", ["levels", "check", "--env", "maze", "--json", "no-such-dir/levels.json"], "no-such-dir/levels.json"),
    _case("levels-check-json-is-a-folder", ["levels", "check", "--env", "maze", "--json", "files"], "files"),
    # -- heldout bench ------------------------------------------------------------------------------------
    _case("bench-unknown-benchmark", ["bench", "speed"], "speed"),
    _case("bench-throughput-num-envs-zero", ["bench", "throughput", "--num-envs", "0"], "0"),
    _case("bench-throughput-game-unknown", ["bench", "throughput", "--game", "coinrn"], "coinrn"),
    _case("bench-throughput-seeded-env-unknown", ["bench", "throughput", "--seeded-env", "minihack-multirom-n4"], "minihack-multirom-n4"),
    _case("bench-throughput-seeded-env-without-nle", ["bench", "throughput", "--seeded-env", "minihack-multiroom-n4"], "minihack", hide="nle"),
    _case("bench-throughput-device-unknown", ["bench", "throughput", "--device", "gpu"], "gpu"),
    _case("bench-throughput-seed-negative", ["bench", "throughput", "--seed", "-1"], "-1"),
    _case("bench-throughput-n-steps-text", ["bench", "throughput", "--n-steps", "abc"], "abc"),
    _case("bench-throughput-variant-unknown", ["bench", "throughput", "--variants", "heldout_engine,warp"], "warp"),
    _case("bench-throughput-json-folder-missing", ["bench", "throughput", "--json", "no-such-dir/out.json"], "no-such-dir/out.json"),
    _case("bench-eval-episodes-zero", ["bench", "eval", "--episodes", "0"], "--episodes"),
    _case("bench-eval-precision-unknown", ["bench", "eval", "--precision", "fp16"], "fp16"),
    _case("bench-eval-no-agent", ["bench", "eval", "--no-untrained"], "--no-untrained"),
    _case("bench-eval-run-missing", ["bench", "eval", "--run", "no-such-run"], "no-such-run"),
    _case("bench-eval-run-not-procgen", ["bench", "eval", "--run", "cartpole-run"], "cartpole"),
    _case("bench-agents-agent-unknown", ["bench", "agents", "--agents", "ppoo"], "ppoo"),
    _case("bench-agents-game-unknown", ["bench", "agents", "--games", "coinrn"], "coinrn"),
    _case("bench-agents-seed-negative", ["bench", "agents", "--seeds", "-1"], "-1"),
    _case("bench-agents-seeds-text", ["bench", "agents", "--seeds", "a,b"], "a,b"),
    _case("bench-agents-gamma-above-1", ["bench", "agents", "--agent-arg", "gamma=1.5"], "1.5"),
    _case("bench-agents-agent-arg-unknown", ["bench", "agents", "--agent-arg", "gama=0.9"], "gama"),
    _case("bench-agents-timesteps-zero", ["bench", "agents", "--timesteps", "0"], "0"),
    _case("bench-agents-focus-episodes-negative", ["bench", "agents", "--focus-episodes", "-1"], "-1"),
    _case("bench-agents-out-is-a-file", ["bench", "agents", "--out", "files/a-file.txt"], "files/a-file.txt"),
    _case("bench-wrappers-num-envs-zero", ["bench", "wrappers", "--num-envs", "0"], "0"),
    _case("bench-wrappers-game-unknown", ["bench", "wrappers", "--game", "coinrn"], "coinrn"),
    _case("bench-wrappers-wrapper-unknown", ["bench", "wrappers", "--wrappers", "frame-stak"], "frame-stak"),
    _case("bench-wrappers-rounds-zero", ["bench", "wrappers", "--rounds", "0"], "0"),
    _case("bench-wrappers-unknown-flag", ["bench", "wrappers", "--bogus"], "--bogus"),
    _case("bench-levels-env-unknown", ["bench", "levels", "--env", "minigrid-dorkey-5x5"], "minigrid-dorkey-5x5"),
    _case("bench-levels-env-contextual", ["bench", "levels", "--env", "cartpole"], "cartpole"),
    _case("bench-levels-agent-unknown", ["bench", "levels", "--agent", "ppoo"], "ppoo"),
    _case("bench-levels-sizes-empty", ["bench", "levels", "--num-levels", ","], "','"),
    _case("bench-levels-size-zero", ["bench", "levels", "--num-levels", "0,10"], "0"),
    _case("bench-levels-size-negative", ["bench", "levels", "--num-levels", "-5"], "-5"),
    _case("bench-levels-size-text", ["bench", "levels", "--num-levels", "ten"], "ten"),
    _case("bench-levels-size-twice", ["bench", "levels", "--num-levels", "10,50,10"], "10"),
    _case("bench-levels-size-beyond-seed-space", ["bench", "levels", "--num-levels", "10,200000000"], "200000000"),
    _case("bench-levels-seeds-twice", ["bench", "levels", "--seeds", "0,0"], "0"),
    _case("bench-levels-timesteps-zero", ["bench", "levels", "--total-timesteps", "0"], "0"),
    _case("bench-levels-preset-unknown", ["bench", "levels", "--preset", "procgen-esy"], "procgen-esy"),
    _case("bench-levels-out-is-a-file", ["bench", "levels", "--out", "files/a-file.txt"], "files/a-file.txt"),
    _case("bench-contexts-preset-unknown", ["bench", "contexts", "--presets", "cartpole-gravity-extrapolaton"], "cartpole-gravity-extrapolaton"),
    _case("bench-contexts-preset-not-contextual", ["bench", "contexts", "--presets", "procgen-easy"], "procgen-easy"),
    _case("bench-contexts-episodes-zero", ["bench", "contexts", "--episodes", "0"], "0"),
    # -- offline: datasets and offline agents (docs/offline.md) -------------------------------------
    _case("train-offline-agent-without-dataset", ["train", *MINIGRID, "--agent", "bc"], "'bc'"),
    _case("train-dataset-with-online-agent", ["train", *MINIGRID, "--dataset", "datasets/doorkey"], "datasets/doorkey"),
    _case("train-dataset-other-env", ["train", *BC, "datasets/coinrun"], "coinrun"),
    _case("train-dataset-missing", ["train", *BC, "datasets/none"], "datasets/none"),
    _case("train-dataset-truncated", ["train", *BC, "datasets/truncated"], "datasets/truncated"),
    _case("train-dataset-corrupt-metadata", ["train", *BC, "datasets/corrupt-metadata"], "datasets/corrupt-metadata"),
    _case("train-dataset-levels-overlap-test", ["train", *BC, "datasets/doorkey", "--num-levels", "3", "--test-start", "3"], "test level(s) 3"),
    _case("train-dataset-more-steps-than-epochs", ["train", *BC, "datasets/doorkey", "--dataset-epochs", "1", "--timesteps", "100000"], "100000"),
    _case("train-offline-agent-arg-unknown", ["train", *BC, "datasets/doorkey", "--agent-arg", "lr=0.1"], "'lr'"),
    _case("train-record-rollouts-offline-agent", ["train", *BC, "datasets/doorkey", "--record-rollouts"], "--record-rollouts"),
    _case("train-bonus-offline-agent", ["train", *BC, "datasets/doorkey", "--bonus", "count"], "'count'"),
    _case("train-record-rollouts-contexts", ["train", *CARTPOLE, "--record-rollouts"], "cartpole"),
    _case("collect-steps-zero", ["collect", "cartpole-run", "--steps", "0", "--out", "new-data"], "'0'"),
    _case("collect-epsilon-out-of-range", ["collect", "cartpole-run", "--steps", "100", "--out", "new-data", "--epsilon", "1.5"], "1.5"),
    _case("collect-out-not-empty", ["collect", "cartpole-run", "--steps", "100", "--out", "datasets/doorkey"], "datasets/doorkey"),
    _case("collect-num-levels-on-contexts", ["collect", "cartpole-run", "--steps", "100", "--out", "new-data", "--num-levels", "2"], "--num-levels 2"),
    _case("collect-checkpoint-missing", ["collect", "procgen-run", "--steps", "100", "--out", "new-data", "--checkpoint", "999"], "999"),
    _case("collect-run-missing", ["collect", "no-such-run", "--steps", "100", "--out", "new-data"], "no-such-run"),
    _case("collect-num-levels-beyond-the-run", ["collect", "procgen-run", "--steps", "100", "--out", "new-data", "--num-levels", "3"], "--num-levels 3"),
    _case("collect-steps-misspelt", ["collect", "procgen-run", "--stpes", "100", "--out", "new-data"], "--stpes"),
    _case("collect-out-misspelt", ["collect", "procgen-run", "--steps", "100", "--otu", "new-data"], "--otu"),
    _case("collect-num-levels-zero", ["collect", "procgen-run", "--steps", "100", "--out", "new-data", "--num-levels", "0"], "'0'"),
]
# fmt: on

#: The catalogue's sections, by the first words of a case's command.
SECTIONS = {
    "train --resume": "heldout train --resume",
    "train": "heldout train",
    "collect": "heldout collect",
    "eval": "heldout eval",
    "saliency": "heldout saliency",
    "report": "heldout report",
    "stats": "heldout stats",
    "sweep": "heldout sweep",
    "findings": "heldout findings",
    "list": "heldout list",
    "levels": "heldout levels",
    "bench throughput": "heldout bench throughput",
    "bench agents": "heldout bench agents",
    "bench wrappers": "heldout bench wrappers",
    "bench levels": "heldout bench levels",
    "bench contexts": "heldout bench contexts",
    "bench": "heldout bench",
}


def section_of(case: Case) -> str:
    words = " ".join(case.argv)
    if case.argv[0] == "train" and "--resume" in case.argv:
        return SECTIONS["train --resume"]
    for prefix, title in SECTIONS.items():
        if words == prefix or words.startswith(prefix + " "):
            return title
    raise AssertionError(f"no section for {case.id}")


# ------------------------------------------------------------------------------------------------
# The working folder: a tiny real run, broken copies of it, bad files


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def build_workspace(root: Path) -> Path:
    """Fills ``root`` with what the cases name (relative to it) and returns it.

    * ``cartpole-run``: a real run folder (:data:`FIXTURE_TRAIN`), complete, with checkpoints;
    * ``procgen-run``: that folder relabelled as a Procgen (starpilot) run (its config.yaml,
      split.json and summary.json rewritten): every Procgen-only check runs on the config before a
      model is loaded, and training a real Procgen run costs far more than the rest of this file
      (its weights, CartPole's, would fail loudly if a case ever got as far as loading them);
    * ``run-malformed-config``, ``run-config-list``, ``run-config-bad-seed``,
      ``run-truncated-summary``, ``run-malformed-status``: copies with one file broken;
    * ``files/``: bad and good input files.
    """
    import yaml

    from heldout.cli import main
    from heldout.protocol.config import TrainConfig
    from heldout.splits import LevelSplit

    out = root / "fixture-runs"
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*FIXTURE_TRAIN, "--out", str(out)]) == 0
    (made,) = (out / "cartpole" / "ppo").iterdir()
    run = root / "cartpole-run"
    shutil.move(str(made), run)
    shutil.rmtree(out)

    procgen = root / "procgen-run"
    shutil.copytree(run, procgen)
    config = TrainConfig(
        env="starpilot",
        timesteps=128,
        num_envs=2,
        num_levels=2,
        num_test_levels=4,
        agent_kwargs={"n_steps": 32, "batch_size": 32, "n_epochs": 1},
        eval_episodes=2,
        eval_num_envs=2,
        leakage="off",
        out="runs",
    )
    _write(procgen / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    split = LevelSplit.default(num_levels=2, num_test_levels=4)
    levels = {"train": [0, 1], "test": [split.test.start, split.test.start + 1]}
    _write(
        procgen / "split.json", json.dumps({"split": split.to_dict(), "eval_levels": levels, "leakage": {}})
    )
    summary = json.loads((run / "summary.json").read_text())
    _write(procgen / "summary.json", json.dumps({**summary, "env": "starpilot", "kind": "levels"}))

    broken = {
        "run-malformed-config": ("config.yaml", "env: [cartpole\nagent: ppo\n"),
        "run-config-list": ("config.yaml", "- env\n- agent\n"),
        "run-truncated-summary": ("summary.json", (run / "summary.json").read_text()[:40]),
        "run-malformed-status": ("status.json", '{"state": "runn'),
    }
    for name, (file, text) in broken.items():
        shutil.copytree(run, root / name)
        _write(root / name / file, text)
    shutil.copytree(run, root / "run-config-bad-seed")
    data = yaml.safe_load((run / "config.yaml").read_text())
    _write(
        root / "run-config-bad-seed" / "config.yaml", yaml.safe_dump({**data, "seed": -7}, sort_keys=False)
    )
    # copies with one hostile field (a forger re-hashes a checkpoint's manifest too); resume's are
    # marked interrupted, so that it gets as far as reading them
    huge = "1" + "0" * 400
    final = sorted((run / "checkpoints").iterdir(), key=lambda p: int(p.name[5:]))[-1].name

    def hostile(name: str, file: str, edit: Any, interrupted: bool = False) -> None:
        copy = root / name
        shutil.copytree(run, copy)
        target = copy / file
        target.write_text(edit(target.read_text()))
        if interrupted:
            status = json.loads((copy / "status.json").read_text())
            _write(copy / "status.json", json.dumps({**status, "state": "interrupted"}))
        if file.startswith("checkpoints/"):
            _rehash(target.parent)

    def set_json(key: str, value: str) -> Any:
        return lambda text: re.sub(rf'"{key}": [^,}}\n]+', f'"{key}": {value}', text, count=1)

    hostile("run-state-huge-number", f"checkpoints/{final}/state.json", set_json("num_timesteps", huge), True)
    hostile(
        "run-status-pid-huge",
        "status.json",
        lambda t: set_json("pid", huge)(t).replace('"complete"', '"running"'),
    )
    hostile("run-split-seed-huge", "split.json", set_json("seed", huge), True)
    hostile("run-summary-huge-number", "summary.json", set_json("timesteps", huge))
    hostile(
        "run-eval-return-nan",
        "eval/test.csv",
        lambda t: re.sub(r"^(\d+,\d+,)[^,]+,", r"\1nan,", t, count=1, flags=re.M),
    )

    def bad_step(text: str) -> str:
        rows = text.splitlines()
        col = rows[0].split(",").index("time/total_timesteps")
        cells = rows[1].split(",")
        cells[col] = "1e400"
        return "\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n"

    hostile("run-progress-bad-step", "progress.csv", bad_step, True)
    # the final checkpoint's weights damaged (the manifest's checksum fixed, so the line is the same
    # on every machine)
    corrupt = root / "run-final-checkpoint-corrupt"
    shutil.copytree(run, corrupt)
    (corrupt / "checkpoints" / final / "weights.pt").write_bytes(b"not the weights")
    manifest = json.loads((corrupt / "checkpoints" / final / "manifest.json").read_text())
    manifest["files"]["weights.pt"] = "0" * 64
    _write(corrupt / "checkpoints" / final / "manifest.json", json.dumps(manifest))
    # an interrupted copy whose status.json is broken: resume reads it before anything else
    files = root / "files"
    _write(files / "malformed.yaml", "timesteps: [1000, 2000\nseed: 3\n")
    _write(files / "list.yaml", "- timesteps\n- seed\n")
    _write(files / "unknown-field.yaml", "timestep: 1000\n")
    _write(files / "not-boolean.yaml", "reward_norm: maybe\n")
    _write(files / "on-boolean.yaml", "leakage_check: on\n")
    _write(files / "leakage-typo.yaml", "leakage: layot\n")
    _write(files / "leakage-both.yaml", "leakage_check: false\nleakage: look\n")
    _write(files / "syntax_error.py", "def broken(:\n    pass\n")
    _write(files / "duplicate-key.yaml", "timesteps: 1000\nseed: 1\ntimesteps: 2000\n")
    laughs = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    _write(files / "alias-bomb.yaml", "\n".join(laughs) + "\ntimesteps: 1000\n")
    _write(files / "huge-integer.yaml", "timesteps: " + "9" * 5000 + "\n")
    _write(files / "a-file.txt", "not a folder\n")
    _write(
        files / "scores.json",
        json.dumps({"PPO": {"starpilot": [10.0, 12.0]}, "DrAC": {"starpilot": [11.0, 13.0]}}),
    )
    _write(files / "scores-nan.json", '{"PPO": {"starpilot": [10.0, NaN]}}')
    _write(files / "scores-truncated.json", '{"PPO": {"starpil')
    _write(files / "scores-list.json", "[10.0, 12.0]\n")
    # sweep specs: each valid but for one thing; their folders are under sweeps/, which holds another
    # sweep's folder and a folder of no sweep
    tiny = "base: {preset: cartpole-gravity-extrapolation, timesteps: 64, num_envs: 2}\n"
    specs = {
        "sweep-ok": "grid: {seed: [0]}\n",
        "sweep-unknown-key": "gird: {seed: [0]}\n",
        "sweep-empty-grid": "grid: {}\n",
        "sweep-seed-twice": "grid: {seed: [0, 1, 1]}\n",
        "sweep-unknown-env": "grid: {env: [cartpole, cartpol]}\n",
        "sweep-unknown-agent": "grid: {agent: [ppo, ppoo], seed: [0, 1]}\n",
        "sweep-unknown-override": "grid: {timestep: [1000]}\n",
        "sweep-unknown-agent-arg": "grid: {agent_kwargs.gama: [0.9, 0.99]}\n",
        "sweep-bad-value": "grid: {eval_episodes: [10, -5]}\n",
        "sweep-zip-unequal": "grid: {seed: [0, 1, 2], agent: [ppo, sgfd]}\nzip: [[seed, agent]]\n",
        "sweep-out": "grid: {out: [elsewhere]}\n",
        "sweep-resources": "grid: {seed: [0]}\nresources: {cpus: 1, gpus: 1.5}\n",
        "sweep-resources-key": "grid: {seed: [0]}\nresources: {gpu: 0.5}\n",
    }
    # tune sections: the fixture's contexts get validation contexts, so only the one bad thing is wrong
    val = "base: {preset: cartpole-gravity-extrapolation, timesteps: 64, num_envs: 2, "
    val += "contexts.validation: {gravity: '2.45:4.9'}}\ngrid: {seed: [0]}\n"
    tunes = {
        "sweep-tune-unknown-key": "tune: {spcae: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
        "sweep-tune-method": "tune: {method: grdi, space: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
        "sweep-tune-range-grid": "tune: {space: {agent_kwargs.ent_coef: {low: 0.0, high: 0.02}}}\n",
        "sweep-tune-no-samples": "tune: {method: random, space: {agent_kwargs.ent_coef: {low: 0.0, high: 0.02}}}\n",
        "sweep-tune-batch": "tune: {method: random, samples: 2, batch: 2, space: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
        "sweep-tune-optuna-batch": "tune: {method: optuna, samples: 2, batch: 0, space: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
        "sweep-tune-optuna": "tune: {method: optuna, samples: 4, space: {agent_kwargs.ent_coef: {low: 0.0, high: 0.02}}}\n",
        "sweep-tune-seed": "tune: {space: {seed: [1, 2]}}\n",
        "sweep-tune-agent-arg": "tune: {space: {agent_kwargs.gama: [0.9, 0.99]}}\n",
        "sweep-tune-bad-value": "tune: {space: {eval_episodes: [10, -5]}}\n",
        "sweep-tune-by": "tune: {space: {agent_kwargs.ent_coef: [0.0, 0.01]}, by: [agnet]}\n",
        "sweep-tune-samples": "tune: {method: random, samples: 3, space: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
        "sweep-tune-seeds": "tune: {seeds: [0], space: {agent_kwargs.ent_coef: [0.0, 0.01]}}\n",
    }
    for name, body in tunes.items():
        _write(files / f"{name}.yaml", f"name: {name}\nfolder: sweeps/{name}\n{val}{body}")
    _write(
        files / "sweep-tune-in-grid.yaml",
        f"name: g\nfolder: sweeps/g\n{val.replace('grid: {seed: [0]}', 'grid: {agent: [ppo, sgfd]}')}"
        "tune: {space: {agent: [ppo]}}\n",
    )
    _write(
        files / "sweep-tune-no-validation.yaml",
        f"name: nv\nfolder: sweeps/nv\n{tiny}grid: {{seed: [0]}}\ntune: {{space: {{agent_kwargs.ent_coef: [0.0, 0.01]}}}}\n",
    )
    for name, body in specs.items():
        _write(files / f"{name}.yaml", f"name: {name}\nfolder: sweeps/{name}\n{tiny}{body}")
    _write(
        files / "sweep-duplicate-key.yaml",
        f"name: dup\nfolder: sweeps/dup\n{tiny}grid:\n  seed: [0, 1]\n  agent: [ppo]\n  seed: [2, 3]\n",
    )
    _write(
        files / "sweep-alias-bomb.yaml", "name: bomb\n" + "\n".join(laughs) + f"\n{tiny}grid: {{seed: *a8}}\n"
    )
    games = "[coinrun, starpilot, bigfish, maze, jumper, heist, ninja, miner, chaser, leaper]"
    rates = "[" + ", ".join(f"{i}.0e-5" for i in range(1, 101)) + "]"
    _write(
        files / "sweep-huge.yaml",
        f"name: huge\nfolder: sweeps/huge\n{tiny}grid:\n  env: {games}\n  seed: {list(range(1000))}\n"
        f"  agent_kwargs.learning_rate: {rates}\n",
    )
    _write(
        files / "sweep-unknown-preset.yaml",
        "folder: sweeps/p\nbase: {preset: quickstar}\ngrid: {seed: [0]}\n",
    )
    for name, folder in (("sweep-other-folder", "sweeps/other"), ("sweep-stray-folder", "sweeps/stray")):
        _write(files / f"{name}.yaml", f"name: {name}\nfolder: {folder}\n{tiny}grid: {{seed: [0]}}\n")
    _write(root / "sweeps" / "other" / "sweep.json", json.dumps({"name": "someone-else"}))
    _write(root / "sweeps" / "stray" / "notes.txt", "not a sweep\n")
    _datasets(root / "datasets")
    return root


def _datasets(root: Path) -> None:
    """Tiny synthetic datasets (``heldout.protocol.dataset.write_synthetic``): ``doorkey`` (MiniGrid
    DoorKey's spaces, levels 0-4), ``coinrun`` (Procgen frames), and broken copies of ``doorkey``."""
    import gymnasium as gym
    import numpy as np

    from heldout.protocol.dataset import DATA, MAIN, METADATA, write_synthetic
    from heldout.protocol.families import family_for
    from heldout.protocol.presets import PRESETS

    probe = family_for("minigrid-doorkey-6x6").probe_env(PRESETS.get("minigrid-doorkey"))
    space, actions = probe.observation_space, int(probe.action_space.n)
    probe.close()
    doorkey = write_synthetic(
        root / "doorkey", "minigrid-doorkey-6x6", space, actions, range(5), 300, (10, 40)
    )
    write_synthetic(
        root / "coinrun", "coinrun", gym.spaces.Box(0, 255, (64, 64, 3), np.uint8), 15, [0], 40, (5, 20)
    )
    shutil.copytree(doorkey, root / "truncated")
    data = (doorkey / DATA / MAIN).read_bytes()
    (root / "truncated" / DATA / MAIN).write_bytes(data[: len(data) // 2])
    shutil.copytree(doorkey, root / "corrupt-metadata")
    _write(root / "corrupt-metadata" / DATA / METADATA, '{"dataset_id": "heldout/x", "total_epi')


def _rehash(checkpoint: Path) -> None:
    """Writes a checkpoint's manifest again from its files (as a forger of a run folder would)."""
    import hashlib

    manifest = json.loads((checkpoint / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((checkpoint / name).read_bytes()).hexdigest()
    _write(checkpoint / "manifest.json", json.dumps(manifest))


def snapshot(root: Path) -> dict[str, tuple[bool, int, int]]:
    """Every path under ``root``: (is a folder, size, modification time in ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        out[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """What differs between two snapshots: paths created, removed, and files changed (a folder's own
    time changes with its entries, which are compared themselves)."""
    found = {
        "created": sorted(set(after) - set(before)),
        "removed": sorted(set(before) - set(after)),
        "changed": sorted(k for k in set(before) & set(after) if before[k] != after[k] and not before[k][0]),
    }
    return {k: v for k, v in found.items() if v}


# ------------------------------------------------------------------------------------------------
# Running a case


class Tripwire(BaseException):
    """A case got past every check into real work (a BaseException: no handler of the CLI takes it)."""


def _tripwire(what: str) -> Any:
    def trip(*args: Any, **kwargs: Any) -> Any:
        raise Tripwire(f"bad input reached {what}: it was not refused before work started")

    return trip


TRIPWIRES: dict[tuple[str, str], str] = {
    ("heldout.protocol.run", "new_run_dir"): "the creation of a run folder",
    ("heldout.protocol.run", "_train_and_evaluate"): "training",
    ("stable_baselines3.common.on_policy_algorithm", "OnPolicyAlgorithm.learn"): "training",
    ("stable_baselines3.common.off_policy_algorithm", "OffPolicyAlgorithm.learn"): "training",
    ("heldout.protocol.reevaluate", "load_trained_model"): "loading the model (heldout eval)",
    ("heldout.protocol.saliency", "load_trained_model"): "loading the model (heldout saliency)",
    ("heldout.bench.throughput", "env_throughput"): "the throughput benchmark",
    ("heldout.bench.evaluation", "measure"): "the evaluation benchmark",
    ("heldout.bench.agents", "quality_run"): "the agents benchmark",
    ("heldout.bench.agents", "agent_throughput"): "the agents benchmark",
    ("heldout.bench.wrappers", "run"): "the wrappers benchmark",
    ("heldout.bench.levels", "run_levels"): "the levels benchmark",
    ("heldout.bench.contexts", "run"): "the contexts benchmark",
    ("heldout.sweep.local", "run_local"): "the sweep's workers",
    ("heldout.sweep.ray_backend", "run_ray"): "the sweep's Ray tasks",
    ("heldout.sweep.plan", "record_sweep"): "the sweep's folder",
    ("heldout.analysis.levels", "check_levels"): "the levels check (fingerprints)",
    ("heldout.protocol.collect", "_play"): "the collection of a dataset",
    ("heldout.protocol.offline", "OfflineModel.learn"): "offline training",
}


@contextlib.contextmanager
def tripwires() -> Iterator[None]:
    import importlib

    saved = []
    for (module_name, attr), what in TRIPWIRES.items():
        owner: Any = importlib.import_module(module_name)
        *parents, name = attr.split(".")
        for parent in parents:
            owner = getattr(owner, parent)
        saved.append((owner, name, owner.__dict__[name]))
        setattr(owner, name, _tripwire(what))
    try:
        yield
    finally:
        for owner, name, value in reversed(saved):
            setattr(owner, name, value)


@dataclass
class Outcome:
    code: Any
    out: str
    err: str


def run_case(case: Case, root: Path) -> Outcome:
    """Runs ``heldout <case.argv>`` in process with ``root`` as the working folder."""
    from heldout.cli import main

    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(root)
    try:
        hidden = _without(case.hide) if case.hide else contextlib.nullcontext()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), tripwires(), hidden:
            try:
                code: Any = main(list(case.argv))
            except SystemExit as exc:  # argparse's own exit: itself a misbehaviour here
                code = f"SystemExit({exc.code})"
    finally:
        os.chdir(cwd)
    return Outcome(code, out.getvalue(), err.getvalue())


def normalize(message: str, root: Path) -> str:
    """The message with the working folder's path taken out (what the catalogue shows)."""
    for form in {str(root), str(root.resolve())}:
        message = message.replace(form + os.sep, "").replace(form, ".")
    return message


@contextlib.contextmanager
def _without(package: str) -> Any:
    """As if ``package`` were not installed: ``sys.modules[package] = None`` (then ``import`` raises
    and ``importlib.util.find_spec`` is None), restored after."""
    saved = {n: mod for n, mod in sys.modules.items() if n == package or n.startswith(package + ".")}
    for name in saved:
        del sys.modules[name]
    sys.modules[package] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules[package]
        sys.modules.update(saved)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# ------------------------------------------------------------------------------------------------
# The catalogue


def _cell(text: str) -> str:
    assert "`" not in text, text
    return "`" + text.replace("|", "\\|") + "`"


def parse_catalogue(text: str) -> dict[str, str]:
    """``{case id: message}`` from the catalogue's tables."""
    rows = {}
    for line in text.splitlines():
        m = re.fullmatch(r"\| (?P<id>[\w-]+) \| `(?P<cmd>.*)` \| `(?P<msg>.*)` \|", line)
        if m:
            rows[m["id"]] = m["msg"].replace("\\|", "|")
    return rows


INTRO = """# Bad inputs: one clear answer to each

Every `heldout` command answers bad input the same way: **exit code 2, exactly one line on stderr**
that names the bad value and the valid ones (with "did you mean" where a registry knows the name),
**no Python traceback**, and **nothing written or changed**: no run folder, no file. The answer is
decided before any folder is created or any compute is spent (`heldout.protocol.validate` runs every
check, each in the part that owns the field; see `docs/layout.md`). A number is checked for its type,
sign, range and finiteness (NaN and infinities are refused); a boolean is `true` or `false` only; a
device is one this machine has (no silent fall-back to the CPU).

A value that is valid but rounded is not an error: `heldout train` prints the exact figure it will
use on stdout, e.g. `note: timesteps 100 is trained as 128: whole collections of num_envs 2 x n_steps
32 = 64 steps each`.

The table below is generated from the real outputs by `tests/cli/test_bad_inputs.py` (which also
checks every line against this page), in a working folder holding a tiny CartPole run folder
(`cartpole-run`), that folder relabelled as a Procgen run (`procgen-run`), copies of it with one
file broken (`run-malformed-config`, `run-config-list`, `run-config-bad-seed`,
`run-truncated-summary`, `run-malformed-status`) or one field hostile (`run-state-huge-number`,
`run-status-pid-huge`, `run-split-seed-huge`, `run-progress-bad-step`, `run-summary-huge-number`,
`run-eval-return-nan`, `run-final-checkpoint-corrupt`: every field read from a run or sweep folder
is untrusted input, a number of any size included), bad input files (`files/`, sweep specs among
them, YAML with a key given twice, an alias bomb, a 5000-digit integer, a grid of a million runs)
and `sweeps/`, which holds another sweep's folder and a folder of no sweep. Regenerate it with

    PYTHONPATH=. python tests/cli/test_bad_inputs.py --write docs/bad-inputs.md

Messages that depend on the machine (its CUDA devices) were taken on one without CUDA.
"""


def write_catalogue(results: dict[str, str], path: Path = CATALOGUE) -> str:
    lines = [INTRO, f"{len(CASES)} bad inputs across every command.\n"]
    by_section: dict[str, list[Case]] = {}
    for case in CASES:
        by_section.setdefault(section_of(case), []).append(case)
    order = ["heldout train", "heldout train --resume", *SECTIONS.values()]
    for title in dict.fromkeys(order):
        cases = by_section.get(title)
        if not cases:
            continue
        lines += [
            f"## {title}\n",
            "| case | command | the one line on stderr (exit code 2) |",
            "|---|---|---|",
        ]
        lines += [f"| {c.id} | {_cell(c.command)} | {_cell(results[c.id])} |" for c in cases]
        lines.append("")
    text = "\n".join(lines)
    path.write_text(text)
    return text


# ------------------------------------------------------------------------------------------------
# The tests


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_workspace(tmp_path_factory.mktemp("bad-inputs"))


@pytest.fixture(scope="module")
def catalogue() -> dict[str, str]:
    return parse_catalogue(CATALOGUE.read_text())


def test_the_catalogue_lists_every_case_once_and_at_least_sixty() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    assert len(ids) >= 60
    assert set(parse_catalogue(CATALOGUE.read_text())) == set(ids), (
        "docs/bad-inputs.md is out of date: PYTHONPATH=. python tests/cli/test_bad_inputs.py --write docs/bad-inputs.md"
    )
    commands = {section_of(c) for c in CASES}
    for command in ("train", "train --resume", "eval", "saliency", "report", "stats", "sweep", "list"):
        assert f"heldout {command}" in commands
    for bench in ("throughput", "agents", "wrappers"):
        assert f"heldout bench {bench}" in commands


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    case: Case, workspace: Path, catalogue: dict[str, str]
) -> None:
    if case.needs_no_cuda and _cuda():
        pytest.skip("valid on a machine with CUDA")
    before = snapshot(workspace)
    try:
        outcome = run_case(case, workspace)
    except Tripwire as exc:
        pytest.fail(f"{case.command}: {exc}")
    after = snapshot(workspace)
    lines = outcome.err.strip().splitlines()
    assert outcome.code == 2, f"{case.command}: exit {outcome.code!r}, stderr {outcome.err!r}"
    assert len(lines) == 1, f"{case.command}: {len(lines)} lines on stderr: {outcome.err!r}"
    assert "Traceback" not in outcome.err + outcome.out
    assert case.bad in lines[0], f"{case.command}: the line does not name {case.bad!r}: {lines[0]}"
    assert not changes(before, after), f"{case.command}: {changes(before, after)}"
    if not case.machine:
        assert catalogue.get(case.id) == normalize(lines[0], workspace), (
            "the line differs from docs/bad-inputs.md: regenerate it with "
            "PYTHONPATH=. python tests/cli/test_bad_inputs.py --write docs/bad-inputs.md"
        )


#: The cases of plain ``heldout train`` (a new run): ``--dry-run`` must refuse each exactly so.
TRAIN_CASES = [c for c in CASES if section_of(c) == "heldout train" and c.id != "train-json-without-dry-run"]


@pytest.mark.parametrize("case", TRAIN_CASES, ids=lambda c: c.id)
def test_a_dry_run_refuses_bad_input_with_the_same_line(case: Case, workspace: Path) -> None:
    """``heldout train --dry-run`` runs every check a real run does: each bad input of a real run
    fails the dry run with the same one line, exit 2, nothing written."""
    if case.needs_no_cuda and _cuda():
        pytest.skip("valid on a machine with CUDA")
    before = snapshot(workspace)
    real = run_case(case, workspace)
    dry = run_case(_case(case.id, [*case.argv, "--dry-run"], case.bad), workspace)
    assert (dry.code, dry.err) == (real.code, real.err), case.command
    assert dry.out == real.out  # notes, if any, and no plan
    assert not changes(before, snapshot(workspace))


def test_the_checks_catch_a_case_that_writes(workspace: Path) -> None:
    """The harness itself: valid commands (nothing bad about them) trip a tripwire, and a written or
    changed file shows in the snapshots, so a check that went missing cannot pass unnoticed."""
    before = snapshot(workspace)
    for argv in (["eval", "cartpole-run", "--episodes", "2", "--no-progress"], FIXTURE_TRAIN):
        with pytest.raises(Tripwire):
            run_case(_case("valid", argv, ""), workspace)
    assert not changes(before, snapshot(workspace))
    summary = workspace / "cartpole-run" / "summary.json"
    text = summary.read_text()
    (workspace / "files" / "written.txt").write_text("x")
    summary.write_text(text + " ")
    try:
        found = changes(before, snapshot(workspace))
        assert found == {"created": ["files/written.txt"], "changed": ["cartpole-run/summary.json"]}
    finally:
        (workspace / "files" / "written.txt").unlink()
        summary.write_text(text)


def test_a_rounded_timesteps_is_a_note_with_the_exact_figure_not_an_error(workspace: Path) -> None:
    """Valid input that gets rounded (timesteps to whole rollouts of num_envs x n_steps) is reported on
    stdout with the figure used, before the run starts; the figure is the one the catalogue quotes."""
    from heldout.cli import main

    argv = ["train", *CARTPOLE, "--timesteps", "100", "--num-envs", "2", "--agent-arg", "n_steps=32"]
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), tripwires():
            with pytest.raises(Tripwire, match="run folder"):
                main(argv)
    finally:
        os.chdir(cwd)
    note = (
        "note: timesteps 100 is trained as 128: whole collections of num_envs 2 x n_steps 32 = 64 steps each"
    )
    assert out.getvalue().strip() == note and err.getvalue() == ""
    assert " ".join(note.split()) in " ".join(CATALOGUE.read_text().split())


def main(argv: list[str]) -> int:
    """``--write PATH``: runs every case in a fresh working folder and writes the catalogue."""
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", metavar="PATH", default=str(CATALOGUE), help="the catalogue to write")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = build_workspace(Path(tmp))
        results, failed = {}, []
        for case in CASES:
            try:
                outcome = run_case(case, root)
            except Tripwire as exc:
                failed.append(f"{case.id}: {exc}")
                continue
            lines = outcome.err.strip().splitlines()
            if outcome.code != 2 or len(lines) != 1 or case.bad not in lines[0]:
                failed.append(f"{case.id}: exit {outcome.code!r}, stderr {outcome.err[-300:]!r}")
                continue
            results[case.id] = normalize(lines[0], root)
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 1
    write_catalogue(results, Path(args.write))
    print(f"{args.write}: {len(CASES)} cases")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
