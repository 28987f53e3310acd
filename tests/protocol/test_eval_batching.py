"""Evaluation's batching: the tail acts only for slots still playing a listed level, and the
precision switch reaches the policy's forward passes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from heldout.protocol.evaluate import evaluate, inference_precision

LEVELS = [100_000_000 + k for k in range(7)]


class _Greedy:
    """A deterministic stand-in policy: each slot's action is a function of its observation only,
    so results cannot depend on which other slots share the batch."""

    def __init__(self, recurrent: bool = False, precision: str | None = None) -> None:
        self.recurrent = recurrent
        self.batch_sizes: list[int] = []
        self.autocast: list[bool] = []
        self.device = torch.device("cpu")
        if precision is not None:
            self.precision = precision

    def predict(
        self, obs: np.ndarray, state: Any = None, episode_start: Any = None, deterministic: bool = False
    ):
        self.batch_sizes.append(len(obs))
        self.autocast.append(torch.is_autocast_enabled("cpu"))
        flat = obs.reshape(len(obs), -1).astype(np.int64)
        actions = (flat[:, ::97].sum(axis=1) * 7 + flat[:, 5]) % 15
        return actions, ("state" if self.recurrent else None)


def test_the_tail_acts_only_for_listed_slots_and_changes_no_result() -> None:
    skipping, full = _Greedy(), _Greedy(recurrent=True)  # a state forces full batches
    a = evaluate(skipping, "bigfish", LEVELS, num_envs=4)
    b = evaluate(full, "bigfish", LEVELS, num_envs=4)
    assert a.levels == b.levels == LEVELS
    assert a.returns == b.returns and a.lengths == b.lengths and a.completed == b.completed
    assert set(full.batch_sizes) == {4}
    # 7 levels on 4 slots: once the 7th is handed out, fewer than 4 slots play listed levels
    assert min(skipping.batch_sizes) < 4 and max(skipping.batch_sizes) == 4
    assert sum(skipping.batch_sizes) < sum(full.batch_sizes)
    # every slot-step that was inferred belongs to a listed episode (or the step that ends one)
    assert sum(skipping.batch_sizes) <= sum(a.lengths) + 4 * len(LEVELS)


@pytest.mark.parametrize(
    "own, given, expected", [(None, None, "fp32"), ("bf16", None, "bf16"), ("bf16", "fp32", "fp32")]
)
def test_the_precision_switch_reaches_the_forward_passes(
    own: str | None, given: str | None, expected: str
) -> None:
    model = _Greedy(precision=own)
    result = evaluate(model, "bigfish", LEVELS[:2], num_envs=2, precision=given)
    assert result.settings["precision"] == expected
    assert set(model.autocast) == {expected == "bf16"}


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="'fp16'.*fp32, bf16"):
        inference_precision(_Greedy(), "fp16")


def test_bf16_acting_runs_only_the_trunk_in_bf16_as_in_training() -> None:
    from heldout.agents import AGENTS
    from heldout.protocol.evaluate import acting_context
    from tests.agents.tiny_env import small_agent

    model = small_agent(AGENTS.get("ppo"), precision="bf16")
    seen: dict[str, torch.dtype] = {}
    conv = next(m for m in model.policy.features_extractor.modules() if isinstance(m, torch.nn.Conv2d))

    def record(name: str):
        def hook(module, args, out) -> None:
            seen[name] = out.dtype

        return hook

    conv.register_forward_hook(record("trunk conv"))
    model.policy.action_net.register_forward_hook(record("policy head"))
    obs = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    with acting_context(model, "bf16"):
        model.predict(obs)
    assert seen == {"trunk conv": torch.bfloat16, "policy head": torch.float32}
    assert not torch.is_autocast_enabled("cpu")
