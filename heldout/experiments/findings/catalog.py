"""The findings heldout can reproduce: :data:`FINDINGS`, one entry per known result (docs/findings.md).

Each CPU scale is a budget a 2-core machine runs with ``--workers 2`` in minutes to under an hour
(the MiniGrid and CartPole ones) or one to two hours (the Procgen ones, and PLR vs uniform's 540 runs);
each paper scale the published protocol (../shared/reference/BASELINES.md for the Procgen figures).
Where a paper's own protocol is not in the references, its ``protocol`` says what heldout runs
instead.
"""

from __future__ import annotations

from heldout.experiments.findings.finding import Finding, Scale
from heldout.protocol.presets import MINIGRID_PPO

#: Every CPU run: one torch thread (two runs share the 2 cores), no periodic evaluation, no
#: checkpoints mid-run (each run is minutes), no progress bar.
_CPU = {"torch_threads": 1, "eval_freq": 0, "checkpoint_freq": 0}
#: Two MiniGrid arms compared at a CPU budget: the minigrid-doorkey preset's PPO, 50 evaluation
#: episodes a split.
_MINIGRID_CPU = {"preset": "minigrid-doorkey", "eval_episodes": 50, **_CPU}
#: Two Procgen agents compared at a CPU budget: the procgen-quickstart preset's PPO on 50 levels,
#: 49k env steps (48 rollouts), bf16 update, 50 evaluation episodes a split.
_PROCGEN_CPU = {
    "preset": "procgen-quickstart",
    "num_levels": 50,
    "timesteps": 49_152,
    "agent_kwargs": {"precision": "bf16"},
    "eval_episodes": 50,
    **_CPU,
}
#: The minigrid-doorkey preset's rollout and optimiser settings (not its MLP policy).
_MINIGRID_ROLLOUT = ("n_steps", "batch_size", "n_epochs", "ent_coef", "learning_rate", "gamma", "gae_lambda")
#: PPO on MiniGrid seen as pixels: the IMPALA-CNN (the CnnPolicy default) with the minigrid-doorkey
#: preset's rollout and optimiser settings, and reward normalisation (as in the pilot run that chose
#: the budget).
_PIXEL_MINIGRID_PPO = {k: MINIGRID_PPO[k] for k in _MINIGRID_ROLLOUT}
#: The Procgen reference protocol (easy, levels [0, 200), 25M steps; BASELINES.md).
_PROCGEN_PAPER = {"preset": "procgen-easy"}
#: PPO on Procgen easy-200 at 25M (openai/train-procgen, mean of 3 runs; BASELINES.md).
_PPO_GAP_PUBLISHED = (
    "PPO, easy-200, 25M steps, mean of 3 runs (train-procgen; BASELINES.md): coinrun train 9.49 / test "
    "8.70 (gap 0.79); over 16 games normalised train 0.600 / test 0.355 (gap 0.245)"
)
#: Test returns of the published runs at 25M (easy-200, 10 runs each; BASELINES.md).
_TEST_25M = "easy-200, 25M steps, 10 runs each (BASELINES.md): normalised test IQM PPO 0.315 [0.295, 0.333]"

#: A colour shift no run trains on: brightness, contrast and saturation factors in [0.6, 1.4] and
#: the hue turned by up to half the colour wheel, drawn per episode (the color-jitter wrapper).
_COLOUR_SHIFT = "color-jitter:hue=0.5"

FINDINGS: dict[str, Finding] = {
    f.name: f
    for f in (
        Finding(
            name="gap-few-levels",
            source="Cobbe et al. 2019, 'Quantifying Generalization in RL', Fig. 2; Cobbe et al. 2020 "
            "(Procgen), train vs test on 200 levels",
            claim="An agent trained on few levels scores higher on them than on held-out levels: "
            "train > test (gap > 0).",
            direction=1,
            statistic="gap",
            key=None,
            scales={
                "cpu": Scale(
                    base={"preset": "minigrid-doorkey", **_CPU},
                    seeds=5,
                    protocol="MiniGrid DoorKey-6x6, the minigrid-doorkey preset's PPO, 5 training levels, "
                    "200k env steps, 100 evaluation episodes a split on the leak-free lists",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "coinrun"},
                    seeds=3,
                    protocol="Procgen coinrun easy, levels [0, 200), 25M env steps, 3 seeds "
                    "(train-procgen's protocol and run count)",
                    published=_PPO_GAP_PUBLISHED,
                ),
            },
        ),
        Finding(
            name="gap-vs-levels-minigrid",
            source="Cobbe et al. 2019, Fig. 2 (CoinRun: the gap shrinks as the training levels grow); "
            "Cobbe et al. 2020, Procgen, generalization vs number of training levels",
            claim="The generalization gap shrinks as the number of training levels grows: slope of the "
            "gap against log(num_levels) < 0.",
            direction=-1,
            statistic="slope",
            key="num_levels",
            scales={
                "cpu": Scale(
                    base={"preset": "minigrid-doorkey", "timesteps": 150_000, **_CPU},
                    values=(2, 5, 20, 100),
                    seeds=5,
                    protocol="MiniGrid DoorKey-6x6, the minigrid-doorkey preset's PPO, 150k env steps, "
                    "2 / 5 / 20 / 100 training levels",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "coinrun"},
                    values=(100, 200, 500, 1000, 10000),
                    seeds=3,
                    protocol="heldout's adaptation of the paper's sweep to the Procgen protocol: coinrun "
                    "easy, 25M env steps, 100 to 10,000 training levels, 3 seeds (the paper's own runs "
                    "are longer; their exact level grid is not in ../shared/reference)",
                    published=_PPO_GAP_PUBLISHED + " (the 200-level point)",
                ),
            },
        ),
        Finding(
            name="gap-vs-levels-procgen",
            source="Cobbe et al. 2020, Procgen, generalization vs number of training levels",
            claim="On a Procgen game the gap shrinks as the number of training levels grows: slope of "
            "the gap against log(num_levels) < 0.",
            direction=-1,
            statistic="slope",
            key="num_levels",
            scales={
                "cpu": Scale(
                    base={
                        "preset": "procgen-quickstart",
                        "env": "coinrun",
                        "timesteps": 98_304,
                        "agent_kwargs": {"precision": "bf16"},
                        "eval_episodes": 50,
                        **_CPU,
                    },
                    values=(10, 50, 200),
                    seeds=3,
                    protocol="Procgen coinrun easy, the procgen-quickstart preset's PPO, 98k env steps, "
                    "10 / 50 / 200 training levels, bf16 update",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "coinrun"},
                    values=(100, 200, 500, 1000, 10000),
                    seeds=3,
                    protocol="Procgen coinrun easy, 25M env steps, 100 to 10,000 training levels, 3 seeds",
                    published=_PPO_GAP_PUBLISHED + " (the 200-level point)",
                ),
            },
        ),
        Finding(
            name="plr-vs-uniform-minigrid",
            source="Jiang et al. 2021, 'Prioritized Level Replay', Table 1 / Fig. 3 (Procgen easy-200)",
            claim="Prioritized Level Replay beats uniform level sampling on held-out levels: "
            "test(plr) > test(uniform).",
            direction=1,
            statistic="difference",
            key="level_sampler",
            scales={
                "cpu": Scale(
                    base={**_MINIGRID_CPU, "num_levels": 30, "timesteps": 102_400},
                    values=("plr", "uniform"),
                    # 20 seeds an arm left it inconclusive (~229 asked for), 60 too (~270): 270 decide it
                    seeds=270,
                    protocol="MiniGrid DoorKey-6x6, the minigrid-doorkey preset's PPO, 30 training levels, "
                    "102,400 env steps (50 rollouts: mid take-off, where uniform sampling's test return is "
                    "0.33 and 0.88 in a pilot of 2 seeds, and 0.96 by 164k), 50 evaluation episodes a "
                    "split, 270 seeds an arm (a seed's take-off varies so much that fewer do not decide)",
                ),
                "paper": Scale(
                    base=dict(_PROCGEN_PAPER),
                    values=("plr", "uniform"),
                    seeds=10,
                    protocol="Procgen easy, levels [0, 200), 25M env steps, 10 seeds (coinrun here; the "
                    "paper runs all 16 games)",
                    published=_TEST_25M + ", PLR 0.457 (134% of PPO's mean); coinrun test PPO 8.60, PLR 8.76",
                ),
            },
        ),
        Finding(
            name="carl-visible-context",
            source="Benjamins et al. 2023, 'Contextualize Me - The Case for Context in RL' (CARL), "
            "hidden vs visible context",
            claim="Showing the context to the agent helps it extrapolate to unseen contexts: "
            "test(visible) > test(hidden).",
            direction=1,
            statistic="difference",
            key="visible_context",
            scales={
                "cpu": Scale(
                    base={"preset": "cartpole-gravity-extrapolation", **_CPU},
                    values=("concat", "hidden"),
                    seeds=10,
                    protocol="CartPole, train gravity 4.9-14.7, test 14.7-29.4 (the "
                    "cartpole-gravity-extrapolation preset: rl-zoo PPO, 100k env steps), the normalised "
                    "context concatenated to the observation vs hidden",
                ),
                "paper": Scale(
                    base={"preset": "cartpole-gravity-extrapolation", "timesteps": 500_000},
                    values=("concat", "hidden"),
                    seeds=10,
                    protocol="heldout's adaptation: CartPole gravity extrapolation, 500k env steps, 10 "
                    "seeds (CARL's own budgets and agents are not in ../shared/reference)",
                ),
            },
        ),
        Finding(
            name="rad-vs-ppo-coinrun",
            source="Laskin et al. 2020, 'Reinforcement Learning with Augmented Data' (RAD), Procgen "
            "table; Raileanu et al. 2021 (DrAC), Table 1",
            claim="Augmenting observations (RAD, random crop) raises test return over plain PPO: "
            "test(rad) > test(ppo).",
            direction=1,
            statistic="difference",
            key="agent",
            scales={
                "cpu": Scale(
                    base={**_PROCGEN_CPU, "env": "coinrun"},
                    values=("rad", "ppo"),
                    seeds=5,
                    protocol="Procgen coinrun easy, the procgen-quickstart preset's PPO, 50 training "
                    "levels, 49k env steps, bf16 update; rad with crop, its default augmentation",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "coinrun"},
                    values=("rad", "ppo"),
                    seeds=10,
                    protocol="Procgen coinrun easy, levels [0, 200), 25M env steps, RAD with crop (its default), 10 seeds",
                    published=_TEST_25M + "; coinrun test PPO 8.60, UCB-DrAC 8.55",
                ),
            },
        ),
        Finding(
            name="color-jitter-vs-identity-minigrid",
            source="Lee et al. 2020, 'Network Randomization' (ICLR), unseen colours; Laskin et al. 2020 "
            "(RAD); Hansen & Wang 2021 (DMControl-GB color_hard): agents trained on augmented frames "
            "keep their return when the test frames' colours change",
            claim="Training on colour-jittered frames (RAD) makes a policy robust to colours it never saw: on "
            "held-out levels under a colour shift, test(color-jitter) > test(identity, no augmentation).",
            direction=1,
            statistic="difference",
            key="agent_kwargs.augmentation",
            shift=_COLOUR_SHIFT,
            scales={
                "cpu": Scale(
                    base={
                        "env": "minigrid-doorkey-5x5-rgb",
                        "agent": "rad",
                        "num_levels": 10,
                        "timesteps": 81_920,
                        "num_envs": 8,
                        "agent_kwargs": _PIXEL_MINIGRID_PPO,
                        "eval_episodes": 50,
                        **_CPU,
                    },
                    values=("color-jitter", "identity"),
                    seeds=5,
                    protocol="MiniGrid DoorKey-5x5 seen as 64x64 RGB pixels, RAD (IMPALA-CNN PPO with the "
                    "minigrid-doorkey preset's rollout and optimiser settings) with color-jitter vs identity "
                    "(plain PPO), 10 training levels, 81,920 env steps, reward normalisation, 50 evaluation "
                    f"episodes a split; the test levels evaluated under {_COLOUR_SHIFT} (hue turned up to half "
                    "the wheel per episode)",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "climber", "agent": "rad"},
                    values=("color-jitter", "identity"),
                    seeds=10,
                    protocol="Procgen climber easy (DrAC's best augmentation there is color-jitter), levels "
                    f"[0, 200), 25M env steps, RAD with color-jitter vs identity, 10 seeds; test levels under "
                    f"{_COLOUR_SHIFT}",
                    published="no figures under a colour shift in ../shared/reference; on clean test levels "
                    + _TEST_25M,
                ),
            },
        ),
        Finding(
            name="ucb-drac-vs-ppo-procgen",
            source="Raileanu et al. 2021, 'Automatic Data Augmentation for Generalization in RL', "
            "Table 1 (UCB-DrAC 135% of PPO's normalised test score; BASELINES.md)",
            claim="UCB-DrAC beats PPO on held-out Procgen levels: test(ucb-drac) > test(ppo).",
            direction=1,
            statistic="difference",
            key="agent",
            scales={
                "cpu": Scale(
                    base={**_PROCGEN_CPU, "env": "bigfish"},
                    values=("ucb-drac", "ppo"),
                    seeds=5,
                    protocol="Procgen bigfish easy (the game with UCB-DrAC's largest published gain), the "
                    "procgen-quickstart preset's PPO, 50 training levels, 49k env steps, bf16 update",
                ),
                "paper": Scale(
                    base={**_PROCGEN_PAPER, "env": "bigfish"},
                    values=("ucb-drac", "ppo"),
                    seeds=10,
                    protocol="Procgen bigfish easy, levels [0, 200), 25M env steps, 10 seeds",
                    published=_TEST_25M + ", UCB-DrAC 0.407 [0.396, 0.418]",
                ),
            },
        ),
        Finding(
            name="episodic-vs-global-bonus-minigrid",
            source="Henaff, Jiang, Raileanu 2023, 'A Study of Global and Episodic Bonuses for Exploration "
            "in Contextual MDPs' (ICML; E3B's authors), Sec. 3.1 (../shared/reference/ALGORITHMS-exploration.md)",
            claim="When levels share little structure (many training levels), an episodic count bonus beats a "
            "global count bonus on held-out levels: test(episodic-count) > test(count).",
            direction=1,
            statistic="difference",
            key="bonus",
            scales={
                "cpu": Scale(
                    base={**_MINIGRID_CPU, "num_levels": 200, "timesteps": 40_960},
                    values=("episodic-count", "count"),
                    seeds=10,
                    protocol="MiniGrid DoorKey-6x6, the minigrid-doorkey preset's PPO, 200 training levels, "
                    "40,960 env steps, counts of the hashed 7x7x3 view, beta 0.01 (the 200-level arm of "
                    "benchmarks/exploration_minigrid.yaml), 50 evaluation episodes a split",
                ),
                "paper": Scale(
                    base={
                        "env": "minihack-multiroom-n6",
                        "num_levels": 100_000,
                        "timesteps": 50_000_000,
                        "bonus_kwargs": {"key": "agent_pos", "coef": 1.0},
                    },
                    values=("episodic-count", "count"),
                    seeds=5,
                    protocol="heldout's adaptation of the study's Sec. 3.1: MiniHack MultiRoom-N6 (the study's "
                    "is N6-Lava, not registered here), 100,000 training levels (the study draws unlimited "
                    "contexts), 50M env steps, counts of the agent's (x, y) position, beta 1 (of the study's "
                    "0.1 / 1 / 10), 5 seeds; heldout's PPO, not the study's IMPALA; needs the minihack extra "
                    "(docs/minihack.md)",
                    published="no figures in ../shared/reference (only the abstract: episodic bonuses do best "
                    "when little is shared across episodes)",
                ),
            },
        ),
        Finding(
            name="srym-vs-poincare-minigrid",
            source="Cetin et al. 2023, 'Hyperbolic Deep Reinforcement Learning' (ICLR), S-RYM "
            "(../shared/reference/ALGORITHMS-hyperbolic.md, H3-H4)",
            claim="Stabilising Poincare-ball heads with S-RYM (spectral norm and 1/sqrt(d) rescaling) raises "
            "test return over naive Poincare heads: test(s_rym) > test(naive).",
            direction=1,
            statistic="difference",
            key="agent_kwargs.s_rym",
            scales={
                "cpu": Scale(
                    base={
                        **_MINIGRID_CPU,
                        "env": "minigrid-doorkey-5x5",
                        "timesteps": 20_480,
                        "agent_kwargs": {"representation": "poincare"},
                    },
                    values=(True, False),
                    seeds=10,
                    protocol="MiniGrid DoorKey-5x5, the minigrid-doorkey preset's PPO (MLP 64x64 over the "
                    "7x7x3 view) with Poincare-ball heads, 5 training levels, 20,480 env steps (the setting "
                    "of benchmarks/hyperbolic_stability.yaml), 50 evaluation episodes a split",
                ),
                "paper": Scale(
                    base={"preset": "hyperbolic-procgen-easy", "env": "bigfish"},
                    values=(True, False),
                    seeds=10,
                    protocol="Procgen bigfish easy (one of Cetin et al.'s ablation games), levels [0, 200), "
                    "25M env steps, the hyperbolic-procgen-easy preset (32-d Poincare representation, c 1) "
                    "with and without S-RYM, 10 seeds (the paper's seed count is not in ../shared/reference)",
                    published="Cetin et al. give no figures for naive Poincare heads beyond 'fatal "
                    "instabilities'; their Procgen table with S-RYM: heldout/analysis/data (when added)",
                ),
            },
        ),
    )
}
