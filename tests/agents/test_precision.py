"""``precision="bf16"``: the update's forward passes under bf16 autocast, weights and losses fp32.

The bound: from the same weights and the same rollout, the gradients of one bf16 minibatch point the
way the fp32 ones do (cosine similarity above 0.99) and have the same norm within 5%; they are not
bitwise the fp32 ones (so bf16 was really used). fp32 is the default and runs exactly as before
(tests/agents/test_determinism.py).
"""

from __future__ import annotations

import pytest
import torch

from heldout.agents import AGENTS
from tests.agents.tiny_env import small_agent

#: Each agent whose update differs (ppo; drac: an auxiliary loss over distributions; sgfd: per-sample
#: weights); rad and ucb-drac share those losses and sg-ppo adds a saliency loss: slow.
ON_POLICY = [
    "ppo",
    "drac",
    "sgfd",
    pytest.param("rad", marks=pytest.mark.slow),
    pytest.param("ucb-drac", marks=pytest.mark.slow),
    pytest.param("sg-ppo", marks=pytest.mark.slow),
]


def _grads_after_one_update(name: str, precision: str) -> tuple[torch.Tensor, float]:
    # one minibatch of the whole rollout (2 envs x 8 steps), no clipping: the raw gradient
    model = small_agent(AGENTS.get(name), batch_size=16, max_grad_norm=1e9, precision=precision)
    model.learn(16)
    grads = [p.grad.flatten() for p in model.policy.parameters() if p.grad is not None]
    return torch.cat(grads), float(model.logger.name_to_value.get("train/loss", float("nan")))


@pytest.mark.parametrize("name", ON_POLICY)
def test_bf16_gradients_are_the_fp32_ones_within_the_stated_bound(name: str) -> None:
    g32, _ = _grads_after_one_update(name, "fp32")
    g16, _ = _grads_after_one_update(name, "bf16")
    cosine = torch.nn.functional.cosine_similarity(g32, g16, dim=0).item()
    ratio = (g16.norm() / g32.norm()).item()
    assert cosine > 0.99, f"{name}: cosine {cosine:.4f}"
    assert abs(ratio - 1) < 0.05, f"{name}: norm ratio {ratio:.4f}"
    assert not torch.equal(g32, g16), f"{name}: bf16 gave the fp32 gradients bitwise (autocast not used?)"


def test_fp32_is_the_default_and_bf16_survives_save_and_load(tmp_path) -> None:
    ppo = AGENTS.get("ppo")
    assert small_agent(ppo).precision == "fp32"
    model = small_agent(ppo, precision="bf16")
    model.save(tmp_path / "m.zip")
    assert ppo.load(tmp_path / "m.zip", device="cpu").precision == "bf16"
    with pytest.raises(ValueError, match="fp16"):
        small_agent(ppo, precision="fp16")
