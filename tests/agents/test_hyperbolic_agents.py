"""The hyperbolic heads in the PPO family: every agent, DrAC with PLR, S-RYM's spectral norm, the
per-update logs, bf16 (heads fp32), SGQN refused, and exact resume of a run with the new parameters."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from heldout.agents import AGENTS
from heldout.agents.hyperbolic import HLGauss, HyperbolicHead
from heldout.agents.level_replay import scoring_sampler
from heldout.protocol.config import TrainConfig
from heldout.protocol.families import family_for
from heldout.protocol.validate import check_agent_kwargs
from tests.agents.tiny_env import small_agent

PPO_FAMILY = ["ppo", "rad", "drac", "ucb-drac", "sg-ppo", "sgfd"]
GEOMETRIES = {
    "poincare-srym": {"representation": "poincare", "s_rym": True},
    "hyperpp": {"representation": "hyperboloid", "feature_reg": True, "hl_gauss": True},
}


def _flat(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten().clone() for p in model.policy.parameters()])


@pytest.mark.parametrize("name", PPO_FAMILY)
@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_every_ppo_agent_trains_with_hyperbolic_heads(name: str, geometry: str) -> None:
    extra = {"num_classes": 4} if name == "sgfd" else {}
    model = small_agent(AGENTS.get(name), **GEOMETRIES[geometry], **extra)
    assert isinstance(model.policy.action_net, HyperbolicHead)
    value_net = model.policy.value_net
    assert isinstance(value_net.head if isinstance(value_net, HLGauss) else value_net, HyperbolicHead)
    # the IMPALA-CNN reads out 32-d with no final ReLU (the authors' hidden_units 32, no pre-hyperbolic ReLU)
    assert model.policy.features_extractor.linear.out_features == 32
    assert isinstance(model.policy.features_extractor.linear_relu, nn.Identity)
    before = _flat(model)
    optimised = {id(p) for group in model.policy.optimizer.param_groups for p in group["params"]}
    assert {id(p) for p in model.policy.action_net.parameters()} <= optimised
    model.learn(16)
    after = _flat(model)
    assert torch.isfinite(after).all() and not torch.equal(before, after)
    for key in ("train/grad_norm", "train/representation_norm", "train/hyperbolic_radius"):
        assert np.isfinite(model.logger.name_to_value[key]), key


def test_drac_with_plr_trains_hyperbolic_heads_and_plr_scores_their_values() -> None:
    config = TrainConfig(env="coinrun", num_envs=4, num_levels=12, reward_norm=False, level_sampler="plr")
    family = family_for("coinrun")
    venv = family.make_train_env(config, family.split(config))
    kwargs = {**family.agent_kwargs(config), "n_steps": 32, "batch_size": 64, "n_epochs": 1}
    model = AGENTS.get("drac")(
        env=venv, seed=0, device="cpu", representation="poincare", s_rym=True, curvature=0.5, **kwargs
    )
    sampler = scoring_sampler(venv)
    assert isinstance(model.policy.value_net, HyperbolicHead) and model.policy.value_net.c == 0.5
    model.learn(128)
    assert sampler.rollouts == 1 and sampler.seen.any()
    assert np.isfinite(sampler.scores).all() and (sampler.scores[sampler.seen] > 0).all()
    assert np.isfinite(model.logger.name_to_value["train/aug_loss"])
    venv.close()


def test_s_rym_spectrally_normalises_every_encoder_layer_and_not_the_heads() -> None:
    model = small_agent(AGENTS.get("ppo"), representation="poincare", s_rym=True)
    trunk = model.policy.features_extractor
    layers = [m for m in trunk.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 16  # 15 convs of the IMPALA stacks + Linear(2048, 32), as the authors'
    assert all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in model.policy.action_net.modules())
    linear = trunk.linear
    trunk.train()
    for _ in range(30):  # power iterations
        trunk(torch.zeros(1, 3, 64, 64))
    trunk.eval()
    assert abs(torch.linalg.matrix_norm(linear.weight, ord=2).item() - 1.0) < 1e-3
    # the Euclidean control: spectral norm only, linear heads
    control = small_agent(AGENTS.get("ppo"), s_rym=True)
    assert isinstance(control.policy.action_net, nn.Linear)
    assert nn.utils.parametrize.is_parametrized(control.policy.features_extractor.linear, "weight")


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_the_logged_gradient_and_representation_norms_are_the_updates_own(geometry: str) -> None:
    # one minibatch of the whole rollout, no clipping: the logged norm is that of the raw gradient
    model = small_agent(AGENTS.get("ppo"), batch_size=16, max_grad_norm=1e9, **GEOMETRIES[geometry])
    latents = []
    hook = model.policy.action_net.register_forward_pre_hook(lambda _, args: latents.append(args[0].detach()))
    model.learn(16)
    hook.remove()
    grads = torch.cat([p.grad.flatten() for p in model.policy.parameters() if p.grad is not None])
    logged = model.logger.name_to_value
    assert logged["train/grad_norm"] == pytest.approx(grads.norm().item(), rel=1e-5)
    update_latent = latents[-1]  # the update's forward pass (the rollout's came before)
    assert update_latent.shape[0] == 16
    assert logged["train/representation_norm"] == pytest.approx(
        update_latent.norm(dim=-1).mean().item(), rel=1e-5
    )


def test_hl_gauss_replaces_the_value_loss_with_its_cross_entropy() -> None:
    model = small_agent(AGENTS.get("ppo"), batch_size=16, hl_gauss=True)
    assert isinstance(model.policy.value_net, HLGauss) and isinstance(model.policy.value_net.head, nn.Linear)
    model.learn(16)
    # the cross-entropy of a 51-bin histogram is at least its entropy > 0; a squared error this small
    # (rewards 0/1 over 5 steps) would be far below 1
    assert model.logger.name_to_value["train/value_loss"] > 1.0


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_hyperbolic_heads_compute_in_fp32_under_bf16(geometry: str) -> None:
    model = small_agent(AGENTS.get("ppo"), precision="bf16", **GEOMETRIES[geometry])
    policy = model.policy
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8))
    dtypes: set[torch.dtype] = set()
    heads = [policy.action_net, policy.value_net]
    handles = [
        m.register_forward_hook(lambda _, args, out: dtypes.add(out.dtype))
        for head in heads
        for m in head.modules()
        if m is not head
    ]
    with torch.no_grad():
        with model._precision():
            distribution, values, features = model.forward_policy(obs)
        for handle in handles:
            handle.remove()
        assert features.dtype == values.dtype == torch.float32
        assert torch.bfloat16 not in dtypes
        # a second way: the heads on the same features, outside any autocast, bitwise the same
        assert torch.equal(values, policy.value_net(features))
        logits = policy.action_net(features)
        assert torch.equal(distribution.distribution.logits, logits - logits.logsumexp(-1, keepdim=True))
        # and inside an outer bf16 autocast region the heads still compute in fp32
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(policy.action_net(features), logits)


def test_sgqn_has_no_head_to_make_hyperbolic() -> None:
    for key, value in (("representation", "poincare"), ("curvature", 1.0), ("s_rym", True)):
        with pytest.raises(TypeError, match=f"agent 'sgqn' has no policy and value heads .*{key}.*ppo, rad"):
            check_agent_kwargs(AGENTS.get("sgqn"), "sgqn", {key: value})


def test_a_hyperbolic_head_on_a_continuous_action_space_is_refused() -> None:
    from stable_baselines3.common.env_util import make_vec_env

    with pytest.raises(ValueError, match="needs a Discrete action space .* valid for it: euclidean"):
        AGENTS.get("ppo")(
            "MlpPolicy", make_vec_env("Pendulum-v1", n_envs=1), representation="poincare", device="cpu"
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["representation=poincare", "s_rym=true", "curvature=0.7"],
        ["representation=hyperboloid", "feature_reg=true", "hl_gauss=true"],
    ],
)
def test_a_hyperbolic_run_killed_during_an_update_resumes_exactly(tmp_path, args) -> None:
    """Checkpoints hold the new parameters (points, normals, offsets, the feature scale) and S-RYM's
    power-iteration vectors: a killed and resumed run ends bit for bit where the uninterrupted one does."""
    from tests.protocol.test_resume import ARGS, _assert_same_run, _heldout, _run_dir, _weights

    geometry = [item for arg in args for item in ("--agent-arg", arg)]
    reference = _heldout([*ARGS, *geometry, "--out", str(tmp_path / "ref")], tmp_path)
    assert reference.returncode == 0, reference.stderr
    killed = _heldout([*ARGS, *geometry, "--out", str(tmp_path / "runs")], tmp_path, kill="update:6")
    assert killed.returncode == -9, killed.stderr
    run = _run_dir(tmp_path / "runs")
    resumed = _heldout(["train", "--resume", str(run), "--no-progress"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "not exactly" not in resumed.stderr
    _assert_same_run(run, _run_dir(tmp_path / "ref"))
    keys = set(_weights(run))
    assert {"action_net.normals", "value_net.normals"} <= keys or "value_net.head.normals" in keys
    if "s_rym=true" in args:
        assert any(key.endswith("parametrizations.weight.0._u") for key in keys)


def test_the_presets_hold_the_papers_hyperparameters() -> None:
    """ALGORITHMS-hyperbolic.md H4: 64 envs x 256 steps, 8 minibatches of 2048, lr 5e-4, gamma 0.999,
    lambda 0.95, clip 0.2, entropy 0.01, vf 0.5, grad clip 0.5, easy / 200 levels / 25M steps; 3 epochs
    and value clip 0.2 for Cetin et al., 2 epochs and no value clip for Hyper++; c = 1, 32-d."""
    from heldout.protocol.presets import PRESETS
    from heldout.protocol.validate import agent_defaults

    expected_common = {
        "n_steps": 256,
        "batch_size": 2048,
        "learning_rate": 5e-4,
        "gamma": 0.999,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "curvature": 1.0,
    }
    for name, own in (
        (
            "hyperbolic-procgen-easy",
            {"representation": "poincare", "s_rym": True, "n_epochs": 3, "clip_range_vf": 0.2},
        ),
        (
            "hyperpp-procgen-easy",
            {
                "representation": "hyperboloid",
                "feature_reg": True,
                "hl_gauss": True,
                "n_epochs": 2,
                "clip_range_vf": None,
            },
        ),
    ):
        config = PRESETS.get(name)
        assert (config.num_envs, config.num_levels, config.distribution_mode, config.timesteps) == (
            64,
            200,
            "easy",
            25_000_000,
        )
        effective = {**agent_defaults(AGENTS.get(config.agent)), **config.agent_kwargs}
        for key, value in {**expected_common, **own}.items():
            assert effective[key] == value, (name, key)


@pytest.mark.parametrize("geometry", sorted(GEOMETRIES))
def test_a_checkpoint_holds_every_new_parameter_and_buffer(tmp_path, monkeypatch, geometry: str) -> None:
    """Saved after an update and restored into a model built afresh (another seed): the same state
    dict (points, normals, offsets, feature scale, spectral norm's power-iteration vectors), the same
    optimiser state, and the same outputs of a training-mode forward pass (which runs a power iteration)."""
    from heldout.protocol.checkpoint import restore_checkpoint, save_checkpoint

    monkeypatch.setenv("HELDOUT_SIGNING_KEY", str(tmp_path / "signing.key"))
    model = small_agent(AGENTS.get("ppo"), **GEOMETRIES[geometry])
    model.learn(16)
    path = save_checkpoint(model, tmp_path / "run")
    fresh = small_agent(AGENTS.get("ppo"), **{**GEOMETRIES[geometry], "seed": 1})
    assert not all(
        torch.equal(a, b)
        for a, b in zip(model.policy.state_dict().values(), fresh.policy.state_dict().values())
    )
    restore_checkpoint(fresh, path, trust_pickle=True, logger=False)
    saved, restored = model.policy.state_dict(), fresh.policy.state_dict()
    assert saved.keys() == restored.keys()
    assert all(torch.equal(saved[k], restored[k]) for k in saved)
    if GEOMETRIES[geometry].get("s_rym"):
        assert any(k.endswith("parametrizations.weight.0._u") for k in saved)
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (4, 3, 64, 64), dtype=np.uint8))
    model.policy.set_training_mode(True)
    fresh.policy.set_training_mode(True)
    with torch.no_grad():
        a, b = model.forward_policy(obs), fresh.forward_policy(obs)
    assert torch.equal(a[1], b[1]) and torch.equal(a[0].distribution.logits, b[0].distribution.logits)
    opt_a, opt_b = model.policy.optimizer.state_dict(), fresh.policy.optimizer.state_dict()
    assert all(
        torch.equal(opt_a["state"][i]["exp_avg"], opt_b["state"][i]["exp_avg"]) for i in opt_a["state"]
    )
