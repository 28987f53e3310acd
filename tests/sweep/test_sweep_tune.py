"""``heldout sweep --tune``: test returns never feed the search, and a tiny tuning sweep end to end.

The proof that the search reads validation only: trial run folders whose test returns rank the
trials the opposite way to their validation returns (in ``eval/test.csv`` and in ``summary.json``),
and the chosen config follows validation, in the scorer and through the whole ``run_tune`` with a
backend that writes such folders instead of training. A trial run without validation results makes
the scorer raise rather than fall back to test.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import sys
import textwrap
from pathlib import Path

import pytest

from heldout.sweep.spec import parse_spec
from heldout.sweep.tune import (
    build_groups,
    check_validation_split,
    run_tune,
    score_groups,
    score_trial,
    validation_returns,
)

LRS = [1.0e-4, 3.0e-4, 1.0e-3]
#: The returns each trial's runs get: validation ranks 3e-4 first, test ranks it last.
VALIDATION = {1.0e-4: 20.0, 3.0e-4: 90.0, 1.0e-3: 50.0}
TEST = {1.0e-4: 95.0, 3.0e-4: 5.0, 1.0e-3: 60.0}


def _spec(folder: Path, **tune) -> object:
    return parse_spec(
        {
            "name": "t",
            "folder": str(folder),
            "base": {
                "preset": "cartpole-gravity-extrapolation",
                "contexts.validation": {"gravity": "2.45:4.9"},
                "timesteps": 64,
                "num_envs": 2,
            },
            "grid": {"agent": ["ppo", "sgfd"], "seed": [0, 1]},
            "tune": {"space": {"agent_kwargs.learning_rate": LRS}, "seeds": [10, 11], **tune},
        }
    )


def _csv(returns: list[float]) -> str:
    rows = "".join(f"{i},{i},{r:g},10,\n" for i, r in enumerate(returns))
    return "episode,level,return,length,completed\n" + rows


def _fake_run(path: Path, config: object, seed_shift: float = 0.0, returns: tuple | None = None) -> None:
    """A complete run folder whose validation and test returns rank its learning rate oppositely
    (or whose validation and test means are ``returns``)."""
    from heldout.protocol.run_folder import write_json, write_yaml
    from heldout.protocol.status import write_status

    lr = config.agent_kwargs["learning_rate"]
    val, test = returns or (VALIDATION[lr] + seed_shift, TEST[lr] + seed_shift)
    (path / "eval").mkdir(parents=True, exist_ok=True)
    write_yaml(path / "config.yaml", config.to_dict())
    (path / "eval" / "train.csv").write_text(_csv([test, test]))
    (path / "eval" / "test.csv").write_text(_csv([test, test + 1, test - 1]))
    (path / "eval" / "validation.csv").write_text(_csv([val, val + 2, val - 2]))
    splits = {
        name: {"mean": mean, "episodes": 3, "normalized": None}
        for name, mean in (("train", test), ("test", test), ("validation", val))
    }
    write_json(
        path / "summary.json",
        {
            "env": config.env,
            "agent": config.agent,
            "seed": config.seed,
            "kind": "contexts",
            "splits": splits,
            "gap": 0.0,
        },
    )
    write_status(path, "complete", config.timesteps, config.timesteps)


def test_the_scorer_reads_validation_and_refuses_a_run_without_it(tmp_path: Path) -> None:
    spec = _spec(tmp_path / "sw")
    groups = build_groups(spec)
    assert [g.name for g in groups] == ["cartpole/ppo", "cartpole/sgfd"]
    for group in groups:
        for trial in group.trials:
            for i, run in enumerate(trial.runs):
                _fake_run(spec.folder / run.name, run.config, seed_shift=i)
    results = score_groups(groups, spec.folder, "mean")
    for result in results:
        assert result["best"]["values"] == {"agent_kwargs.learning_rate": 3.0e-4}  # validation's best
        scores = {r["values"]["agent_kwargs.learning_rate"]: r["score"] for r in result["trials"]}
        assert scores == {lr: pytest.approx(VALIDATION[lr] + 0.5) for lr in LRS}  # seeds shift by 0 and 1
    assert score_trial([spec.folder / groups[0].trials[0].runs[0].name], "iqm")[0] == pytest.approx(20.0)

    # a trial run without validation results: the scorer raises, though test.csv and summary.json are there
    victim = spec.folder / groups[1].trials[2].runs[1].name
    (victim / "eval" / "validation.csv").unlink()
    assert (victim / "eval" / "test.csv").is_file() and (victim / "summary.json").is_file()
    with pytest.raises(
        ValueError, match=r"no validation results .*validation split only, never on train or test"
    ):
        score_groups(groups, spec.folder, "mean")
    with pytest.raises(ValueError, match="no validation results"):
        validation_returns(victim)


def test_the_whole_tuning_follows_validation_when_test_ranks_the_other_way(tmp_path: Path) -> None:
    """``run_tune`` end to end with a backend that writes the opposite-ranked folders: the stage-2
    runs get validation's best, tuning.json records validation scores only."""
    from heldout.sweep.local import Outcome

    spec = _spec(tmp_path / "sw", metric="iqm")
    trained: list[list[str]] = []

    def backend(plan, **kwargs):
        outcome = Outcome()
        for d in plan.to_run:
            _fake_run(d.path, d.run.config, seed_shift=d.run.config.seed % 10)
            outcome.complete.append(d.run.name)
        trained.append([d.run.name for d in plan.to_run])
        return outcome

    out = io.StringIO()
    code = run_tune(spec, report=False, out=out, err=io.StringIO(), runner=backend)
    assert code == 0, out.getvalue()
    assert (
        len(trained) == 2 and len(trained[0]) == 2 * 3 * 2 and all(n.startswith("tune/") for n in trained[0])
    )
    assert sorted(trained[1]) == [f"cartpole/{a}/seed{s}" for a in ("ppo", "sgfd") for s in (0, 1)]
    from heldout.protocol.run_folder import read_config

    for name in trained[1]:
        assert read_config(spec.folder / name / "config.yaml").agent_kwargs["learning_rate"] == 3.0e-4
    tuning = json.loads((spec.folder / "tune" / "tuning.json").read_text())
    assert tuning["split"] == "validation" and tuning["tune"]["metric"] == "iqm"
    for group in tuning["groups"]:
        assert group["best"]["name"] == "learning_rate=0.0003"
        # the IQM of the runs' pooled validation episodes (seeds 10, 11): (v-2, v, v+2) and (v-1, v+1, v+3)
        assert {t["name"]: t["score"] for t in group["trials"]}["learning_rate=0.0003"] == pytest.approx(90.5)
    assert "<- best" in out.getvalue()

    # again: nothing to train, the best derived from the folders again
    trained.clear()
    out = io.StringIO()
    assert run_tune(spec, report=False, out=out, err=io.StringIO(), runner=backend) == 0
    assert trained == [[], []]
    assert "best for cartpole/ppo: learning_rate=0.0003" in out.getvalue()


def test_a_trial_without_a_validation_split_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    data = {
        "name": "t",
        "folder": str(tmp_path / "sw"),
        "base": {"preset": "cartpole-gravity-extrapolation", "timesteps": 64},
        "grid": {"seed": [0]},
        "tune": {"space": {"agent_kwargs.learning_rate": LRS}},
    }
    groups = build_groups(parse_spec(data))
    with pytest.raises(
        ValueError, match=r"no validation split .*never reads the test split.*contexts.validation"
    ):
        check_validation_split(groups)
    with pytest.raises(ValueError, match="no validation split"):
        run_tune(parse_spec(data), out=io.StringIO(), err=io.StringIO())
    assert not (tmp_path / "sw").exists()


def _sweep(*argv: str) -> tuple[int, str, str]:
    from heldout.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["sweep", *argv])
    return code, out.getvalue(), err.getvalue()


def tiny_tune_spec(path: Path, folder: Path) -> Path:
    """Writes the tiny tuning spec (2 learning rates x 1 seed, then the best on 2 seeds, 256 steps a
    run on contextual CartPole) to ``path``."""
    path.write_text(
        textwrap.dedent(
            f"""\
            name: tiny-tune
            folder: {folder}
            base:
              preset: cartpole-gravity-extrapolation
              contexts.validation: {{gravity: "2.45:4.9"}}
              timesteps: 256
              num_envs: 2
              agent_kwargs: {{n_steps: 32, batch_size: 32, n_epochs: 1}}
              eval_episodes: 4
              eval_num_envs: 2
            grid:
              seed: [0, 1]
            tune:
              space:
                agent_kwargs.learning_rate: [1.0e-5, 3.0e-3]
            """
        )
    )
    return path


def test_a_tiny_tuning_sweep_runs_end_to_end_and_resumes(tmp_path: Path) -> None:
    """2 learning rates x 1 seed on contextual CartPole, then the best on 2 seeds (256 steps a run)."""
    folder = tmp_path / "sw"
    spec = tiny_tune_spec(tmp_path / "tune.yaml", folder)
    code, out, err = _sweep(str(spec), "--tune", "--dry-run")
    assert code == 0, err
    assert "stage 1, tuning on the validation split: 2 trial(s)" in out
    assert (
        "tune/learning_rate=1e-05/cartpole/ppo/seed1000" in out
        and "stage 2" in out
        and "cartpole/ppo/seed1" in out
    )
    assert not folder.exists()

    code, out, err = _sweep(str(spec), "--tune", "--workers", "2", "--no-plots", "--reps", "50")
    assert code == 0, out + err
    tuning = json.loads((folder / "tune" / "tuning.json").read_text())
    trials = tuning["groups"][0]["trials"]
    # the best is the trial whose run has the higher mean in eval/validation.csv
    means = {}
    for trial in trials:
        returns = validation_returns(folder / trial["runs"][0])
        means[trial["name"]] = sum(returns) / len(returns)
        assert trial["score"] == pytest.approx(means[trial["name"]])
    best = max(means, key=lambda n: (means[n], -list(means).index(n)))
    assert tuning["groups"][0]["best"]["name"] == best
    lr = next(t["values"] for t in trials if t["name"] == best)["agent_kwargs.learning_rate"]
    from heldout.protocol.run_folder import read_config

    for seed in (0, 1):
        run = folder / f"cartpole/ppo/seed{seed}"
        assert read_config(run / "config.yaml").agent_kwargs["learning_rate"] == lr
        assert json.loads((run / "summary.json").read_text())["splits"]["test"]["episodes"] == 4
    # the report at the end covers the stage-2 runs, on train and test
    assert (folder / "report" / "report.md").is_file()
    assert re.search(r"ppo: 2 run\(s\) on 1 game\(s\) \(cartpole\), train [\d.]+, test [\d.]+", out), out

    code, out, err = _sweep(str(spec), "--tune", "--no-report")
    assert code == 0, out + err
    assert "start" not in err and f"best for cartpole/ppo: {best}" in out


def test_a_failed_trial_is_not_chosen_and_an_interrupted_one_is_resumed(tmp_path: Path) -> None:
    from heldout.protocol.status import write_status
    from heldout.sweep.local import Outcome

    spec = _spec(tmp_path / "sw")
    seen: list[list[tuple[str, str]]] = []

    def backend(plan, **kwargs):
        outcome = Outcome()
        for d in plan.to_run:
            _fake_run(d.path, d.run.config)
            if d.run.config.agent_kwargs["learning_rate"] == 3.0e-4 and d.run.config.agent == "ppo":
                write_status(d.path, "failed", 0, 64, error="OSError: disk full")  # validation's best fails
                outcome.failed.append(d.run.name)
            else:
                outcome.complete.append(d.run.name)
        seen.append([(d.run.name, d.action) for d in plan.to_run])
        return outcome

    out = io.StringIO()
    assert run_tune(spec, report=False, max_retries=0, out=out, err=io.StringIO(), runner=backend) == 1
    tuning = json.loads((spec.folder / "tune" / "tuning.json").read_text())
    ppo, sgfd = tuning["groups"]
    assert {t["name"]: t["state"] for t in ppo["trials"]}["learning_rate=0.0003"] == "failed"
    assert ppo["best"]["name"] == "learning_rate=0.001"  # the next best on validation, not test's 1e-4
    assert sgfd["best"]["name"] == "learning_rate=0.0003"
    assert "failed: tune/learning_rate=0.0003/cartpole/ppo/seed10" in out.getvalue()

    # a trial run found interrupted is resumed; the failed ones are left (--max-retries 0)
    run = spec.folder / "tune/learning_rate=0.001/cartpole/sgfd/seed11"
    write_status(run, "interrupted", 32, 64)
    seen.clear()
    assert (
        run_tune(spec, report=False, max_retries=0, out=io.StringIO(), err=io.StringIO(), runner=backend) == 1
    )
    assert seen[0] == [("tune/learning_rate=0.001/cartpole/sgfd/seed11", "restart")]  # no checkpoint: anew
    assert seen[1] == []


def test_a_group_whose_every_trial_failed_has_no_stage_2(tmp_path: Path) -> None:
    from heldout.protocol.status import write_status
    from heldout.sweep.local import Outcome

    spec = _spec(tmp_path / "sw")
    calls = []

    def backend(plan, **kwargs):
        outcome = Outcome()
        for d in plan.to_run:
            _fake_run(d.path, d.run.config)
            if d.run.config.agent == "sgfd":
                write_status(d.path, "failed", 0, 64, error="RuntimeError: x")
                outcome.failed.append(d.run.name)
            else:
                outcome.complete.append(d.run.name)
        calls.append(len(plan.to_run))
        return outcome

    out = io.StringIO()
    assert run_tune(spec, report=False, max_retries=0, out=out, err=io.StringIO(), runner=backend) == 1
    assert calls == [12]  # stage 1 only
    assert "tuning for cartpole/sgfd: no trial completed" in out.getvalue()
    assert not (spec.folder / "cartpole").exists()


@pytest.mark.slow
def test_the_docs_example_runs_with_tuning_seeds_apart_from_the_reported_ones(
    tmp_path: Path, monkeypatch
) -> None:
    """docs/examples/sweep-tune-tiny.yaml as the guide runs it (3 trials + 2 runs, 4096 steps each):
    the best follows validation, the trials train seed 1000 and the reported runs seeds 0 and 1, so
    no reported test score comes from a run the choice was made on."""
    example = Path(__file__).resolve().parents[2] / "docs" / "examples" / "sweep-tune-tiny.yaml"
    monkeypatch.chdir(tmp_path)
    code, out, err = _sweep(str(example), "--tune", "--no-plots", "--reps", "50", "--no-progress")
    assert code == 0, out + err
    folder = tmp_path / "sweeps" / "tune-tiny"
    tuning = json.loads((folder / "tune" / "tuning.json").read_text())
    (group,) = tuning["groups"]
    scores = {t["name"]: t["score"] for t in group["trials"]}
    assert len(scores) == 3 and group["best"]["name"] == max(scores, key=scores.get)
    assert tuning["seeds"] == [1000] and all(t["runs"][0].endswith("/seed1000") for t in group["trials"])
    reported = [
        json.loads(p.read_text())["seed"]
        for p in sorted((folder / "cartpole").glob("ppo/seed*/summary.json"))
    ]
    assert reported == [0, 1]
    assert (folder / "report" / "report.md").is_file()


def test_tune_by_pools_games_on_normalised_validation_scores(tmp_path: Path) -> None:
    """``by: []``: one best for every game. Raw returns would pick the trial that does well on
    starpilot's large scale; the mean of min-max normalised scores (coinrun 5-10, starpilot 2.5-64)
    picks the other, and stage 2 runs it on both games."""
    from heldout.sweep.tune import best_runs

    spec = parse_spec(
        {
            "name": "p",
            "folder": str(tmp_path / "sw"),
            "base": {"preset": "procgen-easy", "num_validation_levels": 50},
            "grid": {"env": ["coinrun", "starpilot"], "seed": [0, 1]},
            "tune": {"space": {"agent_kwargs.learning_rate": [1.0e-4, 3.0e-4]}, "by": []},
        }
    )
    (group,) = build_groups(spec)
    assert group.name == "all" and [len(t.runs) for t in group.trials] == [2, 2]
    validation = {("coinrun", 1.0e-4): 10.0, ("starpilot", 1.0e-4): 2.5, ("coinrun", 3.0e-4): 5.0}
    validation[("starpilot", 3.0e-4)] = 40.0
    for trial in group.trials:
        for run in trial.runs:
            c = run.config
            val = validation[(c.env, c.agent_kwargs["learning_rate"])]
            _fake_run(spec.folder / run.name, c, returns=(val, 100.0 - val))
    (result,) = score_groups([group], spec.folder, "mean")
    scores = {t["name"]: t["score"] for t in result["trials"]}
    assert scores == {
        "learning_rate=0.0001": pytest.approx((1.0 + 0.0) / 2),
        "learning_rate=0.0003": pytest.approx((0.0 + 37.5 / 61.5) / 2),
    }
    assert result["best"]["name"] == "learning_rate=0.0001"
    assert [m["member"] for m in result["trials"][0]["members"]] == [
        "tune/learning_rate=0.0001/coinrun/ppo",
        "tune/learning_rate=0.0001/starpilot/ppo",
    ]
    runs = best_runs(spec, [result])
    assert [r.name for r in runs] == [
        "coinrun/ppo/seed0",
        "coinrun/ppo/seed1",
        "starpilot/ppo/seed0",
        "starpilot/ppo/seed1",
    ]
    assert {r.config.agent_kwargs["learning_rate"] for r in runs} == {1.0e-4}


def test_tune_by_agent_and_games_without_a_common_scale(tmp_path: Path) -> None:
    from heldout.sweep.tune import check_pooling

    base = {"preset": "cartpole-gravity-extrapolation", "contexts.validation": {"gravity": "2.45:4.9"}}
    data = {
        "name": "t",
        "folder": str(tmp_path / "sw"),
        "base": base,
        "grid": {"agent": ["ppo", "sgfd"], "agent_kwargs.ent_coef": [0.0, 0.01], "seed": [0]},
        "tune": {"space": {"agent_kwargs.learning_rate": LRS}, "by": ["agent"]},
    }
    groups = build_groups(parse_spec(data))
    assert [g.name for g in groups] == ["agent=ppo", "agent=sgfd"]
    assert [len(g.members) for g in groups] == [2, 2]  # the two ent_coef values, tuned together
    check_pooling(groups)  # one env: raw returns pool
    # two contextual envs have no normalised score: refused, one line
    data["grid"] = {"preset": ["cartpole-gravity-extrapolation", "pendulum-mass-extrapolation"], "seed": [0]}
    data["tune"]["by"] = []
    spec = parse_spec({**data, "base": {}})
    with pytest.raises(
        ValueError, match=r"tune.by: group all pools the envs cartpole, pendulum, but 'cartpole'"
    ):
        check_pooling(build_groups(spec))


#: Optuna's space in these tests; a trial's validation mean is ``1e5 x lr``, its test mean ``100 - that``.
LR_RANGE = {"low": 1.0e-4, "high": 1.0e-3, "log": True}


def _opposite(lr: float) -> tuple[float, float]:
    return 1.0e5 * lr, 100.0 - 1.0e5 * lr


def _optuna_data(folder: Path, **tune) -> dict:
    return {
        "name": "t",
        "folder": str(folder),
        "base": {
            "preset": "cartpole-gravity-extrapolation",
            "contexts.validation": {"gravity": "2.45:4.9"},
            "timesteps": 64,
            "num_envs": 2,
        },
        "grid": {"seed": [0, 1]},
        "tune": {"method": "optuna", "samples": 6, "space": {"agent_kwargs.learning_rate": LR_RANGE}, **tune},
    }


def _journal(folder: Path) -> list:
    """The study's trials as the journal holds them, read by Optuna itself."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    storage = JournalStorage(JournalFileBackend(str(folder / "tune" / "optuna.journal")))
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage).get_trials()


class _Pool:
    """A fake local backend with ``workers`` slots: runs end in the order ``finish`` picks (it gets
    the runs in flight and returns the one to end), each written as an opposite-ranked folder (or a
    failed one where ``fail`` says so); new runs come from ``more`` as slots free, as run_local's."""

    def __init__(self, workers: int = 1, finish=None, fail=None) -> None:
        self.workers, self.finish, self.fail = workers, finish or (lambda flying: flying[0]), fail
        self.started: list[str] = []

    def __call__(self, plan, more=None, **kwargs):
        from heldout.protocol.status import write_status
        from heldout.sweep.local import Outcome

        outcome, queue, flying = Outcome(), list(plan.to_run), []
        while True:
            if more is not None and not queue and len(flying) < self.workers:
                queue += more(outcome, self.workers - len(flying))
            while queue and len(flying) < self.workers:
                flying.append(queue.pop(0))
                self.started.append(flying[-1].run.name)
            if not flying:
                return outcome
            d = self.finish(flying)
            flying.remove(d)
            _fake_run(d.path, d.run.config, returns=_opposite(d.run.config.agent_kwargs["learning_rate"]))
            if self.fail and self.fail(d):
                write_status(d.path, "failed", 0, 64, error="OSError: disk full")
                outcome.failed.append(d.run.name)
            else:
                outcome.complete.append(d.run.name)


def test_optuna_is_told_validation_scores_only_and_its_journal_resumes(tmp_path: Path) -> None:
    """``method: optuna`` with the backend that writes opposite-ranked folders: every value in
    Optuna's journal is a trial's validation score, the choice follows validation, and the same
    command again reads the journal (no trial asked again, nothing trained)."""
    pytest.importorskip("optuna")
    spec = parse_spec(_optuna_data(tmp_path / "sw"))
    pool = _Pool()
    out = io.StringIO()
    assert run_tune(spec, report=False, out=out, err=io.StringIO(), runner=pool) == 0, out.getvalue()
    assert len(pool.started) == 6 + 2  # six trials x seed 1000, then the best on seeds 0 and 1
    tuning = json.loads((spec.folder / "tune" / "tuning.json").read_text())
    trials = tuning["groups"][0]["trials"]
    assert [t["name"] for t in trials] == [f"trial-{i:03d}" for i in range(6)]
    assert all(t["runs"] == [f"tune/{t['name']}/cartpole/ppo/seed1000"] for t in trials)
    journal = _journal(spec.folder)
    assert [t.state.name for t in journal] == ["COMPLETE"] * 6
    lrs = [t["values"]["agent_kwargs.learning_rate"] for t in trials]
    assert all(1.0e-4 <= lr <= 1.0e-3 for lr in lrs) and len(set(lrs)) == 6
    for frozen, lr in zip(journal, lrs, strict=True):  # told the validation mean, never the test one
        assert frozen.params["agent_kwargs.learning_rate"] == pytest.approx(lr, rel=1e-5)
        assert frozen.value == pytest.approx(_opposite(lr)[0], rel=1e-5)
    best = tuning["groups"][0]["best"]
    assert best["values"]["agent_kwargs.learning_rate"] == max(lrs)  # validation's best, test's worst
    from heldout.protocol.run_folder import read_config

    for seed in (0, 1):
        config = read_config(spec.folder / f"cartpole/ppo/seed{seed}" / "config.yaml")
        assert config.agent_kwargs["learning_rate"] == max(lrs)

    again, journal_file = _Pool(), spec.folder / "tune" / "optuna.journal"
    before = journal_file.read_bytes()
    assert run_tune(parse_spec(_optuna_data(tmp_path / "sw")), dry_run=True, out=out, err=out) == 0
    assert "(6 trial(s) in it)" in out.getvalue()
    assert (
        run_tune(parse_spec(_optuna_data(tmp_path / "sw")), report=False, out=out, err=out, runner=again) == 0
    )
    assert again.started == [] and journal_file.read_bytes() == before  # read, not written
    assert json.loads((spec.folder / "tune" / "tuning.json").read_text())["groups"][0]["trials"] == trials
    # more samples: the search goes on from the journal, the six trials kept
    assert (
        run_tune(
            parse_spec(_optuna_data(tmp_path / "sw", samples=8)), report=False, out=out, err=out, runner=again
        )
        == 0
    )
    assert again.started == ["tune/trial-006/cartpole/ppo/seed1000", "tune/trial-007/cartpole/ppo/seed1000"]
    # another space on the same journal: refused, one line, before anything is written
    other = _optuna_data(tmp_path / "sw", space={"agent_kwargs.learning_rate": LRS}, samples=2)
    with pytest.raises(ValueError, match=r"tune.space: the Optuna journal .* searched another space") as info:
        run_tune(parse_spec(other), report=False, out=out, err=out, runner=again)
    assert "\n" not in str(info.value) and len(_journal(spec.folder)) == 8


def test_optuna_asks_a_trial_as_soon_as_a_worker_frees(tmp_path: Path) -> None:
    """Two workers; the first trial's run is the slowest: later trials are asked and told while it
    still trains (no round waits for it), and it is told last."""
    pytest.importorskip("optuna")
    spec = parse_spec(_optuna_data(tmp_path / "sw", samples=5))
    told_while_first_ran: list[int] = []

    def finish(flying):  # the first trial's run ends only when no other trial is in flight
        if not flying[0].run.name.startswith("tune/"):
            return flying[0]  # stage 2
        rest = [d for d in flying if "trial-000" not in d.run.name]
        if rest:
            states = {t.number: t.state.name for t in _journal(spec.folder)}
            told_while_first_ran.append(sum(s == "COMPLETE" for s in states.values()))
            assert states[0] == "RUNNING"
        return rest[0] if rest else flying[0]

    pool = _Pool(workers=2, finish=finish)
    assert run_tune(spec, report=False, out=io.StringIO(), err=io.StringIO(), runner=pool) == 0
    assert pool.started[:5] == [f"tune/trial-{i:03d}/cartpole/ppo/seed1000" for i in range(5)]
    assert told_while_first_ran == [0, 1, 2, 3]  # trials 1-4 asked, run and told beside trial 0
    assert [t.state.name for t in _journal(spec.folder)] == ["COMPLETE"] * 5

    # batch: 1 keeps one trial in flight, whatever the workers: each asked once the one before is told
    in_flight: list[int] = []
    pool = _Pool(workers=3, finish=lambda flying: (in_flight.append(len(flying)), flying[0])[1])
    spec = parse_spec(_optuna_data(tmp_path / "one", samples=3, batch=1))
    assert run_tune(spec, report=False, out=io.StringIO(), err=io.StringIO(), runner=pool) == 0
    assert in_flight[:3] == [1, 1, 1] and in_flight[3:] == [2, 1]  # the trials, then stage 2's two runs


def test_a_failed_optuna_trial_stays_failed_and_the_search_goes_on(tmp_path: Path) -> None:
    """A trial whose run failed (retries spent) is told FAIL; the same command again, retries
    allowed, neither re-runs it nor replays anything: the journal keeps its record, and the
    search ends with ``samples`` trials."""
    pytest.importorskip("optuna")
    spec = parse_spec(_optuna_data(tmp_path / "sw", samples=4))
    pool = _Pool(fail=lambda d: "trial-001" in d.run.name)
    assert run_tune(spec, report=False, max_retries=0, out=io.StringIO(), err=io.StringIO(), runner=pool) == 1
    assert [t.state.name for t in _journal(spec.folder)] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    tuning = json.loads((spec.folder / "tune" / "tuning.json").read_text())
    assert [t["state"] for t in tuning["groups"][0]["trials"]] == [
        "complete",
        "failed",
        "complete",
        "complete",
    ]
    again = _Pool()
    out = io.StringIO()
    spec = parse_spec(_optuna_data(tmp_path / "sw", samples=4))
    assert run_tune(spec, report=False, out=out, err=out, runner=again) == 0, out.getvalue()
    assert again.started == []  # failed stays failed (retries allowed or not); the search is complete
    assert [t.state.name for t in _journal(spec.folder)] == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]


def test_optuna_without_optuna_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "optuna" else real(name, *a)
    )
    data = _optuna_data(tmp_path / "sw", samples=2)
    with pytest.raises(
        ValueError, match=r"method optuna needs optuna, not installed: pip install 'heldout\[tune\]'"
    ):
        run_tune(parse_spec(data), out=io.StringIO(), err=io.StringIO())
    assert not (tmp_path / "sw").exists()


def test_a_tiny_optuna_search_trains_end_to_end(tmp_path: Path) -> None:
    """``method: optuna`` for real on the local backend: 3 trials (a log-range and an int range),
    each trained, scored on validation and told; then the best on 2 seeds."""
    pytest.importorskip("optuna")
    folder = tmp_path / "sw"
    spec = tiny_tune_spec(tmp_path / "tune.yaml", folder)
    spec.write_text(
        spec.read_text().replace(
            "  space:\n    agent_kwargs.learning_rate: [1.0e-5, 3.0e-3]\n",
            "  method: optuna\n  samples: 3\n  space:\n"
            "    agent_kwargs.learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}\n"
            "    agent_kwargs.n_epochs: {low: 1, high: 2, int: true}\n",
        )
    )
    code, out, err = _sweep(str(spec), "--tune", "--workers", "2", "--no-report")
    assert code == 0, out + err
    assert "optuna: trial-000 of cartpole/ppo" in out and "optuna: trial-002 of cartpole/ppo" in out
    tuning = json.loads((folder / "tune" / "tuning.json").read_text())
    trials = tuning["groups"][0]["trials"]
    assert [t["state"] for t in trials] == ["complete"] * 3
    from heldout.protocol.run_folder import read_config

    for trial, frozen in zip(trials, _journal(folder), strict=True):
        lr, epochs = (trial["values"][f"agent_kwargs.{k}"] for k in ("learning_rate", "n_epochs"))
        assert 1.0e-5 <= lr <= 1.0e-2 and epochs in (1, 2)
        trained = read_config(folder / trial["runs"][0] / "config.yaml").agent_kwargs
        assert (trained["learning_rate"], trained["n_epochs"]) == (lr, epochs)
        returns = validation_returns(folder / trial["runs"][0])
        assert trial["score"] == pytest.approx(sum(returns) / len(returns)) == frozen.value
    best = tuning["groups"][0]["best"]
    for seed in (0, 1):
        config = read_config(folder / f"cartpole/ppo/seed{seed}" / "config.yaml")
        assert config.agent_kwargs["learning_rate"] == best["values"]["agent_kwargs.learning_rate"]


def _optuna_spec(path: Path, folder: Path) -> Path:
    """The tiny tuning spec with ``method: optuna``: 3 trials of 4096 steps (checkpoints every 256)."""
    spec = tiny_tune_spec(path, folder)
    spec.write_text(
        spec.read_text()
        .replace("timesteps: 256", "timesteps: 4096\n  checkpoint_freq: 256")
        .replace(
            "  space:\n    agent_kwargs.learning_rate: [1.0e-5, 3.0e-3]\n",
            "  method: optuna\n  samples: 3\n  space:\n"
            "    agent_kwargs.learning_rate: {low: 1.0e-5, high: 1.0e-2, log: true}\n",
        )
    )
    return spec


@pytest.mark.slow
def test_a_tuning_sweep_killed_mid_trial_resumes_from_its_journal(tmp_path: Path) -> None:
    """A real ``heldout sweep --tune`` (Optuna, one worker) SIGKILLed while its second trial trains,
    then the same command again: 3 trials in the journal, all told, none trained twice (the killed
    one resumed from its checkpoint), and the journal, the trials and the chosen config equal an
    uninterrupted sweep's (the sampler is seeded per trial)."""
    import signal
    import subprocess
    import time

    from heldout.protocol.status import read_status

    repo = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (repo, os.environ.get("PYTHONPATH")) if p)

    def argv(spec: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "heldout",
            "sweep",
            str(spec),
            "--tune",
            "--workers",
            "1",
            "--no-report",
        ]

    killed, whole = tmp_path / "killed", tmp_path / "whole"
    spec = _optuna_spec(tmp_path / "killed.yaml", killed)
    log = open(tmp_path / "killed.log", "w")  # not a pipe: the fork server would hold it open
    proc = subprocess.Popen(argv(spec), cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    second = killed / "tune/trial-001/cartpole/ppo/seed1000"
    deadline = time.monotonic() + 300
    while not list(second.glob("checkpoints/step-*")):
        assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "killed.log").read_text()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()  # reaped, as a shell would: its workers see it gone
    log.close()
    states = {t.number: t.state.name for t in _journal(killed)}
    assert states == {0: "COMPLETE", 1: "RUNNING"}
    while read_status(second)["state"] == "running":  # its worker sees the sweep gone and stops
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert read_status(second)["state"] == "interrupted"

    again = subprocess.run(argv(spec), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    journal = _journal(killed)
    assert [t.state.name for t in journal] == ["COMPLETE"] * 3
    trials = sorted(p.name for p in (killed / "tune").iterdir() if p.is_dir())
    assert trials == ["trial-000", "trial-001", "trial-002"]
    for trial in trials:  # started once each; the killed one resumed, never started again
        lines = (killed / "tune" / trial / "cartpole/ppo/seed1000/command.txt").read_text().splitlines()
        actions = [re.search(r"\(run \S+, (\w+), attempt", line).group(1) for line in lines]
        assert actions == (["start", "resume"] if trial == "trial-001" else ["start"]), lines

    uninterrupted = subprocess.run(
        argv(_optuna_spec(tmp_path / "whole.yaml", whole)),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        timeout=600,
    )
    assert uninterrupted.returncode == 0, uninterrupted.stdout + uninterrupted.stderr
    assert [(t.params, t.value) for t in _journal(whole)] == [(t.params, t.value) for t in journal]
    best = [
        json.loads((f / "tune" / "tuning.json").read_text())["groups"][0]["best"] for f in (killed, whole)
    ]
    assert best[0] == best[1]
