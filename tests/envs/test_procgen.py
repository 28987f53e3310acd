"""The Procgen envs: levels per slot, level bookkeeping, the SB3 VecEnv contract, gymnasium ids.

A level's first frame depends only on its seed (and the visual settings), so
:func:`first_observations` is the independent reference against which the envs' level bookkeeping is
checked throughout.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
from gymnasium import spaces

import heldout  # noqa: F401  (registers the gymnasium ids)
from heldout.envs import (
    DISTRIBUTION_MODES,
    ENVS,
    PROCGEN_GAMES,
    VISUAL_OPTIONS,
    ProcgenVecEnv,
    SequentialLevelSampler,
    make_vec,
)
from heldout.envs.procgen import _LevelStates, first_observations, level_fingerprints

#: A game whose random-action episodes are short (tens of steps), so episode ends come quickly.
SHORT_GAME = "bossfight"


def _first(game: str, level: int, **options: bool) -> np.ndarray:
    return first_observations(game, [level], **options)[0]


def _rollout(env: ProcgenVecEnv, steps: int, seed: int = 0):
    """Random actions for ``steps`` steps; yields (levels before the step, obs, rew, done, infos)."""
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        before = env.current_levels
        obs, rew, done, infos = env.step(rng.integers(0, 15, size=env.num_envs))
        yield before, obs, rew, done, infos


@pytest.fixture(scope="module")
def sb3_vec_env_class() -> type:
    """SB3's VecEnv, with ProcgenVecEnv registered as its virtual subclass."""
    from stable_baselines3.common.vec_env import VecEnv

    try:
        import heldout.agents  # noqa: F401  (registers ProcgenVecEnv with VecEnv)
    except Exception:  # agents may be mid-rewrite; the registration itself is what is tested
        VecEnv.register(ProcgenVecEnv)
    return VecEnv


# -- first observations and fingerprints ----------------------------------------------------------


def test_same_level_gives_the_same_first_observation():
    a = first_observations("coinrun", [0, 7, 123456])
    b = first_observations("coinrun", [123456, 0, 7])
    assert a.shape == (3, 64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a[0], b[1])
    np.testing.assert_array_equal(a[1], b[2])
    np.testing.assert_array_equal(a[2], b[0])
    assert level_fingerprints("coinrun", [0, 7]) == level_fingerprints("coinrun", [0, 7])


@pytest.mark.parametrize("game", ["coinrun", "maze", "bigfish", "starpilot"])
def test_different_levels_give_different_first_frames(game):
    levels = [0, 1, 2, 3, 4]
    fingerprints = level_fingerprints(game, levels)
    assert len(set(fingerprints)) == len(levels)  # these five seeds were checked to differ
    frames = first_observations(game, levels)
    for i in range(len(levels)):
        for j in range(i + 1, len(levels)):
            assert not np.array_equal(frames[i], frames[j]), (levels[i], levels[j])


def test_known_leak_maze_seeds_0_and_273_are_the_same_level():
    """Procgen generates the same maze from seeds 0 and 273 (easy mode): a split with 0 in train and
    273 in test leaks. Found by scanning maze seeds 0..299 with level_fingerprints (also 46/56,
    70/157, 72/217, 126/185, 154/187)."""
    fp = level_fingerprints("maze", [0, 273])
    assert fp[0] == fp[1]
    # Not just the first frame: the same actions play out identically in both levels.
    env = ProcgenVecEnv("maze", num_envs=2, level_sampler=SequentialLevelSampler([0, 273]), seed=0)
    obs = env.reset()
    assert env.current_levels.tolist() == [0, 273]
    np.testing.assert_array_equal(obs[0], obs[1])
    rng = np.random.default_rng(0)
    for _ in range(500):
        action = rng.integers(0, 15)
        obs, rew, done, infos = env.step(np.array([action, action]))
        assert rew[0] == rew[1] and done[0] == done[1]
        if done[0]:
            assert infos[0]["episode"]["l"] == infos[1]["episode"]["l"]
            assert infos[0]["level_seed"] == 0 and infos[1]["level_seed"] == 273
            break
        np.testing.assert_array_equal(obs[0], obs[1])
    else:
        pytest.fail("the maze episodes did not end within 500 steps")
    env.close()


@pytest.mark.parametrize(("a", "b"), [(29, 197), (46, 211)])
def test_known_first_frame_collision_in_coinrun_is_not_the_same_level(a, b):
    """coinrun seeds 29/197 and 46/211 (also 145/274, 181/222) share their first frame under the
    default agent-centred view, but the levels differ: the whole-level view (center_agent=False),
    which level_fingerprints uses by default, tells them apart, so they are not flagged as leaks."""
    centred = first_observations("coinrun", [a, b])
    np.testing.assert_array_equal(centred[0], centred[1])
    whole = level_fingerprints("coinrun", [a, b])
    assert whole[0] != whole[1]
    forced = level_fingerprints("coinrun", [a, b], center_agent=True)
    assert forced[0] == forced[1]


# -- level per slot ---------------------------------------------------------------------------------


def test_vec_env_slots_start_on_the_levels_they_report():
    env = ProcgenVecEnv("coinrun", num_envs=6, levels=range(0, 50), seed=3)
    obs = env.reset()
    levels = env.current_levels
    assert all(0 <= lv < 50 for lv in levels)
    np.testing.assert_array_equal(obs, first_observations("coinrun", levels.tolist()))
    assert [info["level_seed"] for info in env.reset_infos] == levels.tolist()
    env.close()


def test_set_level_plays_that_level_in_that_slot_only():
    env = ProcgenVecEnv("coinrun", num_envs=64, levels=range(0, 200), seed=0)
    env.reset()
    *_, (_, last_obs, _, _, _) = _rollout(env, 5)
    before_obs = last_obs.copy()
    before_levels = env.current_levels
    slot, level = 17, 4321
    new = env.set_level(slot, level)
    np.testing.assert_array_equal(new, _first("coinrun", level))
    levels = env.current_levels
    assert levels[slot] == level
    others = np.arange(64) != slot
    np.testing.assert_array_equal(levels[others], before_levels[others])
    # set_level only observes: every other slot still shows exactly what it showed before
    np.testing.assert_array_equal(env.get_images()[slot], new)
    after = np.asarray(env.get_images())
    np.testing.assert_array_equal(after[others], before_obs[others])
    assert not np.array_equal(before_obs[slot], new)
    _, _, done, infos = env.step(np.zeros(64, dtype=np.int64))
    assert infos[slot]["level_seed"] == level and not done[slot]
    env.close()


def test_a_level_state_is_about_37_kb():
    states = _LevelStates("coinrun", "easy", {})
    state = states.level(4321)
    assert isinstance(state, bytes)
    assert 20_000 <= len(state) <= 80_000
    assert states.level(4321) is state  # cached


@pytest.mark.parametrize(("level", "error"), [(-1, ValueError), (2**31, ValueError), (5.5, TypeError)])
def test_set_level_rejects_bad_levels_before_procgen_sees_them(level, error):
    # A negative start_level makes procgen abort the whole process, so it must never get there.
    env = ProcgenVecEnv("coinrun", num_envs=2, seed=0)
    levels = env.current_levels
    with pytest.raises(error, match=str(level)):
        env.set_level(0, level)
    with pytest.raises(error):
        first_observations("coinrun", [level])
    np.testing.assert_array_equal(env.current_levels, levels)
    with pytest.raises(IndexError, match="slot 2"):
        env.set_level(2, 5)
    env.close()


def test_bind_slot_with_a_range_keeps_that_slot_in_the_range():
    env = ProcgenVecEnv(SHORT_GAME, num_envs=8, levels=range(0, 100), seed=1)
    env.reset()
    first = env.bind_slot(0, range(5000, 5010))
    bound = int(env.current_levels[0])
    assert 5000 <= bound < 5010
    np.testing.assert_array_equal(first, _first(SHORT_GAME, bound))
    slot0, rest = [], []
    for _, _, _, done, infos in _rollout(env, 400):
        for slot in np.flatnonzero(done):
            (slot0 if slot == 0 else rest).append(infos[slot]["level_seed"])
    assert len(slot0) >= 5
    assert all(5000 <= lv < 5010 for lv in slot0), slot0
    assert len(set(slot0)) >= 2  # the slot samples the range itself, not one level
    assert rest and all(0 <= lv < 100 for lv in rest)
    with pytest.raises(ValueError, match="contiguous range"):
        env.bind_slot(1, "3,4")
    env.close()


# -- every episode reports its level --------------------------------------------------------------


@pytest.mark.parametrize("levels", [[3, 17, 42, 1000, 77777], "100:110"])
def test_episodes_report_the_level_they_played(levels):
    env = ProcgenVecEnv(SHORT_GAME, num_envs=8, levels=levels, seed=2)
    allowed = set(env.levels)
    start_frames = env.reset().copy()
    returns = np.zeros(8)
    finished, switches = [], 0
    for before, obs, rew, done, infos in _rollout(env, 300):
        returns += rew
        assert len(infos) == 8
        for slot, info in enumerate(infos):
            assert info["level_seed"] in allowed
            if not done[slot]:
                assert info["level_seed"] == before[slot]
                continue
            level = info["level_seed"]
            assert level == before[slot]
            # the episode's first frame was this level's first frame
            np.testing.assert_array_equal(start_frames[slot], _first(SHORT_GAME, level))
            assert info["episode"]["l"] > 0
            assert info["episode"]["r"] == pytest.approx(returns[slot])
            assert isinstance(info["level_complete"], bool)
            returns[slot] = 0.0
            start_frames[slot] = obs[slot]
            finished.append(level)
            switches += int(env.current_levels[slot] != level)
        if env.levels.is_range and done.any():
            # procgen's own bookkeeping agrees (no level was set from outside the core)
            raw = env._core.info()
            for slot in np.flatnonzero(done):
                assert int(raw["prev_level_seed"][slot]) == infos[slot]["level_seed"]
        assert set(env.current_levels.tolist()) <= allowed
    assert len(finished) >= 20
    assert len(set(finished)) >= 3
    assert switches >= 5  # slots move on to other levels, they do not replay one level
    env.close()


class _RecordingSequentialSampler(SequentialLevelSampler):
    def __init__(self, levels):
        super().__init__(levels)
        self.log: list[tuple[int, int | None]] = []

    def next_level(self, slot):
        level = super().next_level(slot)
        self.log.append((slot, level))
        return level


def test_sequential_sampler_hands_out_the_list_in_order():
    order = [11, 500, 3, 42, 9000, 7, 123, 64, 2024, 31, 5, 77]
    sampler = _RecordingSequentialSampler(order)
    env = ProcgenVecEnv(SHORT_GAME, num_envs=4, level_sampler=sampler, seed=0)
    obs = env.reset()
    assert env.current_levels.tolist() == order[:4]
    np.testing.assert_array_equal(obs, first_observations(SHORT_GAME, order[:4]))

    def handouts(slot: int) -> list[int | None]:
        """Hand-out indices (None once exhausted) of the episodes given to ``slot``, in order."""
        return [i if level is not None else None for i, (s, level) in enumerate(sampler.log) if s == slot]

    finished: dict[int, int] = {}  # hand-out index -> level the finished episode reported
    played = dict.fromkeys(range(4), 0)
    for _, _, _, done, infos in _rollout(env, 2000):
        for slot in np.flatnonzero(done):
            index = handouts(slot)[played[slot]]
            played[slot] += 1
            if index is not None:
                finished[index] = infos[slot]["level_seed"]
        if len(finished) == len(order):
            break
    assert sampler.exhausted
    assert sampler.handed_out == len(order)
    assert [finished[i] for i in sorted(finished)] == order
    env.close()


# -- the single gymnasium env -------------------------------------------------------------------------


# The API checkers, determinism under a seed, levels drawn from a set and reported: every game's
# gymnasium id in tests/envs/test_registry_envs.py.


def test_single_env_reset_option_level_plays_that_level():
    env = gymnasium.make("heldout/coinrun-v0")
    for level in (77, 5, 123456):
        obs, info = env.reset(seed=0, options={"level": level})
        assert info["level_seed"] == level
        np.testing.assert_array_equal(obs, _first("coinrun", level))
        _, _, _, _, step_info = env.step(0)
        assert step_info["level_seed"] == level
    with pytest.raises(ValueError, match="bogus"):
        env.reset(options={"bogus": 1})
    with pytest.raises(ValueError, match="-4"):
        env.reset(options={"level": -4})
    env.close()


# -- the SB3 VecEnv contract ------------------------------------------------------------------------


def test_vec_env_api_shapes_and_dtypes(sb3_vec_env_class):
    env = ProcgenVecEnv("coinrun", num_envs=3, levels=range(0, 10), seed=0)
    assert isinstance(env, sb3_vec_env_class)
    assert env.num_envs == 3
    assert isinstance(env.observation_space, spaces.Box)
    assert env.observation_space.shape == (64, 64, 3) and env.observation_space.dtype == np.uint8
    assert env.action_space == spaces.Discrete(15)
    obs = env.reset()
    assert isinstance(obs, np.ndarray) and obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    assert all(env.observation_space.contains(o) for o in obs)
    env.step_async(np.array([1, 2, 3]))
    obs, rew, done, infos = env.step_wait()
    assert obs.shape == (3, 64, 64, 3) and obs.dtype == np.uint8
    assert rew.shape == (3,) and rew.dtype == np.float32
    assert done.shape == (3,) and done.dtype == np.bool_
    assert isinstance(infos, list) and len(infos) == 3 and all(isinstance(i, dict) for i in infos)
    assert env.get_attr("render_mode") == [None, None, None]
    assert env.get_attr("num_envs", indices=[0, 2]) == [3, 3]
    assert env.has_attr("level_sampler") and not env.has_attr("no_such_attribute")
    assert env.env_is_wrapped(gymnasium.Wrapper) == [False, False, False]
    assert env.env_is_wrapped(gymnasium.Wrapper, indices=1) == [False]
    assert env.render().shape == (2 * 64, 2 * 64, 3)
    env.close()


def test_sb3_wrappers_accept_the_vec_env(sb3_vec_env_class):
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize, VecTransposeImage

    def make():
        return ProcgenVecEnv(SHORT_GAME, num_envs=4, levels=range(0, 50), seed=7)

    raw = make()
    wrapped = VecMonitor(VecTransposeImage(VecNormalize(make(), norm_obs=False)))
    assert isinstance(wrapped.venv.venv.venv, sb3_vec_env_class)
    assert wrapped.observation_space.shape == (3, 64, 64)
    raw_obs = raw.reset()
    obs = wrapped.reset()
    assert obs.shape == (4, 3, 64, 64) and obs.dtype == np.uint8
    np.testing.assert_array_equal(obs, raw_obs.transpose(0, 3, 1, 2))
    assert wrapped.get_attr("render_mode") == [None] * 4
    raw_episodes, monitored = [], []
    rng = np.random.default_rng(0)
    for _ in range(200):
        actions = rng.integers(0, 15, size=4)
        raw_obs, raw_rew, raw_done, raw_infos = raw.step(actions)
        obs, rew, done, infos = wrapped.step(actions)
        np.testing.assert_array_equal(obs, raw_obs.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(done, raw_done)
        raw_episodes += [
            (i["episode"]["r"], i["episode"]["l"], i["level_seed"]) for i in raw_infos if "episode" in i
        ]
        # VecMonitor rewrites info["episode"] from the (normalised) rewards it sees; lengths must agree
        monitored += [(i["episode"]["l"], i["level_seed"]) for i in infos if "episode" in i]
    assert raw_episodes
    assert monitored == [(length, level) for _, length, level in raw_episodes]
    wrapped.close()
    raw.close()


@pytest.mark.parametrize("levels", [range(0, 100_000), [4, 8, 15, 16, 23, 42]])
def test_same_seed_same_actions_same_observations(levels):
    def run(seed: int):
        env = ProcgenVecEnv(SHORT_GAME, num_envs=4, levels=levels, seed=seed)
        frames, rewards, episode_levels = [env.reset()], [], []
        start_levels = env.current_levels
        for _, obs, rew, _, infos in _rollout(env, 150, seed=11):
            frames.append(obs.copy())
            rewards.append(rew.copy())
            episode_levels += [i["level_seed"] for i in infos if "episode" in i]
        env.close()
        return np.asarray(frames), np.asarray(rewards), episode_levels, start_levels

    a = run(5)
    b = run(5)
    c = run(6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2] and a[2]
    np.testing.assert_array_equal(a[3], b[3])
    assert not np.array_equal(a[0], c[0])  # another seed, another run


# -- every game and every registered env --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(set(PROCGEN_GAMES) | set(ENVS.names())))
def test_registered_env_smoke(name):
    n, levels = 4, range(100, 110)
    env = make_vec(name, num_envs=n, levels=levels, seed=0)
    obs = env.reset()
    assert env.num_envs == n
    assert obs.shape == (n, *env.observation_space.shape)
    assert obs.dtype == env.observation_space.dtype
    if name in PROCGEN_GAMES:
        assert obs.shape == (n, 64, 64, 3) and obs.dtype == np.uint8
    first = obs.copy()
    changed, episodes = False, []
    for step, (_, obs, rew, done, infos) in enumerate(_rollout(env, 3000)):
        assert rew.shape == (n,) and rew.dtype == np.float32
        assert done.shape == (n,)
        assert len(infos) == n
        assert all(info["level_seed"] in levels for info in infos)
        episodes += [info["level_seed"] for info in infos if "episode" in info]
        changed = changed or not np.array_equal(obs, first)
        if step >= 300 and episodes:
            break
    assert changed
    assert episodes and all(level in levels for level in episodes)
    env.close()


# -- options and bad input ------------------------------------------------------------------------


def test_use_backgrounds_false_changes_the_first_frame():
    plain = ProcgenVecEnv("coinrun", num_envs=1, levels=[3], use_backgrounds=False, seed=0).reset()[0]
    default = ProcgenVecEnv("coinrun", num_envs=1, levels=[3], seed=0).reset()[0]
    assert not np.array_equal(plain, default)
    np.testing.assert_array_equal(plain, _first("coinrun", 3, use_backgrounds=False))
    np.testing.assert_array_equal(default, _first("coinrun", 3))


@pytest.mark.parametrize("option", sorted(VISUAL_OPTIONS))
def test_every_visual_option_reaches_procgen(option):
    flipped = {option: not VISUAL_OPTIONS[option]}
    # a range, which procgen samples natively: generated assets rule out level states (see below)
    env = ProcgenVecEnv("coinrun", num_envs=2, levels="3:5", seed=0, **flipped)
    assert env.options == flipped
    obs = env.reset()
    levels = env.current_levels.tolist()
    np.testing.assert_array_equal(obs, first_observations("coinrun", levels, **flipped))
    assert not np.array_equal(obs, first_observations("coinrun", levels))
    single = gymnasium.make("heldout/coinrun-v0", **flipped)
    frame, info = single.reset(seed=0, options={"level": 3})
    np.testing.assert_array_equal(frame, _first("coinrun", 3, **flipped))
    single.close()
    env.close()


def test_generated_assets_refuse_level_states_instead_of_aborting():
    # procgen aborts the process when asked for the state of a game with generated assets
    with pytest.raises(ValueError, match="use_generated_assets"):
        ProcgenVecEnv("coinrun", num_envs=2, levels=[3, 4], use_generated_assets=True)
    env = ProcgenVecEnv("coinrun", num_envs=2, levels="3:5", use_generated_assets=True, seed=0)
    with pytest.raises(ValueError, match="use_generated_assets"):
        env.set_level(0, 7)
    with pytest.raises(ValueError, match="use_generated_assets"):
        env.bind_slot(0, "10:20")
    assert set(env.current_levels.tolist()) <= {3, 4}
    env.close()


def test_unknown_option_raises_type_error_naming_it():
    with pytest.raises(TypeError, match="'use_background'") as excinfo:
        ProcgenVecEnv("coinrun", num_envs=1, use_background=False)
    assert "use_backgrounds" in str(excinfo.value)  # the valid options are listed
    with pytest.raises(TypeError, match="'shiny'"):
        gymnasium.make("heldout/coinrun-v0", shiny=True)
    with pytest.raises(TypeError, match="'shiny'"):
        first_observations("coinrun", [0], shiny=True)


def test_unknown_game_suggests_the_closest():
    for build in (
        lambda: ProcgenVecEnv("coinrn", num_envs=1),
        lambda: first_observations("coinrn", [0]),
        lambda: heldout.envs.ProcgenEnv("coinrn"),
    ):
        with pytest.raises(KeyError) as excinfo:
            build()
        assert "did you mean 'coinrun'?" in excinfo.value.args[0]


def test_hard_mode_is_accepted_and_changes_levels():
    env = ProcgenVecEnv("coinrun", num_envs=1, levels=[0], distribution_mode="hard", seed=0)
    assert env.distribution_mode == "hard"
    hard = env.reset()[0]
    np.testing.assert_array_equal(hard, first_observations("coinrun", [0], "hard")[0])
    assert not np.array_equal(hard, _first("coinrun", 0))
    env.close()


def test_unknown_distribution_mode_names_the_valid_modes():
    with pytest.raises(ValueError, match="'medium'") as excinfo:
        ProcgenVecEnv("coinrun", num_envs=1, distribution_mode="medium")
    for mode in DISTRIBUTION_MODES:
        assert mode in str(excinfo.value)
    with pytest.raises(ValueError, match="'medium'"):
        gymnasium.make("heldout/coinrun-v0", distribution_mode="medium")


_MODE_GAMES = {
    "extreme": {"chaser", "dodgeball", "leaper", "starpilot"},
    "memory": {"caveflyer", "dodgeball", "heist", "jumper", "maze", "miner"},
}


@pytest.mark.parametrize("mode", sorted(_MODE_GAMES))
@pytest.mark.parametrize("game", PROCGEN_GAMES)
def test_game_specific_modes_are_checked_before_procgen_aborts(game, mode):
    # procgen aborts the whole process (not an exception) for an unsupported game/mode pair
    if game in _MODE_GAMES[mode]:
        env = ProcgenVecEnv(game, num_envs=1, distribution_mode=mode, seed=0)
        assert env.reset().shape == (1, 64, 64, 3)
        env.close()
    else:
        with pytest.raises(ValueError, match=f"{mode!r} is not supported by {game!r}"):
            ProcgenVecEnv(game, num_envs=1, distribution_mode=mode)


def test_exploration_mode_points_to_the_equivalent_level():
    with pytest.raises(ValueError, match=r"distribution_mode='hard', levels=\[1949448038\]"):
        ProcgenVecEnv("coinrun", num_envs=1, distribution_mode="exploration")
    with pytest.raises(ValueError, match="'bigfish' has no exploration level"):
        ProcgenVecEnv("bigfish", num_envs=1, distribution_mode="exploration")
