"""``engine="heldout"`` (heldout.agents.rollout) is the same algorithm as ``engine="sb3"``.

From the same weights, env seeds and RNG state:

* the device storage + GAE give SB3's advantages and returns (bitwise on CPU; asserted within the
  issue's fp32 bound, 1e-6 relative, and bitwise), episode ends and truncations included, and the
  same minibatches in the same order;
* one rollout collected by each engine fills the buffers identically (observations, actions,
  values, log-probs, bootstrapped rewards, episode starts) and leaves the model in the same state
  (``_last_obs``, ``_last_episode_starts``, ``ep_info_buffer``, ``num_timesteps``);
* a full ``learn`` of a few updates gives bitwise the same weights for PPO and each agent whose loss
  or rollout differs (DrAC, RAD, UCB-DrAC, SG-PPO, SGFD, and PPO with a PLR level sampler);
* two runs of the new engine on CPU are bitwise identical;
* bf16 (``precision="bf16"``: the trunk under autocast when acting and in the update; heads, values,
  GAE and losses fp32): the first rollout takes the fp32 rollout's actions, its log-probs are within
  1e-4 of the fp32 ones (measured 6.9e-6), its values and advantages within 5e-3 (measured 7.0e-4 and
  7.6e-4, on values up to 0.06 and advantages up to 2.8), the engines agree bitwise with each other
  under bf16 too, and one update (one Adam step over the whole rollout) moves the weights in the
  fp32 direction (cosine of the two weight changes above 0.98; measured 0.990) by a change within
  25% of the fp32 change's norm (measured 14%: Adam's first step is nearly sign(g) per weight, so
  the weights whose gradient is near zero may move either way in either precision).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import DummyVecEnv

from heldout.agents import AGENTS
from heldout.agents.level_buffer import DeviceLevelRolloutBuffer, LevelRolloutBuffer
from heldout.agents.ppo import ENGINES, PPO
from heldout.agents.rollout import DeviceRolloutBuffer, device_buffer_class
from tests.agents.tiny_env import TinyImageEnv

#: A small IMPALA trunk so each learn() stays well under a second.
SMALL_CNN = {"features_extractor_kwargs": {"features_dim": 16, "depths": (4, 4, 4)}}


class StepImageEnv(TinyImageEnv):
    """The tiny image env (64x64x3 uint8 frames, 15 actions), ending and rewarding differently:
    terminates when an action is a multiple of 4 after step 2, reward ``action / 15`` (so episodes
    end both by termination and by the time limit)."""

    def step(self, action):
        self._t += 1
        terminated = self._t > 2 and int(action) % 4 == 0
        return self._obs(), float(action) / 15.0, terminated, False, {"level_seed": 3 + self._t % 2}


class StepVectorEnv(gym.Env):
    """4 float observations, 2-d actions in [-1, 1]: a Gaussian policy's actions are clipped;
    terminates when the first observation exceeds 0.8."""

    observation_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._obs(), {}

    def step(self, action):
        obs = self._obs()
        return obs, float(-np.square(action).sum()), bool(obs[0] > 0.8), False, {}

    def _obs(self):
        return self.np_random.uniform(-1, 1, 4).astype(np.float32)


def image_venv(n: int = 3, limit: int = 5) -> DummyVecEnv:
    return DummyVecEnv([lambda: TimeLimit(StepImageEnv(), max_episode_steps=limit)] * n)


def vector_venv(n: int = 3, limit: int = 4) -> DummyVecEnv:
    return DummyVecEnv([lambda: TimeLimit(StepVectorEnv(), max_episode_steps=limit)] * n)


def make(cls: type, engine: str, env: str = "image", **kwargs):
    """An agent on 3 envs with truncation at 5 (image) or 4 (vector) steps, 8 steps per rollout."""
    settings = {"n_steps": 8, "batch_size": 6, "n_epochs": 2, "seed": 0, "device": "cpu", **kwargs}
    if env == "image":
        settings.setdefault("policy_kwargs", SMALL_CNN)
        return cls("CnnPolicy", image_venv(), engine=engine, **settings)
    return cls("MlpPolicy", vector_venv(), engine=engine, **settings)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.policy.state_dict().items()}


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key}: max diff {(a[key] - b[key]).abs().max().item()}"


def assert_close_rel(actual: np.ndarray, expected: np.ndarray, rel: float = 1e-6) -> None:
    """The issue's fp32 bound: |a - e| <= rel * max(|e|, 1e-12)."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = np.maximum(np.abs(expected), 1e-12)
    worst = float(np.max(np.abs(actual - expected) / scale))
    assert worst <= rel, f"relative error {worst:.3g} > {rel:g}"


def test_engine_auto_is_the_device_engine_on_cuda_and_sb3_on_cpu(monkeypatch) -> None:
    """``engine="auto"`` (the default) resolves by the model's device: on CPU SB3's path, so a CPU
    run is what it was; on CUDA the device engine (its storage, GAE and minibatches on the GPU)."""
    import torch

    from heldout.agents.ppo import default_engine

    model = make(PPO, "auto")
    assert model.engine == "sb3" and type(model.rollout_buffer) is RolloutBuffer
    assert PPO("CnnPolicy", image_venv(), n_steps=8, batch_size=8, device="cpu").engine == "sb3"
    assert default_engine("cpu") == "sb3"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # SB3's get_device then keeps cuda
    assert default_engine("cuda") == "heldout" and default_engine("auto") == "heldout"
    assert default_engine("cpu") == "sb3"


# ------------------------------------------------------------------------------------------------
# Storage, GAE and minibatches
# ------------------------------------------------------------------------------------------------


def _fill_both(steps: int = 7, envs: int = 5, seed: int = 0):
    rng = np.random.default_rng(seed)
    obs_space = spaces.Box(0, 255, (3, 4, 4), np.uint8)
    act_space = spaces.Discrete(6)
    args = (steps, obs_space, act_space)
    kw = {"device": "cpu", "gae_lambda": 0.95, "gamma": 0.999, "n_envs": envs}
    sb3, ours = RolloutBuffer(*args, **kw), DeviceRolloutBuffer(*args, **kw)
    for step in range(steps):
        obs = rng.integers(0, 256, (envs, 3, 4, 4), dtype=np.uint8)
        action = rng.integers(0, 6, (envs, 1))
        reward = rng.normal(size=envs).astype(np.float32) * 10
        starts = (rng.random(envs) < 0.3) | (step == 0)
        value = torch.as_tensor(rng.normal(size=(envs, 1)).astype(np.float32))
        log_prob = torch.as_tensor(-rng.random(envs).astype(np.float32))
        sb3.add(obs, action, reward, starts, value, log_prob)
        ours.add(torch.as_tensor(obs), torch.as_tensor(action), reward, starts, value, log_prob)
    last_values = torch.as_tensor(rng.normal(size=(envs, 1)).astype(np.float32))
    dones = rng.random(envs) < 0.5
    sb3.compute_returns_and_advantage(last_values, dones)
    ours.compute_returns_and_advantage(last_values, dones)
    return sb3, ours


def test_device_gae_gives_sb3s_advantages_and_returns_bitwise() -> None:
    sb3, ours = _fill_both()
    assert sb3.episode_starts[1:].any() and not sb3.episode_starts[1:].all()  # episode ends inside
    for name in ("advantages", "returns", "values", "log_probs", "rewards", "episode_starts", "actions"):
        expected, actual = getattr(sb3, name), getattr(ours, name)
        assert actual.shape == expected.shape, name
        assert_close_rel(actual, expected)
        assert np.array_equal(actual, expected), name
    assert np.array_equal(ours.observations, sb3.observations)


def test_device_gae_is_not_a_copy_of_the_input() -> None:
    # The comparison above can fail: a different lambda changes the advantages.
    sb3, ours = _fill_both()
    ours.gae_lambda = 0.9
    ours.compute_returns_and_advantage(torch.zeros(5), np.zeros(5, dtype=bool))
    assert not np.allclose(ours.advantages, sb3.advantages)


def test_minibatches_are_sb3s_in_the_same_order() -> None:
    sb3, ours = _fill_both()
    state = np.random.get_state()
    try:
        np.random.seed(123)
        expected = [list(sb3.get(8)) for _ in range(2)]  # two epochs: two permutations
        np.random.seed(123)
        actual = [list(ours.get(8)) for _ in range(2)]
    finally:
        np.random.set_state(state)
    assert [len(e) for e in expected] == [len(a) for a in actual] == [5, 5]
    for epoch_e, epoch_a in zip(expected, actual):
        for batch_e, batch_a in zip(epoch_e, epoch_a):
            for field in batch_e._fields:
                e, a = getattr(batch_e, field), getattr(batch_a, field)
                assert e.dtype == a.dtype and torch.equal(e, a), field
    # after get(), the flattened numpy views are SB3's too (explained_variance reads them)
    for name in ("values", "returns", "advantages", "observations", "actions"):
        assert np.array_equal(getattr(ours, name), getattr(sb3, name)), name
    assert ours.rewards.shape == sb3.rewards.shape == (7, 5)  # SB3 leaves rewards (T, E)
    # assigning flat observations after get() writes them where the minibatches read them
    shifted = ((sb3.observations.astype(np.int64) + 1) % 256).astype(np.uint8)
    ours.observations = shifted
    state = np.random.get_state()
    try:
        np.random.seed(7)
        order = np.random.permutation(35)
        np.random.seed(7)
        gathered = torch.cat([batch.observations for batch in ours.get(8)])
    finally:
        np.random.set_state(state)
    assert np.array_equal(gathered.numpy(), shifted[order])


def test_numpy_views_are_read_only_snapshots_and_assignment_writes_back() -> None:
    _, ours = _fill_both()
    with pytest.raises(ValueError, match="read-only"):
        ours.advantages[:] = 0
    ours.advantages = np.ones((7, 5))
    assert np.array_equal(ours.device_tensor("advantages").numpy(), np.ones((7, 5), dtype=np.float32))
    assert np.array_equal(ours.advantages, np.ones((7, 5)))


def test_buffer_classes_and_bad_ones() -> None:
    assert device_buffer_class(None) is DeviceRolloutBuffer
    assert device_buffer_class(RolloutBuffer) is DeviceRolloutBuffer
    assert device_buffer_class(LevelRolloutBuffer) is DeviceLevelRolloutBuffer
    assert device_buffer_class(DeviceLevelRolloutBuffer) is DeviceLevelRolloutBuffer

    class Custom(RolloutBuffer):
        pass

    with pytest.raises(ValueError, match="Custom.*engine='sb3'"):
        device_buffer_class(Custom)
    with pytest.raises(ValueError, match="Dict observation space"):
        DeviceRolloutBuffer(4, spaces.Dict({"a": spaces.Discrete(2)}), spaces.Discrete(2), "cpu")


def test_engine_is_validated_and_survives_save_and_load(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown engine 'fast'; valid: auto, heldout, sb3"):
        make(PPO, "fast")
    assert ENGINES == ("auto", "heldout", "sb3")
    model = make(PPO, "heldout")
    assert isinstance(model.rollout_buffer, DeviceRolloutBuffer)
    assert type(make(PPO, "sb3").rollout_buffer) is RolloutBuffer
    model.save(tmp_path / "m.zip")
    loaded = PPO.load(tmp_path / "m.zip", env=image_venv(), device="cpu")
    assert loaded.engine == "heldout" and isinstance(loaded.rollout_buffer, DeviceRolloutBuffer)
    loaded.learn(24)


# ------------------------------------------------------------------------------------------------
# Collection
# ------------------------------------------------------------------------------------------------


class _Snapshot(BaseCallback):
    """Keeps, at the end of each rollout, the buffer's arrays and the model's collection state; and
    the ``TimeLimit.truncated`` flags seen, so the test knows truncations happened."""

    def __init__(self) -> None:
        super().__init__()
        self.rollouts: list[dict] = []
        self.truncations = 0
        self.terminations = 0

    def _on_step(self) -> bool:
        for done, info in zip(self.locals["dones"], self.locals["infos"]):
            if done:
                truncated = info.get("TimeLimit.truncated", False)
                self.truncations += int(truncated)
                self.terminations += int(not truncated)
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        names = ("observations", "actions", "values", "log_probs", "rewards", "episode_starts")
        snap = {name: np.array(getattr(buffer, name)) for name in (*names, "advantages", "returns")}
        snap["last_obs"] = np.array(self.model._last_obs)
        snap["last_starts"] = np.array(self.model._last_episode_starts)
        snap["episodes"] = [dict(e) for e in self.model.ep_info_buffer]
        snap["num_timesteps"] = self.model.num_timesteps
        self.rollouts.append(snap)


@pytest.mark.parametrize("env", ["image", "vector"])
def test_each_engine_collects_the_same_rollouts_with_truncations(env: str) -> None:
    runs = {}
    for engine in ENGINES:
        model = make(PPO, engine, env=env)
        snapshot = _Snapshot()
        model.learn(48, callback=snapshot)  # two rollouts of 3 envs x 8 steps
        runs[engine] = (snapshot, weights(model))
    ours, sb3 = runs["heldout"][0], runs["sb3"][0]
    assert sb3.truncations > 0 and sb3.terminations > 0
    assert (ours.truncations, ours.terminations) == (sb3.truncations, sb3.terminations)
    assert len(ours.rollouts) == len(sb3.rollouts) == 2
    for mine, theirs in zip(ours.rollouts, sb3.rollouts):
        assert mine.keys() == theirs.keys()
        for key in mine:
            if key in ("episodes", "num_timesteps"):
                assert mine[key] == theirs[key]
                continue
            assert mine[key].shape == theirs[key].shape, key
            if mine[key].dtype.kind == "f":
                assert_close_rel(mine[key], theirs[key])
            assert np.array_equal(mine[key], theirs[key]), key
    assert_same_weights(runs["heldout"][1], runs["sb3"][1])


def test_a_truncation_bootstrap_is_in_the_rewards() -> None:
    # The comparison above would also pass if neither engine bootstrapped: check that ours does.
    model = make(PPO, "heldout", gamma=0.5)
    snapshot = _Snapshot()
    model.learn(24, callback=snapshot)
    rewards = snapshot.rollouts[0]["rewards"]
    # raw rewards are multiples of 1/15; a bootstrapped one (r + 0.5 V) almost surely is not
    off_grid = np.abs(rewards * 15 - np.round(rewards * 15)) > 1e-4
    assert snapshot.truncations > 0 and off_grid.sum() == snapshot.truncations


# ------------------------------------------------------------------------------------------------
# Whole runs, every agent whose loss or rollout differs
# ------------------------------------------------------------------------------------------------

AGENT_CASES = [
    ("ppo", {}),
    ("drac", {}),
    ("rad", {"augmentation": "translate"}),
    ("ucb-drac", {}),
    ("sg-ppo", {}),
    ("sgfd", {"num_classes": 4}),
]


@pytest.mark.parametrize(("name", "kwargs"), AGENT_CASES, ids=[c[0] for c in AGENT_CASES])
def test_learn_gives_the_same_weights_on_both_engines(name: str, kwargs: dict) -> None:
    cls = AGENTS.get(name)
    results = {}
    for engine in ENGINES:
        model = make(cls, engine, **kwargs)
        model.learn(72)  # three updates of 2 epochs x 4 minibatches
        results[engine] = (weights(model), dict(model.logger.name_to_value))
    assert_same_weights(results["heldout"][0], results["sb3"][0])
    ours, sb3 = results["heldout"][1], results["sb3"][1]
    assert ours.keys() == sb3.keys()
    for key in ("train/loss", "train/value_loss", "train/explained_variance"):
        assert ours[key] == sb3[key], key


class InvertingPPO(PPO):
    """Overrides only the numpy hook ``augment_rollout``: the engine must reach it via its default
    ``augment_rollout_tensor`` (also for the terminal observation of a truncated episode)."""

    def augment_rollout(self, obs: np.ndarray, env_index: int | None = None) -> np.ndarray:
        self.calls = getattr(self, "calls", 0) + 1
        shift = 0 if env_index is None else 7 * (env_index + 1)  # a per-env twist for single frames
        return ((255 - np.asarray(obs).astype(np.int64) + shift) % 256).astype(np.uint8)


def test_an_agent_with_only_the_numpy_augment_rollout_gets_the_same_weights() -> None:
    results = {}
    for engine in ENGINES:
        model = make(InvertingPPO, engine)
        model.learn(48)
        results[engine] = weights(model)
        assert model.calls > 0
    assert_same_weights(results["heldout"], results["sb3"])
    plain = make(PPO, "heldout")
    plain.learn(48)
    assert not all(torch.equal(plain_w, results["heldout"][k]) for k, plain_w in weights(plain).items())


def test_the_runs_compared_above_do_train() -> None:
    # Equal weights would be vacuous if learn() changed nothing.
    model = make(PPO, "heldout")
    before = weights(model)
    model.learn(24)
    after = weights(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _plr_run(engine: str, sampler_name: str):
    from heldout.agents.level_replay import scoring_sampler
    from heldout.protocol.config import TrainConfig
    from heldout.protocol.families import family_for

    # DoorKey-5x5 truncates episodes at 250 steps: 2 slots x 3 rollouts of 128 steps end episodes
    config = TrainConfig(
        env="minigrid-doorkey-5x5", num_envs=2, num_levels=12, reward_norm=False, level_sampler=sampler_name
    )
    family = family_for(config.env)
    venv = family.make_train_env(config, family.split(config))
    kwargs = family.agent_kwargs(config)
    kwargs.update(n_steps=128, batch_size=64, n_epochs=1)
    model = PPO(env=venv, seed=0, device="cpu", engine=engine, **kwargs)
    sampler = scoring_sampler(venv)
    if sampler_name == "robust-plr":  # half the levels in the buffer: replay and masked new-level episodes
        sampler.seen[:6], sampler.scores[:6] = True, np.linspace(0.1, 0.6, 6)
    model.learn(3 * 2 * 128)
    state = (sampler.scores.copy(), sampler.seen.copy(), list(sampler.slot_levels), model._n_updates)
    venv.close()
    return weights(model), state


@pytest.mark.parametrize("sampler_name", ["plr", "robust-plr"])
def test_a_level_sampler_run_is_the_same_on_both_engines(sampler_name: str) -> None:
    (w_ours, s_ours), (w_sb3, s_sb3) = _plr_run("heldout", sampler_name), _plr_run("sb3", sampler_name)
    assert_same_weights(w_ours, w_sb3)
    assert np.array_equal(s_ours[0], s_sb3[0]) and np.array_equal(s_ours[1], s_sb3[1])
    assert s_ours[2:] == s_sb3[2:]
    assert s_ours[1].sum() > 2  # the sampler scored levels beyond the first two


def test_two_runs_of_the_engine_on_procgen_are_bitwise_identical() -> None:
    from heldout.envs import ProcgenVecEnv

    def run(seed: int) -> dict[str, torch.Tensor]:
        env = ProcgenVecEnv("starpilot", num_envs=4, levels=range(0, 20), seed=seed)
        model = PPO(env=env, n_steps=16, batch_size=32, n_epochs=1, seed=seed, device="cpu", engine="heldout")
        model.learn(128)
        env.close()
        return weights(model)

    a, b, c = run(7), run(7), run(8)
    assert_same_weights(a, b)
    assert not all(torch.equal(a[k], c[k]) for k in a)


# ------------------------------------------------------------------------------------------------
# Parity: callbacks' locals, augmentations drawing per call, VecNormalize
# ------------------------------------------------------------------------------------------------


class DrawingPPO(PPO):
    """An ``augment_rollout`` that draws new noise at every call (whole batches and single terminal
    observations alike): both engines must call it the same times, in the same order, on the same
    observations, or their rollouts drift apart."""

    def augment_rollout(self, obs: np.ndarray, env_index: int | None = None) -> np.ndarray:
        if not hasattr(self, "noise"):
            self.noise = np.random.default_rng(11)
            self.calls: list[int | None] = []
        self.calls.append(env_index)
        shift = self.noise.integers(0, 256, np.shape(obs))
        return ((np.asarray(obs).astype(np.int64) + shift) % 256).astype(np.uint8)


def _snapshot(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list) and value and isinstance(value[0], dict):  # infos
        return [{k: _snapshot(v) for k, v in info.items()} for info in value]
    return value


class _Locals(BaseCallback):
    """Records, at every step and at each rollout's end, the names of the callback's locals and a copy
    of their values (the env, the callback and the buffer by identity only)."""

    BY_IDENTITY = ("self", "env", "callback", "rollout_buffer")

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, set[str], dict]] = []

    def _record(self, event: str) -> None:
        assert self.locals["self"] is self.model
        values = {k: _snapshot(v) for k, v in self.locals.items() if k not in self.BY_IDENTITY}
        self.seen.append((event, set(self.locals), values))

    def _on_step(self) -> bool:
        self._record("step")
        return True

    def _on_rollout_end(self) -> None:
        self._record("rollout_end")


def _assert_same(a, b, where: str) -> None:
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and np.array_equal(a, b), where
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for x, y in zip(a, b):
            _assert_same(x, y, where)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key}]")
    else:
        assert a == b, where


def _sb3_locals() -> set[str]:
    """The local names SB3 hands callbacks: its ``collect_rollouts``'s and ``learn``'s (which updates
    the callbacks' locals too), read from their code objects."""
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

    return set(OnPolicyAlgorithm.collect_rollouts.__code__.co_varnames) | set(
        OnPolicyAlgorithm.learn.__code__.co_varnames
    )


@pytest.mark.parametrize("cls", [PPO, DrawingPPO], ids=["ppo", "augment-drawing-per-call"])
def test_callbacks_see_sb3s_locals_on_both_engines(cls: type) -> None:
    """The same ``locals`` (names and values, ``self`` the model) at every step and at each rollout's
    end, truncations and terminations included; with an augmentation that draws per call, the same
    augmented ``new_obs`` and terminal observations, the same draws, rollouts and weights."""
    runs = {}
    for engine in ("heldout", "sb3"):
        model = make(cls, engine)
        recorder, snapshot = _Locals(), _Snapshot()
        model.learn(48, callback=[recorder, snapshot])  # two rollouts
        runs[engine] = (recorder.seen, snapshot, weights(model), getattr(model, "calls", None))
    ours, sb3 = runs["heldout"], runs["sb3"]
    assert sb3[1].truncations > 0 and sb3[1].terminations > 0
    assert [event for event, _, _ in ours[0]] == [event for event, _, _ in sb3[0]]
    for step, ((event, names, values), (_, sb3_names, sb3_values)) in enumerate(zip(ours[0], sb3[0])):
        assert names == sb3_names, (
            f"{event} {step}: only ours {names - sb3_names}, only SB3's {sb3_names - names}"
        )
        assert names <= _sb3_locals()
        for key in values:
            _assert_same(values[key], sb3_values[key], f"{event} {step}: {key}")
    assert "terminal_obs" in ours[0][-1][1] and "self" in ours[0][0][1]
    for mine, theirs in zip(ours[1].rollouts, sb3[1].rollouts):
        for key in ("observations", "actions", "values", "log_probs", "rewards", "advantages", "last_obs"):
            assert np.array_equal(mine[key], theirs[key]), key
    assert ours[3] == sb3[3]  # the same augmentation calls, in the same order
    assert_same_weights(ours[2], sb3[2])
    if cls is DrawingPPO:  # terminated episodes' terminal observations are augmented too
        assert sum(index is not None for index in ours[3]) == sb3[1].truncations + sb3[1].terminations


def test_a_run_with_vecnormalize_is_the_same_on_both_engines() -> None:
    """Observations and rewards normalised by SB3's ``VecNormalize`` (its terminal observations too):
    the same rollouts, weights and running statistics on both engines."""
    from stable_baselines3.common.vec_env import VecNormalize

    runs = {}
    for engine in ("heldout", "sb3"):
        env = VecNormalize(vector_venv(), norm_obs=True, norm_reward=True, clip_reward=10.0, gamma=0.99)
        model = PPO(
            "MlpPolicy", env, engine=engine, n_steps=8, batch_size=6, n_epochs=2, seed=0, device="cpu"
        )
        snapshot = _Snapshot()
        model.learn(48, callback=snapshot)
        runs[engine] = (snapshot, weights(model), env)
    (ours, w_ours, env_ours), (sb3, w_sb3, env_sb3) = runs["heldout"], runs["sb3"]
    assert sb3.truncations > 0 and sb3.terminations > 0
    for mine, theirs in zip(ours.rollouts, sb3.rollouts, strict=True):
        for key in ("observations", "actions", "values", "log_probs", "rewards", "advantages", "returns"):
            assert np.array_equal(mine[key], theirs[key]), key
    assert_same_weights(w_ours, w_sb3)
    for stat in ("mean", "var"):
        assert np.array_equal(getattr(env_ours.obs_rms, stat), getattr(env_sb3.obs_rms, stat))
        assert np.array_equal(getattr(env_ours.ret_rms, stat), getattr(env_sb3.ret_rms, stat))
    # normalisation was really on: the stored observations are not the env's raw ones in [-1, 1]
    assert np.abs(ours.rollouts[-1]["observations"]).max() > 1.0


# ------------------------------------------------------------------------------------------------
# bf16
# ------------------------------------------------------------------------------------------------


def test_bf16_bound() -> None:
    def one_update(engine: str, precision: str):
        model = make(PPO, engine, precision=precision, n_epochs=1, batch_size=24)
        start = weights(model)
        snapshot = _Snapshot()
        model.learn(24, callback=snapshot)
        return start, weights(model), snapshot.rollouts[0]

    start, w32, r32 = one_update("sb3", "fp32")
    _, w16, r16 = one_update("heldout", "bf16")
    _, w16_sb3, _ = one_update("sb3", "bf16")
    # acting in bf16 (the trunk only): the same actions, log-probs, values and advantages within bounds
    assert np.array_equal(r16["actions"], r32["actions"])
    assert not np.array_equal(r16["values"], r32["values"])  # bf16 was used when acting
    for key, bound in (("log_probs", 1e-4), ("values", 5e-3), ("advantages", 5e-3)):
        worst = np.abs(r16[key] - r32[key]).max()
        assert worst < bound, f"bf16 {key} off by {worst:.3g}"
    # the engines agree under bf16 too
    assert_same_weights(w16, w16_sb3)
    step = torch.cat([(w32[k] - start[k]).flatten() for k in start if start[k].is_floating_point()])
    gap = torch.cat([(w16[k] - w32[k]).flatten() for k in start if start[k].is_floating_point()])
    step16 = torch.cat([(w16[k] - start[k]).flatten() for k in start if start[k].is_floating_point()])
    assert gap.norm() > 0  # bf16 was really used
    cosine = torch.nn.functional.cosine_similarity(step, step16, dim=0).item()
    assert cosine > 0.98, f"bf16 update at cosine {cosine:.4f} to the fp32 one"
    assert gap.norm() < 0.25 * step.norm(), (
        f"bf16 weights off by {gap.norm() / step.norm():.1%} of the update"
    )
