"""``precision="bf16"``: only the trunk under bf16 autocast; heads, distributions, values, losses fp32.

Pinned: with identical weights the policy ratio is exactly 1 (acting and the update compute the same
fp32 log-probabilities); values and logits are fp32 heads applied to the bf16-computed features,
bitwise; every module after the trunk (heads, DrAC's second pass, SG-PPO's decoder, SGFD's level
classifier) and every auxiliary loss is fp32, while the trunk's layers really run in bf16. The
bound: from the same weights and the same rollout, the gradients of one bf16 minibatch point the way
the fp32 ones do (cosine similarity above 0.99) and have the same norm within 5%; they are not
bitwise the fp32 ones (so bf16 was really used). fp32 is the default and runs exactly as before
(tests/agents/test_determinism.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

import heldout.agents.ppo as ppo_module
from heldout.agents import AGENTS
from heldout.agents.precision import trunks
from tests.agents.tiny_env import TinyImageEnv, small_agent

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


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_with_identical_weights_the_ratio_is_exactly_one(precision: str, monkeypatch) -> None:
    """Learning rate 0 keeps the weights of the rollout through the whole update; minibatches of one
    sample are the acting batches of one env, so any difference would be precision, not batching.
    (Before, the heads and the logsumexp ran in bf16 in the update only: |ratio - 1| up to 0.7%.)"""
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []
    loss = ppo_module.ppo_loss

    def spy(log_prob, old_log_prob, *args, **kwargs):
        seen.append((log_prob.detach().clone(), old_log_prob.clone()))
        return loss(log_prob, old_log_prob, *args, **kwargs)

    monkeypatch.setattr(ppo_module, "ppo_loss", spy)
    env = DummyVecEnv([TinyImageEnv])
    model = ppo_module.PPO(
        "CnnPolicy",
        env,
        n_steps=6,
        batch_size=1,
        n_epochs=2,
        learning_rate=0.0,
        normalize_advantage=False,
        precision=precision,
        seed=0,
        device="cpu",
    )
    model.learn(6)
    assert len(seen) == 12
    for log_prob, old_log_prob in seen:
        assert log_prob.dtype == old_log_prob.dtype == torch.float32
        assert torch.equal(torch.exp(log_prob - old_log_prob), torch.ones_like(log_prob))


def test_bf16_values_and_logits_are_fp32_heads_on_the_bf16_features() -> None:
    model = small_agent(AGENTS.get("ppo"), precision="bf16")
    policy = model.policy
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8))
    with torch.no_grad():
        with model._precision():
            distribution, values, features = model.forward_policy(obs)
        # a second way: the trunk under plain autocast, then the heads in fp32, outside any autocast
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16_features = policy.features_extractor(obs.float() / 255.0)
        assert bf16_features.dtype == torch.bfloat16  # the trunk really ran in bf16
        expected = bf16_features.float()
        fp32_features = policy.features_extractor(obs.float() / 255.0)
        assert features.dtype == values.dtype == torch.float32
        assert torch.equal(features, expected) and not torch.equal(features, fp32_features)
        assert torch.equal(values, policy.value_net(expected))
        logits = policy.action_net(expected)
        assert torch.equal(distribution.distribution.logits, logits - logits.logsumexp(-1, keepdim=True))
    assert not torch.is_autocast_enabled("cpu")  # the region closed with the trunk


def test_the_trunk_context_closes_autocast_when_the_trunk_raises_and_when_nested() -> None:
    model = small_agent(AGENTS.get("ppo"), precision="bf16")
    with pytest.raises(RuntimeError), model._precision():
        model.policy.features_extractor(torch.zeros(1, 5, 64, 64))  # 5 channels: the conv refuses
    assert not torch.is_autocast_enabled("cpu")
    # evaluation's context inside training's (a periodic evaluation runs in a rollout's callback)
    with model._precision(), model._precision():
        features = model.policy.features_extractor(torch.zeros(1, 3, 64, 64))
        assert features.dtype == torch.float32 and not torch.is_autocast_enabled("cpu")
    hooks = [m._forward_hooks or m._forward_pre_hooks for m in trunks(model.policy)]
    assert not any(hooks)  # and the hooks are gone


#: Each on-policy agent with modules or losses of its own after the trunk.
AFTER_TRUNK = [
    ("ppo", {}),
    ("drac", {}),
    ("sgfd", {"num_classes": 4}),
    pytest.param("sg-ppo", {}, marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "kwargs"), AFTER_TRUNK)
def test_in_bf16_only_the_trunk_computes_in_bf16(name: str, kwargs: dict) -> None:
    """Every module of the agent (its policy and its own: SGFD's level classifier, SG-PPO's decoder)
    outputs fp32 unless it sits inside a features extractor, and the auxiliary loss is fp32, through
    a whole learn() in bf16; inside the trunk the convolutions output bf16."""
    model = small_agent(AGENTS.get(name), batch_size=8, precision="bf16", **kwargs)
    owned = [m for m in vars(model).values() if isinstance(m, nn.Module)]
    inside = {id(m) for trunk in trunks(model.policy) for m in trunk.modules()}
    dtypes: dict[str, set[torch.dtype]] = {"inside": set(), "after": set()}

    def record(module: nn.Module, args, output) -> None:
        if isinstance(output, torch.Tensor) and output.is_floating_point():
            dtypes["inside" if id(module) in inside else "after"].add(output.dtype)

    handles = [m.register_forward_hook(record) for root in owned for m in root.modules()]
    aux_dtypes: set[torch.dtype] = set()
    auxiliary_loss = model.auxiliary_loss

    def spy(batch, outputs):
        loss, logs = auxiliary_loss(batch, outputs)
        aux_dtypes.add(loss.dtype)
        return loss, logs

    model.auxiliary_loss = spy
    model.learn(16)
    for handle in handles:
        handle.remove()
    assert dtypes["after"] == {torch.float32}
    assert torch.bfloat16 in dtypes["inside"]
    assert aux_dtypes == {torch.float32}


def test_cpu_bf16_units_are_read_from_torch_or_the_cpu_flags(monkeypatch, tmp_path) -> None:
    from heldout.agents import precision

    def capabilities(found: dict) -> None:
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: found, raising=False)

    capabilities({"avx512_bf16": False, "amx_bf16": True})
    assert precision.cpu_bf16_units() is True
    capabilities({"avx512_bf16": False, "amx_bf16": False, "avx512_f": True})
    assert precision.cpu_bf16_units() is False
    # no x86 answer from torch: the flags of /proc/cpuinfo (x86 "flags", ARM "Features")
    capabilities({})
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(precision, "CPUINFO", cpuinfo)
    for text, expected in (
        ("model name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2 avx512f avx512bw\n", False),
        ("model name\t: Intel Xeon\nflags\t\t: fpu avx512f amx_bf16 amx_tile\n", True),
        ("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n", True),
        ("processor\t: 0\n", None),
    ):
        cpuinfo.write_text(text)
        assert precision.cpu_bf16_units() is expected, text
    cpuinfo.write_text("model name\t: AMD EPYC 7B12\nflags\t\t: fpu avx2\n")
    assert precision.cpu_model() == "AMD EPYC 7B12"
    cpuinfo.unlink()
    assert precision.cpu_bf16_units() is None


@pytest.mark.parametrize("units", [False, True, None])
def test_bf16_on_a_cpu_without_bf16_units_is_one_line_naming_the_cpu_and_the_cost(units, monkeypatch) -> None:
    from heldout.agents import precision

    monkeypatch.setattr(precision, "cpu_bf16_units", lambda: units)
    line = precision.bf16_cpu_warning("bf16", "cpu")
    if units is False:
        assert line is not None and "\n" not in line
        assert precision.cpu_model() in line and "emulated" in line and "11x slower" in line
    else:  # units, or no way to tell: nothing said
        assert line is None
    assert precision.bf16_cpu_warning("fp32", "cpu") is None
    assert precision.bf16_cpu_warning("bf16", torch.device("cuda")) is None
