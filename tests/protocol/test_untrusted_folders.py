"""Every field read back from a run or sweep folder is untrusted input.

A tiny real run folder (CartPole contexts, 128 steps, checkpoints at 64 and 128) is copied, one field
of one of its files is set to a hostile value (an integer of 401 digits, a negative number, NaN, an
infinity, text, a list, a mapping, null, a missing key), the checkpoint's manifest re-hashed where the
file is in a checkpoint (a hostile folder forges its manifest too), and a command that reads the field
is run in process. Each must end with exit code 2 and one line on stderr naming the file, no
traceback, and no file of the folder changed (a SHA-256 of every file before and after): ``heldout
train --resume`` above all, which must check everything before it changes anything.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_bad_inputs import FIXTURE_TRAIN  # the same tiny CartPole run

BIG = 10**400
MISSING = object()
#: Hostile values, by name.
VALUES: dict[str, Any] = {
    "huge": BIG,
    "negative": -5,
    "nan": float("nan"),
    "inf": float("inf"),
    "text": "abc",
    "list": [1],
    "mapping": {"a": 1},
    "null": None,
    "true": True,
    "missing": MISSING,
}
FINAL = "checkpoints/step-128"


def _values(*names: str) -> list[str]:
    assert set(names) <= set(VALUES), names
    return list(names)


#: (command, file, field, values that must be refused). ``resume`` runs on the run marked interrupted.
CASES: list[tuple[str, str, str, list[str]]] = [
    # the final checkpoint's state: resume reads every field before it changes anything
    ("resume", f"{FINAL}/state.json", "num_timesteps", _values("huge", "negative", "nan", "inf", "text", "true", "missing")),
    ("resume", f"{FINAL}/state.json", "n_updates", _values("huge", "negative", "inf", "text", "null")),
    ("resume", f"{FINAL}/state.json", "episode_num", _values("huge", "nan", "list")),
    ("resume", f"{FINAL}/state.json", "ep_info_buffer", _values("text", "mapping", "huge")),
    ("resume", f"{FINAL}/state.json", "ep_info_buffer.0.r", _values("huge", "nan", "inf", "text", "missing")),
    ("resume", f"{FINAL}/state.json", "ep_info_buffer.0.l", _values("huge", "negative", "nan")),
    ("resume", f"{FINAL}/state.json", "extra", _values("huge", "text", "list", "missing")),
    ("resume", f"{FINAL}/state.json", "extra.train_seconds", _values("huge", "negative", "inf", "text")),
    ("resume", f"{FINAL}/state.json", "extra.training_done", _values("text", "huge")),
    ("resume", f"{FINAL}/state.json", "logger", _values("list", "missing")),
    ("resume", f"{FINAL}/state.json", "logger.values", _values("text")),
    ("resume", f"{FINAL}/state.json", "logger.counts", _values("text", "list")),
    ("resume", f"{FINAL}/state.json", "rng", _values("text", "missing", "mapping")),
    ("resume", f"{FINAL}/state.json", "rng.numpy_random.1", _values("huge", "negative", "nan")),
    ("resume", f"{FINAL}/state.json", "level_sampler", _values("huge", "text", "mapping")),
    ("resume", f"{FINAL}/state.json", "env", _values("list", "missing")),
    # the run's evaluation lists and status
    ("resume", "split.json", "eval_levels", _values("huge", "text", "list", "missing")),
    ("resume", "split.json", "eval_levels.test", _values("text", "mapping", "huge")),
    ("resume", "split.json", "eval_levels.test.0.seed", _values("huge", "negative", "nan", "text", "missing")),
    ("resume", "split.json", "eval_levels.test.0.context.gravity", _values("huge", "nan", "inf", "text")),
    ("resume", "status.json", "step", _values("huge", "negative", "nan", "inf", "text", "true")),
    ("resume", "status.json", "total", _values("huge", "text")),
    ("resume", "status.json", "pid", _values("huge", "negative", "nan", "text")),
    ("resume", "config.yaml", "seed", _values("huge", "negative", "text")),
    ("resume", "config.yaml", "agent_kwargs.gamma", _values("huge", "nan", "text")),
    # the final checkpoint of heldout eval
    ("eval", f"{FINAL}/manifest.json", "files", _values("huge", "text", "list", "null", "mapping", "missing")),
    ("eval", f"{FINAL}/state.json", "extra", _values("huge", "text", "list")),
    ("eval", f"{FINAL}/state.json", "extra.training_done", _values("text", "huge")),
    ("eval", "config.yaml", "timesteps", _values("huge", "negative", "nan")),
    ("eval", "config.yaml", "agent_kwargs.learning_rate", _values("huge", "inf")),
    # what heldout report reads
    ("report", "summary.json", "timesteps", _values("huge", "negative", "inf", "text")),
    ("report", "summary.json", "seed", _values("huge", "nan")),
    ("report", "summary.json", "splits", _values("text", "huge", "missing")),
    ("report", "summary.json", "splits.test.mean", _values("huge", "nan", "inf", "text")),
    ("report", "config.yaml", "seed", _values("huge", "negative", "text")),
    ("report", "config.yaml", "timesteps", _values("huge", "nan")),
    ("report", "config.yaml", "context_bins", _values("huge", "negative", "text")),
    ("report", "eval/test.csv", "return", _values("huge", "nan", "inf", "text")),
    ("report", "eval/test.csv", "level", _values("huge", "negative", "text")),
]  # fmt: skip


def _params() -> list[Any]:
    return [
        pytest.param(cmd, file, field, value, id=f"{cmd}-{file.rsplit('/', 1)[-1]}-{field}-{value}")
        for cmd, file, field, values in CASES
        for value in values
    ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from heldout.cli import main

    root = tmp_path_factory.mktemp("untrusted")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*FIXTURE_TRAIN, "--out", str(root / "out")]) == 0
    (made,) = (root / "out" / "cartpole" / "ppo").iterdir()
    return made


def digest(folder: Path) -> dict[str, str]:
    """A SHA-256 of every file under ``folder`` (and the set of its paths)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def rehash(checkpoint: Path) -> None:
    """Writes the checkpoint's manifest again from its files, as a forger would."""
    manifest = json.loads((checkpoint / "manifest.json").read_text())
    for name in manifest["files"]:
        manifest["files"][name] = hashlib.sha256((checkpoint / name).read_bytes()).hexdigest()
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def set_field(data: Any, field: str, value: Any) -> None:
    *parents, last = field.split(".")
    for key in parents:
        data = data[int(key)] if isinstance(data, list) else data[key]
    if isinstance(data, list):
        data[int(last)] = value
    elif value is MISSING:
        del data[last]
    else:
        data[last] = value


def to_json(data: Any) -> str:
    """JSON as Python writes it (NaN, Infinity), with the huge integer written out in digits."""
    return json.dumps(data, default=str)


def to_yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def spoil(run: Path, file: str, field: str, value: Any) -> None:
    """Sets ``field`` of ``run/file`` to ``value`` (``MISSING``: deletes it)."""
    path = run / file
    if path.suffix == ".csv":  # the first row's cell of column ``field``
        rows = path.read_text().splitlines()
        col = rows[0].split(",").index(field)
        cells = rows[1].split(",")
        cells[col] = "" if value is MISSING else str(value)
        path.write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
        return
    yaml_file = path.suffix == ".yaml"
    import yaml

    data = yaml.safe_load(path.read_text()) if yaml_file else json.loads(path.read_text())
    set_field(data, field, value)
    path.write_text(to_yaml(data) if yaml_file else to_json(data))
    if file.startswith("checkpoints/") and not file.endswith("manifest.json"):
        rehash(path.parent)


def interrupted(run: Path) -> None:
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "interrupted"}))


def run_cli(argv: list[str]) -> tuple[Any, str]:
    from heldout.cli import main

    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code: Any = main(argv)
        except BaseException as exc:  # noqa: BLE001 - a traceback is the failure this test looks for
            code = f"{type(exc).__name__}: {exc}"[:300]
    return code, err.getvalue()


def command(cmd: str, run: Path) -> list[str]:
    return {
        "resume": ["train", "--resume", str(run), "--no-progress"],
        "eval": ["eval", str(run), "--split", "test", "--episodes", "1", "--no-progress"],
        "report": ["report", str(run), "--out", str(run.parent / "report"), "--no-plots", "--reps", "10"],
    }[cmd]


@pytest.mark.parametrize(("cmd", "file", "field", "value"), _params())
def test_a_hostile_field_is_refused_in_one_line_and_nothing_changes(
    reference: Path, tmp_path: Path, cmd: str, file: str, field: str, value: str
) -> None:
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    if cmd == "resume":
        interrupted(run)
    hostile = VALUES[value]
    if file == "status.json" and field == "pid":  # a live-looking run on this host: its pid is used
        status = json.loads((run / "status.json").read_text())
        (run / "status.json").write_text(
            json.dumps({**status, "state": "running", "host": socket.gethostname()})
        )
    spoil(run, file, field, hostile)
    before = digest(run)
    code, err = run_cli(command(cmd, run))
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err[-600:])
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert file.rsplit("/", 1)[-1].split(".")[0] in lines[0] or str(run) in lines[0], lines[0]
    assert len(lines[0]) < 1000, "a value of any size is shown bounded"
    assert digest(run) == before, "a refused command changed the folder"


def test_a_progress_csv_with_a_bad_step_stops_a_resume_before_anything_changes(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    interrupted(run)
    rows = (run / "progress.csv").read_text().splitlines()
    header = rows[0].split(",")
    col = header.index("time/total_timesteps")
    cells = rows[1].split(",")
    cells[col] = "1e400"
    (run / "progress.csv").write_text("\n".join([rows[0], ",".join(cells), *rows[2:]]) + "\n")
    before = digest(run)
    code, err = run_cli([*command("resume", run), "--trust-pickle"])
    assert code == 2 and "progress.csv" in err and "line 2" in err, err
    assert digest(run) == before


def test_an_unsigned_env_state_stops_a_resume_before_anything_changes(reference, tmp_path):
    # the env pickle of another user (its signature is not ours): refused before command.txt or
    # progress.csv is touched (this check used to come after both)
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    interrupted(run)
    (run / FINAL / "envs.sig").write_text("0" * 64 + "\n")
    rehash(run / FINAL)
    before = digest(run)
    code, err = run_cli(command("resume", run))
    assert code == 2 and "--trust-pickle" in err, err
    assert digest(run) == before


def test_a_checkpoint_that_does_not_fit_the_config_stops_a_resume_before_the_logger_cuts(reference, tmp_path):
    import yaml

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    interrupted(run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["agent_kwargs"]["policy_kwargs"] = {"net_arch": [7]}  # another network than the weights'
    (run / "config.yaml").write_text(to_yaml(config))
    files = ("progress.csv", "command.txt", "status.json", "summary.json")
    before = {f: (run / f).read_bytes() for f in files}
    code, err = run_cli(command("resume", run))
    assert code == 2 and "does not fit" in err, err
    assert {f: (run / f).read_bytes() for f in files} == before


def test_a_corrupt_final_checkpoint_is_named_with_both_checksums(reference, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(reference, run)
    weights = run / FINAL / "weights.pt"
    expected = json.loads((run / FINAL / "manifest.json").read_text())["files"]["weights.pt"]
    weights.write_bytes(weights.read_bytes()[:-7] + b"garbage")
    actual = hashlib.sha256(weights.read_bytes()).hexdigest()
    code, err = run_cli(command("eval", run))
    assert code == 2, err
    assert "weights.pt" in err and str(run / FINAL) in err
    assert expected in err and actual in err and expected != actual
    assert "no checkpoint" not in err


def test_a_running_status_with_a_pid_beyond_a_c_int_is_refused_by_the_sweep_plan(reference, tmp_path):
    from heldout.protocol.status import read_status

    run = tmp_path / "run"
    shutil.copytree(reference, run)
    status = json.loads((run / "status.json").read_text())
    for pid in (BIG, 2**40, 0, -1):
        (run / "status.json").write_text(
            to_json({**status, "state": "running", "host": socket.gethostname(), "pid": pid})
        )
        with pytest.raises(ValueError, match="status.json': pid must be an integer in"):
            read_status(run)


def test_a_hostile_status_step_counts_as_no_progress(tmp_path):
    from heldout.sweep.progress import step_of

    for step, seen in ((BIG, 0), (float("inf"), 0), ("12", 0), (True, 0), (-3, 0), (40, 40)):
        (tmp_path / "status.json").write_text(to_json({"state": "running", "step": step}))
        assert step_of(tmp_path) == seen


def test_check_fields_names_the_file_key_and_bounded_value():
    from heldout.protocol.checks import check_fields

    with pytest.raises(
        ValueError, match=r"^'f.json': step must be an integer in \[0, \d+\], got an integer of 401 digits$"
    ):
        check_fields({"step": BIG}, {"step": "count"}, "'f.json'")
    with pytest.raises(ValueError, match=r"'f.json' has no 'step'"):
        check_fields({}, {"step": "count"}, "'f.json'")
    with pytest.raises(ValueError, match="must be a finite number, got nan"):
        check_fields({"x": float("nan")}, {"x": "number"}, "'f.json'")
    with pytest.raises(ValueError, match="must be true or false, got 1"):
        check_fields({"x": 1}, {"x": "bool"}, "'f.json'")
    assert check_fields({"x": None}, {"x": "count?", "y": (1, 5, "?")}, "'f.json'") == {"x": None}
    with pytest.raises(ValueError, match=r"y must be an integer in \[1, 5\], got 9"):
        check_fields({"y": 9}, {"y": (1, 5, "?")}, "'f.json'")


def test_check_number_refuses_an_integer_beyond_a_float():
    from heldout.protocol.checks import check_number

    with pytest.raises(ValueError, match="gamma must be a number in"):
        check_number("gamma", BIG, 0, 1)
