"""Every registered wrapper, on a single env and on a vectorized env, Procgen and contextual alike.

Parametrized over ``heldout.wrappers.WRAPPERS``: registering a wrapper puts it under these tests.
A wrapper may refuse an env it cannot apply to, but only with a TypeError at construction, and every
wrapper must apply to at least one of the test envs.
"""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest

import heldout  # noqa: F401
from heldout.envs import ProcgenVecEnv
from heldout.wrappers import WRAPPERS, SingleEnvAdapter, VecEnvAdapter, WrapperSpec

ENV_KINDS = ("procgen", "contextual")


def _spec(name: str, tmp_path) -> str:
    """The wrapper with parameters that make it do something testable (files under tmp_path)."""
    extra = {
        "episode-stats": f"path={tmp_path / 'episodes.csv'}",
        "video": f"path={tmp_path / 'video.gif'},steps=5",
        "gaussian-noise": "std=0.05",
    }.get(name)
    return f"{name}:{extra}" if extra else name


def _single(kind: str) -> gymnasium.Env:
    from heldout.envs import register_gymnasium_ids

    register_gymnasium_ids()
    if kind == "procgen":
        return gymnasium.make("heldout/coinrun-v0", levels=range(0, 5))
    return gymnasium.make("heldout/ContextualCartPole-v0")


def _vec(kind: str):
    if kind == "procgen":
        return ProcgenVecEnv("starpilot", num_envs=3, levels=range(0, 5), seed=0)
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv

    return make_vec_env("heldout/ContextualCartPole-v0", n_envs=3, seed=0, vec_env_cls=DummyVecEnv)


def _contains(space: gymnasium.Space, obs) -> bool:
    return bool(space.contains(obs))


@pytest.mark.parametrize("kind", ENV_KINDS)
@pytest.mark.parametrize("name", WRAPPERS.names())
def test_single_env_passes_the_checkers_and_keeps_its_space(name, kind, tmp_path):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    try:
        env = SingleEnvAdapter(_single(kind), _spec(name, tmp_path), seed=0)
    except TypeError as exc:
        pytest.skip(f"{name} does not apply to {kind}: {exc}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)
        sb3_check_env(env, warn=False)
    obs, _ = env.reset(seed=1)
    assert _contains(env.observation_space, obs)
    rng = np.random.default_rng(0)
    episodes = 0
    for _ in range(400 if kind == "contextual" else 150):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert _contains(env.observation_space, obs), name
        assert np.isfinite(reward)
        if terminated or truncated:
            episodes += 1
            obs, _ = env.reset(seed=int(rng.integers(1000)))
            assert _contains(env.observation_space, obs)
    env.close()
    if kind == "contextual":
        assert episodes >= 2  # the loop crossed episode boundaries


@pytest.mark.parametrize("kind", ENV_KINDS)
@pytest.mark.parametrize("name", WRAPPERS.names())
def test_vec_env_keeps_its_space_across_autoresets(name, kind, tmp_path):
    try:
        venv = VecEnvAdapter(_vec(kind), _spec(name, tmp_path), seed=0)
    except TypeError as exc:
        pytest.skip(f"{name} does not apply to {kind}: {exc}")
    obs = venv.reset()
    assert obs.shape == (venv.num_envs, *venv.observation_space.shape)
    assert all(_contains(venv.observation_space, o) for o in obs)
    dones = 0
    for _ in range(300 if kind == "procgen" else 120):
        actions = np.array([venv.action_space.sample() for _ in range(venv.num_envs)])
        obs, rewards, done, infos = venv.step(actions)
        assert obs.dtype == venv.observation_space.dtype
        assert all(_contains(venv.observation_space, o) for o in obs), name
        assert rewards.shape == (venv.num_envs,)
        for i in np.flatnonzero(done):
            dones += 1
            term = infos[i].get("terminal_observation")
            if term is not None:
                assert _contains(venv.observation_space, term), f"{name}: terminal observation"
    venv.close()
    assert dones > 0


def test_every_wrapper_applies_to_some_env(tmp_path):
    for name in WRAPPERS.names():
        applies = []
        for kind in ENV_KINDS:
            venv = _vec(kind)
            try:
                VecEnvAdapter(venv, _spec(name, tmp_path), seed=0)
                applies.append(kind)
            except TypeError:
                pass
            finally:
                venv.close()
        assert applies, f"wrapper {name!r} applies to none of {ENV_KINDS}"


def test_every_wrapper_has_a_kind_help_and_checked_parameters():
    from heldout.wrappers import KINDS
    from heldout.wrappers.base import parameters

    for name in WRAPPERS.names():
        cls = WRAPPERS.get(name)
        assert cls.kind in KINDS
        assert WRAPPERS.describe(name)
        assert cls.name == name
        with pytest.raises(ValueError, match="valid parameters"):
            WrapperSpec.parse(f"{name}:no_such_parameter=1")
        # every parameter has a default: a bare name on the command line works
        assert all(v is not __import__("inspect").Parameter.empty for v in parameters(cls).values())


# ------------------------------------------------------------------ written once, run anywhere


@pytest.mark.parametrize("spec", ["frame-stack:k=3", "gaussian-noise:std=0.0", "reward-scale:scale=2"])
def test_vec_adapter_equals_single_adapters_slot_by_slot(spec):
    """The same wrapper on a DummyVecEnv of 2 CartPoles and on 2 single CartPoles, same seeds and
    actions: identical observations and rewards, across autoresets (frame stacks refill)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from heldout.envs import register_gymnasium_ids

    register_gymnasium_ids()
    make = lambda: gymnasium.make("CartPole-v1")  # noqa: E731
    venv = VecEnvAdapter(DummyVecEnv([make, make]), spec, seed=0)
    venv.seed(7)
    singles = [SingleEnvAdapter(make(), spec, seed=0) for _ in range(2)]
    vobs = venv.reset()
    sobs = [singles[i].reset(seed=7 + i)[0] for i in range(2)]
    np.testing.assert_array_equal(vobs, np.stack(sobs))
    rng = np.random.default_rng(0)
    boundaries = 0
    for _ in range(80):
        actions = rng.integers(0, 2, size=2)
        vobs, vrew, vdone, vinfos = venv.step(actions)
        for i in range(2):
            o, r, term, trunc, _ = singles[i].step(int(actions[i]))
            assert vrew[i] == pytest.approx(r)
            if term or trunc:
                boundaries += 1
                np.testing.assert_array_equal(vinfos[i]["terminal_observation"], o)
                o, _ = singles[i].reset()  # DummyVecEnv resets without a seed: same as here
            np.testing.assert_array_equal(vobs[i], o)
    assert boundaries >= 2


# -------------------------------------------------------------------------- the catalogue


def _frames(n=4, h=8, w=8, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _run(spec, obs, new=None, seed=0, infos=None):
    from heldout.wrappers import WrapperContext

    w = WrapperSpec.parse(spec).build()
    ctx = WrapperContext(
        observation_space=gymnasium.spaces.Box(0, 255, obs.shape[1:], np.uint8),
        action_space=gymnasium.spaces.Discrete(2),
        num_envs=len(obs),
        rng=np.random.default_rng(seed),
    )
    space = w.setup(ctx)
    ids = np.arange(len(obs))
    new = np.ones(len(obs), bool) if new is None else new
    return w, space, w.observation(obs, ids, new, infos or [{}] * len(obs))


def test_grayscale_matches_pil():
    from PIL import Image

    frames = _frames()
    _, space, out = _run("grayscale", frames)
    assert out.shape == (4, 8, 8, 1) and space.shape == (8, 8, 1)
    for f, g in zip(frames, out):
        ref = np.asarray(Image.fromarray(f).convert("L"), dtype=np.int16)
        assert np.abs(ref - g[..., 0]).max() <= 1
    _, space3, out3 = _run("grayscale:channels=3", frames)
    assert space3.shape == (8, 8, 3)
    assert (out3 == out).all()


@pytest.mark.parametrize("size", [[16, 12], [4, 6], 8])
def test_resize_matches_torch_bilinear(size):
    import torch

    frames = _frames(h=8, w=8)
    _, space, out = _run(f"resize:size={size}", frames)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (4, h, w, 3) and space.shape == (h, w, 3)
    ref = (
        torch.nn.functional.interpolate(
            torch.tensor(frames, dtype=torch.float32).permute(0, 3, 1, 2),
            size=(h, w),
            mode="bilinear",
            align_corners=False,
            antialias=False,
        )
        .permute(0, 2, 3, 1)
        .numpy()
    )
    assert np.abs(out.astype(np.float32) - ref).max() <= 1.0


def test_frame_stack_rolls_and_refills_per_slot():
    frames = _frames(n=2)
    w, space, first = _run("frame-stack:k=3", frames)
    assert space.shape == (8, 8, 9)
    np.testing.assert_array_equal(first, np.concatenate([frames] * 3, axis=-1))
    nxt = _frames(n=2, seed=1)
    out = w.observation(nxt, np.arange(2), np.array([False, True]), [{}, {}])
    np.testing.assert_array_equal(out[0], np.concatenate([frames[0], frames[0], nxt[0]], axis=-1))
    np.testing.assert_array_equal(out[1], np.concatenate([nxt[1]] * 3, axis=-1))  # slot 1 restarted


def test_color_jitter_identity_per_episode_draws_and_reproducible():
    frames = _frames()
    _, _, same = _run("color-jitter:brightness=0,contrast=0,saturation=0,hue=0", frames)
    assert np.abs(same.astype(int) - frames).max() <= 1
    w, _, a = _run("color-jitter", frames, seed=3)
    _, _, b = _run("color-jitter", frames, seed=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, frames)
    # different slots draw different factors; within an episode they stay fixed
    assert len({tuple(np.round(f, 6)) for f in w.factors}) == 4
    before = w.factors.copy()
    w.observation(frames, np.arange(4), np.zeros(4, bool), [{}] * 4)
    np.testing.assert_array_equal(w.factors, before)
    w.observation(frames, np.arange(4), np.array([True, False, False, False]), [{}] * 4)
    assert not np.array_equal(w.factors[0], before[0]) and np.array_equal(w.factors[1:], before[1:])


@pytest.mark.parametrize("mode", ["color", "waves", "noise"])
def test_distracting_background(mode):
    frames = _frames()
    _, _, none = _run(f"distracting-background:mode={mode},intensity=0", frames)
    np.testing.assert_array_equal(none, frames)
    w, _, a = _run(f"distracting-background:mode={mode}", frames, seed=1)
    _, _, a2 = _run(f"distracting-background:mode={mode}", frames, seed=1)
    np.testing.assert_array_equal(a, a2)
    assert not np.array_equal(a, frames)
    b = w.observation(frames, np.arange(4), np.zeros(4, bool), [{}] * 4)
    if mode == "color":
        np.testing.assert_array_equal(a, b)  # one colour per episode
    else:
        assert not np.array_equal(a, b)  # the texture moves
    # behind: only pixels darker than the threshold change
    dark = frames.copy()
    dark[:, :4] = 0
    _, _, behind = _run(f"distracting-background:mode={mode},dark_threshold=0", dark, seed=1)
    lit = (dark > 0).any(axis=-1)
    np.testing.assert_array_equal(behind[lit], dark[lit])
    assert not np.array_equal(behind[:, :4], dark[:, :4])


def test_gaussian_noise_statistics_and_bounds():
    from heldout.wrappers import WrapperContext

    w = WrapperSpec.parse("gaussian-noise:std=0.5").build()
    space = gymnasium.spaces.Box(-1.0, 1.0, (1000,), np.float32)
    w.setup(WrapperContext(space, gymnasium.spaces.Discrete(2), 2, rng=np.random.default_rng(0)))
    obs = np.zeros((2, 1000), np.float32)
    out = w.observation(obs, np.arange(2), np.zeros(2, bool), [{}, {}])
    assert out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1
    assert abs(out.mean()) < 0.05 and 0.4 < out.std() < 0.5  # clipping at +-1 trims the 0.5 std a bit


def test_visible_context_appends_the_normalised_context_and_refuses_procgen():
    from heldout.envs import register_gymnasium_ids

    register_gymnasium_ids()
    env = SingleEnvAdapter(gymnasium.make("heldout/ContextualCartPole-v0"), "visible-context")
    obs, info = env.reset(seed=0, options={"context": {"gravity": 19.6}})
    space = env.unwrapped.context_space
    np.testing.assert_allclose(obs[4:], space.normalise(info["context"]))
    with pytest.raises(TypeError, match="contextual env"):
        VecEnvAdapter(ProcgenVecEnv("coinrun", num_envs=1, levels=[0]), "visible-context")


def test_reward_wrappers():
    from heldout.wrappers import WrapperContext

    for spec, expected in (
        ("reward-scale:scale=0.1", [-0.5, 0.0, 1.0]),
        ("reward-clip", [-1.0, 0.0, 1.0]),
        ("reward-clip:sign=true", [-1.0, 0.0, 1.0]),
        ("reward-clip:low=-2,high=5", [-2.0, 0.0, 5.0]),
    ):
        w = WrapperSpec.parse(spec).build()
        w.setup(WrapperContext(gymnasium.spaces.Box(0, 1, (1,)), gymnasium.spaces.Discrete(2), 3))
        np.testing.assert_allclose(w.reward(np.array([-5.0, 0.0, 10.0]), np.arange(3), [{}] * 3), expected)


def test_episode_stats_records_procgen_returns_and_levels(tmp_path):
    import csv

    venv = VecEnvAdapter(
        ProcgenVecEnv("starpilot", num_envs=4, levels=range(10, 14), seed=0),
        f"episode-stats:path={tmp_path / 'ep.csv'}",
    )
    venv.reset()
    seen = []
    rng = np.random.default_rng(0)
    for _ in range(400):
        _, _, dones, infos = venv.step(rng.integers(0, 15, size=4))
        seen += [
            (infos[i]["level_seed"], infos[i]["episode"]["r"], infos[i]["episode"]["l"])
            for i in np.flatnonzero(dones)
        ]
    venv.close()
    rows = list(csv.DictReader(open(tmp_path / "ep.csv")))
    assert len(rows) == len(seen) > 0
    for row, (level, ret, length) in zip(rows, seen):
        assert int(row["level"]) == level and 10 <= level < 14
        assert float(row["return"]) == pytest.approx(ret) and int(row["length"]) == length


def test_episode_stats_records_contexts(tmp_path):
    import csv

    from heldout.envs import register_gymnasium_ids

    register_gymnasium_ids()
    env = SingleEnvAdapter(
        gymnasium.make("heldout/ContextualCartPole-v0"), f"episode-stats:path={tmp_path / 'ep.csv'}"
    )
    env.reset(seed=0, options={"context": {"gravity": 12.0}})
    total, done = 0.0, False
    while not done:
        _, r, term, trunc, _ = env.step(0)
        total += r
        done = term or trunc
    env.close()
    (row,) = list(csv.DictReader(open(tmp_path / "ep.csv")))
    assert float(row["ctx_gravity"]) == 12.0 and float(row["return"]) == total


def test_video_writes_a_gif_of_the_first_slots(tmp_path):
    from PIL import Image

    venv = VecEnvAdapter(
        ProcgenVecEnv("coinrun", num_envs=3, levels=[0], seed=0),
        f"video:path={tmp_path / 'v.gif'},envs=2,steps=6,scale=1",
    )
    venv.reset()
    for _ in range(10):
        venv.step(np.zeros(3, int))
    venv.close()
    img = Image.open(tmp_path / "v.gif")
    assert img.n_frames == 6
    assert img.size == (64 * 2 + 2, 64)


def test_spec_parsing_and_errors():
    spec = WrapperSpec.parse("resize:size=[32, 48]")
    assert dict(spec.params) == {"size": [32, 48]}
    assert WrapperSpec.parse(str(spec)) == spec
    with pytest.raises(KeyError, match="did you mean 'grayscale'"):
        WrapperSpec.parse("greyscale")
    with pytest.raises(ValueError, match="did you mean 'channels'"):
        WrapperSpec.parse("grayscale:chanels=3")
    with pytest.raises(ValueError, match="must be 1 or 3"):
        WrapperSpec.parse("grayscale:channels=2").build()
    with pytest.raises(ValueError, match="valid modes: color, waves, noise"):
        WrapperSpec.parse("distracting-background:mode=video").build()


class _FrameVec:
    """A stand-in VecEnv of random 64x64 RGB frames, with some slots finishing at every step."""

    def __init__(self, num_envs: int, seed: int = 0) -> None:
        self.num_envs = num_envs
        self.observation_space = gymnasium.spaces.Box(0, 255, (64, 64, 3), np.uint8)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.rng = np.random.default_rng(seed)
        self.last = None

    def _frames(self):
        self.last = self.rng.integers(0, 256, (self.num_envs, 64, 64, 3), dtype=np.uint8)
        return self.last

    def reset(self):
        return self._frames()

    def step_async(self, actions):
        pass

    def step_wait(self):
        dones = self.rng.random(self.num_envs) < 0.1
        return self._frames(), np.zeros(self.num_envs, np.float32), dones, [{} for _ in range(self.num_envs)]

    def close(self):
        pass


@pytest.mark.parametrize("spec", ["grayscale", "resize:size=[40, 50]", "frame-stack:k=3"])
def test_chunked_batches_equal_one_call_on_the_whole_batch(spec):
    """VecEnvAdapter feeds a big batch to the wrapper in cache-sized chunks of rows: the result must
    equal one call on the whole batch (a fresh wrapper, same frames, same episode starts)."""
    from heldout.wrappers import WrapperContext
    from heldout.wrappers.base import CHUNK_BYTES

    n = 48
    assert CHUNK_BYTES // (4 * 64 * 64 * 3) < n  # the adapter really splits this batch
    inner = _FrameVec(n)
    venv = VecEnvAdapter(inner, spec, seed=0)
    ref = WrapperSpec.parse(spec).build()
    ref.setup(WrapperContext(inner.observation_space, inner.action_space, n, rng=np.random.default_rng(0)))
    ids = np.arange(n)
    np.testing.assert_array_equal(venv.reset(), ref.observation(inner.last, ids, np.ones(n, bool), [{}] * n))
    for _ in range(5):
        out, _, dones, _ = venv.step(np.zeros(n, int))
        np.testing.assert_array_equal(out, ref.observation(inner.last, ids, dones, [{}] * n))
