"""Checkpoints that hold everything which decides the rest of a run, so a killed run resumes exactly.

A checkpoint is taken at an update boundary, never mid-rollout: when a rollout is about to start
(the previous update done) and once more when training ends, before the final evaluation. It is a
folder ``checkpoints/step-<N>/`` written under a temporary name and renamed, holding:

* ``weights.pt``: the policy's and optimiser's state, torch's CPU and CUDA generators, and the
  agent's own state (augmentation generators, extra networks and optimisers, the UCB bandit), read
  back with ``torch.load(weights_only=True)``: tensors and plain containers, never code;
* ``arrays.npz``: the last observations and episode starts, reward-normalisation statistics and
  running returns, numpy's global generator, read back with ``allow_pickle=False``;
* ``state.json``: counters, python's generator, the episode-statistics buffers, the values the
  logger holds for its next row, a learning level sampler's state (PLR: scores, staleness, seen
  levels, buffer, generator);
* ``envs.pkl`` + ``envs.sig``: the env state that has no plain form (the gymnasium envs inside SB3's
  ``DummyVecEnv``, wrapper state), pickled and signed with an HMAC key private to this user
  (``~/.config/heldout/signing.key``). It is loaded only when the signature is this user's, or with
  ``trust_pickle=True`` (``--trust-pickle``): a pickle from someone else runs the code it carries.
  Procgen's native env is saved through procgen's own state API instead (bytes, no pickle);
* ``manifest.json``: the step and a SHA-256 of every file; a checkpoint whose files do not match it
  is corrupt and skipped (:func:`latest_checkpoint` then takes the one before, with a warning).

SB3's own ``save``/``load`` keeps weights and optimiser but no generator, env or normaliser state
(stable-baselines3 issue 1526), so a run resumed from it diverges at once; this one continues the
same stream of random numbers, the same envs mid-episode and the same logger rows.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import pickle
import random
import secrets
import shutil
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CHECKPOINTS = "checkpoints"
#: Checkpoints kept by default (older ones are deleted once a new one is complete).
DEFAULT_KEEP = 2


# -- signing the pickled part ---------------------------------------------------------------------


def signing_key() -> bytes:
    """This user's HMAC key (created, mode 0600, on first use). ``HELDOUT_SIGNING_KEY`` names another file."""
    path = Path(os.environ.get("HELDOUT_SIGNING_KEY", "~/.config/heldout/signing.key")).expanduser()
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def _signature(data: bytes) -> str:
    return hmac.new(signing_key(), data, hashlib.sha256).hexdigest()


def load_signed_pickle(data: bytes, signature: str, what: str, trust_pickle: bool = False) -> Any:
    """Unpickles ``data`` if ``signature`` is this user's, or if ``trust_pickle``; else ValueError."""
    if not trust_pickle and not hmac.compare_digest(_signature(data), signature.strip()):
        raise ValueError(
            f"{what} was not written by you (its signature is not this user's): loading it would run the "
            "code it carries; pass --trust-pickle if you trust whoever wrote it"
        )
    return pickle.loads(data)  # noqa: S301 - signed by this user, or trusted explicitly


# -- generators -----------------------------------------------------------------------------------


def _global_rng_state() -> tuple[dict[str, Any], dict[str, np.ndarray], dict[str, Any]]:
    """(json, arrays, tensors) of python's, numpy's and torch's global generators."""
    import torch

    version, py_state, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)  # type: ignore[misc]
    tensors: dict[str, Any] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda_rng"] = torch.cuda.get_rng_state_all()
    json_part = {
        "python_random": [version, list(py_state), gauss],
        "numpy_random": [name, int(pos), int(has_gauss), float(cached)],
    }
    return json_part, {"numpy_random_keys": np.asarray(keys)}, tensors


def _set_global_rng_state(json_part: dict[str, Any], arrays: Any, tensors: dict[str, Any]) -> None:
    import torch

    version, py_state, gauss = json_part["python_random"]
    random.setstate((version, tuple(py_state), gauss))
    name, pos, has_gauss, cached = json_part["numpy_random"]
    np.random.set_state((name, arrays["numpy_random_keys"], pos, has_gauss, cached))
    torch.set_rng_state(tensors["torch_rng"])
    if "cuda_rng" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])


# -- the agent's own state ------------------------------------------------------------------------


def _agent_state(model: Any) -> dict[str, Any]:
    """Generators, extra networks and optimisers, ``state_dict``-bearing helpers (the UCB bandit), and
    the plain attributes an agent lists in ``checkpoint_attributes``."""
    import torch

    state: dict[str, Any] = {}
    for name, value in sorted(vars(model).items()):
        if name in ("policy", "policy_class", "env", "_vec_normalize_env", "rollout_buffer", "replay_buffer"):
            continue
        if isinstance(value, torch.Generator):
            state[name] = {"generator": value.get_state()}
        elif isinstance(value, (torch.nn.Module, torch.optim.Optimizer)):
            state[name] = {"state_dict": value.state_dict()}
        elif (
            hasattr(value, "state_dict") and hasattr(value, "load_state_dict") and not isinstance(value, type)
        ):
            state[name] = {"state_dict": value.state_dict()}
    for name in getattr(model, "checkpoint_attributes", ()):  # plain values an agent names itself
        state[name] = {"value": getattr(model, name)}
    return state


def _set_agent_state(model: Any, state: dict[str, Any]) -> None:
    for name, entry in state.items():
        target = getattr(model, name)
        if "value" in entry:
            setattr(model, name, entry["value"])
        elif "generator" in entry:
            target.set_state(entry["generator"])
        else:
            target.load_state_dict(entry["state_dict"])


def _sampler_state(model: Any) -> dict[str, Any] | None:
    """The state of the env's learning level sampler (PLR: scores, staleness, seen levels, buffer,
    generator), as JSON; None without one."""
    from heldout.agents.level_replay import scoring_sampler

    sampler = scoring_sampler(model.get_env())
    return None if sampler is None else sampler.get_state()


# -- the env chain --------------------------------------------------------------------------------


def _layers(venv: Any) -> list[Any]:
    """The VecEnv chain from the outermost wrapper to the innermost env."""
    chain = [venv]
    while hasattr(chain[-1], "venv"):
        chain.append(chain[-1].venv)
    return chain


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
    except Exception:  # noqa: BLE001 - any failure means: cannot be saved this way
        return False
    return True


def _holds_state(envs: list[Any]) -> bool:
    """Whether pickling ``envs`` saves their state: gymnasium's ``EzPickle`` envs (Box2D, MuJoCo)
    pickle their constructor arguments and come back as new envs, not as the envs they were."""
    from gymnasium.utils import EzPickle

    return not any(isinstance(getattr(env, "unwrapped", env), EzPickle) for env in envs)


def _env_state(venv: Any) -> tuple[dict[str, np.ndarray], dict[str, Any], bytes | None]:
    """(arrays, json, pickle or None) of every layer of the env chain.

    What cannot be pickled (an open log file of a wrapper, Box2D's world) is left out and named in
    ``json["unsaved"]``: a run resumed from such a checkpoint is not exact, and says so.
    """
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize, VecTransposeImage

    arrays: dict[str, np.ndarray] = {}
    info: dict[str, Any] = {"layers": [], "unsaved": []}
    pickled: dict[int, Any] = {}
    for i, layer in enumerate(_layers(venv)):
        kind = type(layer).__name__
        info["layers"].append(kind)
        if isinstance(layer, VecNormalize):
            arrays[f"{i}/returns"] = np.asarray(layer.returns)
            arrays[f"{i}/ret_mean"] = np.asarray(layer.ret_rms.mean)
            arrays[f"{i}/ret_var"] = np.asarray(layer.ret_rms.var)
            arrays[f"{i}/ret_count"] = np.asarray(layer.ret_rms.count)
            if layer.norm_obs:
                pickled[i] = {"obs_rms": layer.obs_rms}
        elif isinstance(layer, VecTransposeImage):
            continue
        elif hasattr(layer, "get_checkpoint_state"):  # heldout's native envs: plain state
            sub_arrays, sub_json = layer.get_checkpoint_state()
            arrays.update({f"{i}/{k}": v for k, v in sub_arrays.items()})
            info[str(i)] = sub_json
        elif isinstance(layer, DummyVecEnv):
            if _holds_state(layer.envs) and _picklable(layer.envs):
                pickled[i] = {"envs": layer.envs}
            else:
                info["unsaved"].append(f"the {kind} envs ({type(layer.envs[0].unwrapped).__name__})")
        else:  # a wrapper of ours or the user's: its own attributes, the inner env left out
            attrs = {k: v for k, v in vars(layer).items() if k != "venv"}
            kept = {k: v for k, v in attrs.items() if _picklable(v)}
            info["unsaved"] += [f"{kind}.{k}" for k in sorted(set(attrs) - set(kept))]
            pickled[i] = {"dict": kept}
    data = pickle.dumps(pickled) if pickled else None
    return arrays, info, data


def _set_env_state(venv: Any, arrays: Any, info: dict[str, Any], pickled: dict[int, Any]) -> bool:
    """Restores the env chain; True if its envs could not be saved and must be reset."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    reset = False
    layers = _layers(venv)
    kinds = [type(layer).__name__ for layer in layers]
    if kinds != info["layers"]:
        raise ValueError(f"the checkpoint's envs are {info['layers']}, the run builds {kinds}")
    for i, layer in enumerate(layers):
        if isinstance(layer, VecNormalize):
            layer.returns = arrays[f"{i}/returns"].copy()
            layer.ret_rms.mean = arrays[f"{i}/ret_mean"].copy()
            layer.ret_rms.var = arrays[f"{i}/ret_var"].copy()
            layer.ret_rms.count = float(arrays[f"{i}/ret_count"])
            if i in pickled:
                layer.obs_rms = pickled[i]["obs_rms"]
        elif hasattr(layer, "set_checkpoint_state") and str(i) in info:
            prefix = f"{i}/"
            layer.set_checkpoint_state(
                {k[len(prefix) :]: arrays[k] for k in arrays if k.startswith(prefix)}, info[str(i)]
            )
        elif isinstance(layer, DummyVecEnv) and i in pickled:
            # a level sampler (PLR) is shared by the envs and the agent and is left out of their
            # pickle: the restored envs get the run's own sampler back (its state follows separately)
            samplers = [getattr(getattr(env, "unwrapped", env), "level_sampler", None) for env in layer.envs]
            for env in layer.envs:
                env.close()
            layer.envs = pickled[i]["envs"]
            for env, sampler in zip(layer.envs, samplers):
                if sampler is not None:
                    env.unwrapped.level_sampler = sampler
        elif isinstance(layer, DummyVecEnv):  # its envs could not be saved: they start afresh
            reset = True
        elif i in pickled:
            vars(layer).update(pickled[i]["dict"])
    return reset


# -- observations ---------------------------------------------------------------------------------


def _put_obs(arrays: dict[str, np.ndarray], name: str, obs: Any) -> None:
    if obs is None:
        return
    if isinstance(obs, dict):
        for key, value in obs.items():
            arrays[f"{name}/{key}"] = np.asarray(value)
    else:
        arrays[name] = np.asarray(obs)


def _get_obs(arrays: dict[str, np.ndarray], name: str) -> Any:
    if name in arrays:
        return arrays[name].copy()
    keys = [k for k in arrays if k.startswith(name + "/")]
    if not keys:
        return None
    return {k[len(name) + 1 :]: arrays[k].copy() for k in keys}


# -- save / find / restore ------------------------------------------------------------------------


def _load_weights(path: Path, device: Any) -> dict[str, Any]:
    """``torch.load(weights_only=True)``: tensors and plain containers; anything else is refused."""
    import torch

    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle.UnpicklingError, RuntimeError, EOFError, ...
        raise ValueError(
            f"{str(path)!r} is no weights file heldout loads safely ({type(exc).__name__}): it holds more "
            "than tensors and plain values"
        ) from None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_checkpoint(
    model: Any, run_dir: str | os.PathLike[str], extra: dict[str, Any] | None = None, keep: int = DEFAULT_KEEP
) -> Path:
    """Writes ``checkpoints/step-<num_timesteps>/`` (atomically: temporary folder, fsync, rename) and
    deletes all but the newest ``keep`` checkpoints. ``extra``: JSON the caller gets back on resume."""
    rng_json, rng_arrays, rng_tensors = _global_rng_state()
    weights = {
        "policy": model.policy.state_dict(),
        "optimizer": model.policy.optimizer.state_dict(),
        "agent": _agent_state(model),
        **rng_tensors,
    }
    env_arrays, env_json, env_pickle = _env_state(model.get_env())
    arrays = {**rng_arrays, **env_arrays}
    _put_obs(arrays, "last_obs", model._last_obs)
    _put_obs(arrays, "last_original_obs", getattr(model, "_last_original_obs", None))
    if getattr(model, "_last_episode_starts", None) is not None:
        arrays["last_episode_starts"] = np.asarray(model._last_episode_starts)
    state = {
        "n_updates": int(getattr(model, "_n_updates", 0)),
        "episode_num": int(getattr(model, "_episode_num", 0)),
        "ep_info_buffer": list(model.ep_info_buffer or []),
        "ep_success_buffer": [bool(x) for x in (model.ep_success_buffer or [])],
        "env": env_json,
        "level_sampler": _sampler_state(model),
    }
    return write_checkpoint(
        run_dir,
        int(model.num_timesteps),
        weights,
        arrays,
        state,
        model.logger,
        rng_json,
        extra,
        keep,
        env_pickle,
    )


def logger_state(logger: Any) -> dict[str, Any]:
    """The values SB3's ``logger`` holds for its next row: plain values only (a histogram, e.g.
    plr/level_weights, is not kept), and their counts and exclusions."""
    values = {k: v for k, v in logger.name_to_value.items() if isinstance(v, (int, float, str))}
    return {
        "values": values,
        "counts": {k: v for k, v in logger.name_to_count.items() if k in values},
        "excluded": {k: list(v) if v else v for k, v in logger.name_to_excluded.items() if k in values},
    }


def write_checkpoint(
    run_dir: str | os.PathLike[str],
    step: int,
    weights: dict[str, Any],
    arrays: dict[str, np.ndarray],
    state: dict[str, Any],
    logger: Any,
    rng_json: dict[str, Any],
    extra: dict[str, Any] | None = None,
    keep: int = DEFAULT_KEEP,
    env_pickle: bytes | None = None,
) -> Path:
    """Writes checkpoint folder ``checkpoints/step-<step>/`` (temporary folder, fsync, rename) from its
    parts (``state``: the fields of :data:`STATE_FIELDS` but the step, logger, rng and extra ones) and
    deletes all but the newest ``keep`` checkpoints; the one writer of online and offline runs."""
    import torch

    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step}"
    tmp = root / f".step-{step}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    buf = io.BytesIO()
    torch.save(weights, buf)
    _fsync_write(tmp / "weights.pt", buf.getvalue())
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    _fsync_write(tmp / "arrays.npz", buf.getvalue())
    full = {
        "step": step,
        "num_timesteps": step,
        **state,
        "logger": logger_state(logger),
        "rng": rng_json,
        "extra": extra or {},
    }
    _fsync_write(tmp / "state.json", (json.dumps(full, default=float) + "\n").encode())
    if env_pickle is not None:
        _fsync_write(tmp / "envs.pkl", env_pickle)
        _fsync_write(tmp / "envs.sig", (_signature(env_pickle) + "\n").encode())
    files = {p.name: _sha256(p) for p in sorted(tmp.iterdir())}
    _fsync_write(
        tmp / "manifest.json", (json.dumps({"step": step, "files": files}, indent=2) + "\n").encode()
    )
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in checkpoints(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def checkpoints(run_dir: str | os.PathLike[str]) -> list[Path]:
    """The run's checkpoint folders, oldest first (temporary ones left out)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        if path.is_dir() and path.name.startswith("step-") and path.name[5:].isdigit():
            found.append((int(path.name[5:]), path))
    return [p for _, p in sorted(found)]


#: The files every checkpoint holds (``envs.pkl`` and ``envs.sig`` only where the env needs them).
REQUIRED_FILES = ("weights.pt", "arrays.npz", "state.json")


def verify(path: Path) -> str | None:
    """None if every file of checkpoint ``path`` matches its manifest, else what is wrong: the file,
    with the checksum the manifest expects and the one the file has."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "no readable manifest.json"
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "/" not in k and k not in (".", "..")
        for k, v in files.items()
    ):
        return "manifest.json lists no files (a mapping of file names to SHA-256 checksums)"
    for name, digest in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        actual = _sha256(file)
        if actual != digest:
            return (
                f"{name} does not match its checksum (manifest: sha256 {digest[:64]}, file: sha256 {actual})"
            )
    return None


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> tuple[Path | None, list[str]]:
    """The newest intact checkpoint and a warning for each newer one that is corrupt."""
    warnings: list[str] = []
    for path in reversed(checkpoints(run_dir)):
        problem = verify(path)
        if problem is None:
            return path, warnings
        warnings.append(f"checkpoint {str(path)!r} is corrupt ({problem}); using the one before")
    return None, warnings


#: The fields of ``state.json`` and their kinds (:func:`heldout.protocol.checks.check_fields`).
STATE_FIELDS: dict[str, Any] = {
    "step": "count",
    "num_timesteps": "count",
    "n_updates": "count",
    "episode_num": "count",
    "ep_info_buffer": "list",
    "ep_success_buffer": "list",
    "logger": "mapping",
    "env": "mapping",
    "level_sampler": "mapping?",
    "rng": "mapping",
    "extra": "mapping",
}


def check_state(state: Any, where: str, step: int) -> dict[str, Any]:
    """``state.json`` of the checkpoint of ``step``, checked field by field (untrusted input).

    Raises:
        ValueError: one line naming ``where``, the field and the bad value.
    """
    from heldout.protocol.checks import MAX_RECORDED, check_fields, check_number, shown

    check_fields(state, STATE_FIELDS, where)
    for key in ("step", "num_timesteps"):
        if state[key] != step:
            raise ValueError(f"{where}: {key} is {shown(state[key])}, but the checkpoint is step-{step}")
    for i, info in enumerate(state["ep_info_buffer"]):
        check_fields(info, {"r": "number", "l": "count", "t": "number"}, f"{where}: ep_info_buffer[{i}]")
    if not all(isinstance(x, bool) for x in state["ep_success_buffer"]):
        raise ValueError(f"{where}: ep_success_buffer must be a list of true / false")
    logger = check_fields(
        state["logger"], {"values": "mapping", "counts": "mapping", "excluded": "mapping"}, where
    )
    for key, value in logger["values"].items():
        plain = isinstance(value, (str, float)) or (isinstance(value, int) and abs(value) <= MAX_RECORDED)
        if not plain:
            raise ValueError(f"{where}: logger value {key!r} must be a number or text, got {shown(value)}")
    check_fields(logger["counts"], dict.fromkeys(logger["counts"], "count"), f"{where}: logger counts")
    for key, value in logger["excluded"].items():
        if not (
            value is None
            or isinstance(value, str)
            or (isinstance(value, list) and all(isinstance(x, str) for x in value))
        ):
            raise ValueError(
                f"{where}: logger excluded {key!r} must be text or a list of text, got {shown(value)}"
            )
    env = check_fields(state["env"], {"layers": "list", "unsaved": "list?"}, f"{where}: env")
    if not all(isinstance(x, str) for x in env["layers"] + (env.get("unsaved") or [])):
        raise ValueError(f"{where}: env layers must be a list of names")
    rng = check_fields(state["rng"], {"python_random": "list", "numpy_random": "list"}, f"{where}: rng")
    py, npy = rng["python_random"], rng["numpy_random"]
    if not (
        len(py) == 3
        and isinstance(py[1], list)
        and len(py[1]) == 625
        and all(isinstance(x, int) and not isinstance(x, bool) and 0 <= x < 2**32 for x in py[1])
        and len(npy) == 4
        and isinstance(npy[0], str)
    ):
        raise ValueError(f"{where}: rng holds no generator states (python_random, numpy_random)")
    check_fields(
        {"version": py[0], "position": npy[1], "has_gauss": npy[2]},
        {"version": (0, 10), "position": (0, 624), "has_gauss": (0, 1)},
        f"{where}: rng",
    )
    for value in (py[2], npy[3]):
        if value is not None:
            check_number(f"{where}: rng gauss", value)
    extra = check_fields(
        state["extra"], {"training_done": "bool?", "train_seconds": "number?"}, f"{where}: extra"
    )
    if extra.get("train_seconds") is not None and extra["train_seconds"] < 0:
        raise ValueError(f"{where}: extra train_seconds must be >= 0, got {shown(extra['train_seconds'])}")
    return state


@dataclass
class Checkpoint:
    """A checkpoint read into memory and checked (:func:`read_checkpoint`): nothing of it is read
    again when it is put into a model.

    Attributes:
        path: Its folder.
        step: Its step.
        state: ``state.json``, checked (:func:`check_state`).
        weights: ``weights.pt`` (tensors and plain containers).
        arrays: ``arrays.npz``, as ``{name: array}``.
        pickled: The env state of ``envs.pkl`` (``{}`` without one).
    """

    path: Path
    step: int
    state: dict[str, Any]
    weights: dict[str, Any]
    arrays: dict[str, np.ndarray]
    pickled: dict[int, Any]

    @property
    def extra(self) -> dict[str, Any]:
        """The ``extra`` saved with it (``training_done``, ``train_seconds``)."""
        return self.state["extra"]


def read_checkpoint(
    path: str | os.PathLike[str], trust_pickle: bool = False, device: Any = "cpu", envs: bool = True
) -> Checkpoint:
    """Reads checkpoint ``path`` whole and checks every part of it, changing nothing: its files
    against the manifest, ``state.json`` field by field, the weights (``weights_only``), the arrays
    (no pickle) and, with ``envs``, the env pickle's signature (see ``trust_pickle``) before it is
    unpickled (without ``envs`` it is not read at all: ``pickled`` is ``{}``).

    Raises:
        ValueError: naming the file and what is wrong with it.
    """
    from heldout.protocol.run_folder import read_json

    path = Path(path)
    if not path.name.startswith("step-") or not path.name[5:].isdigit():
        raise ValueError(f"{str(path)!r} is no checkpoint folder (step-N)")
    problem = verify(path)
    if problem is not None:
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: {problem}")
    listed = json.loads((path / "manifest.json").read_text())["files"]  # verified readable above
    missing = [name for name in REQUIRED_FILES if name not in listed]
    if missing:
        raise ValueError(
            f"checkpoint {str(path)!r} is incomplete: its manifest.json does not list {missing[0]}"
        )
    step = int(path.name[5:])
    state = check_state(read_json(path / "state.json"), repr(str(path / "state.json")), step)
    weights = _load_weights(path / "weights.pt", device)
    if (
        not isinstance(weights, dict)
        or not all(isinstance(weights.get(k), dict) for k in ("policy", "optimizer", "agent"))
        or "torch_rng" not in weights
    ):
        raise ValueError(
            f"{str(path / 'weights.pt')!r} holds no policy, optimizer, agent and torch_rng state"
        )
    try:
        with np.load(path / "arrays.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - OSError, ValueError, zipfile.BadZipFile, ...
        raise ValueError(
            f"{str(path / 'arrays.npz')!r} is no plain array file ({type(exc).__name__})"
        ) from None
    if "numpy_random_keys" not in arrays:
        raise ValueError(f"{str(path / 'arrays.npz')!r} holds no numpy_random_keys")
    pickled: dict[int, Any] = {}
    if envs and (path / "envs.pkl").is_file():
        if not (path / "envs.sig").is_file():
            raise ValueError(f"{str(path / 'envs.pkl')!r} has no signature (envs.sig)")
        pickled = load_signed_pickle(
            (path / "envs.pkl").read_bytes(),
            (path / "envs.sig").read_text(),
            f"the env state of checkpoint {str(path)!r}",
            trust_pickle,
        )
        if not isinstance(pickled, dict):
            raise ValueError(f"{str(path / 'envs.pkl')!r} holds no env state")
    return Checkpoint(path, step, state, weights, arrays, pickled)


def restore_checkpoint(
    model: Any,
    checkpoint: Checkpoint | str | os.PathLike[str],
    trust_pickle: bool = False,
    logger: bool = True,
) -> dict[str, Any]:
    """Puts ``checkpoint`` (read by :func:`read_checkpoint`, or its folder) into ``model`` (built as the
    run built it) and its env; returns the ``extra`` saved with it. The model's generators are set
    last, as they were saved. ``logger``: also put the values the logger held for its next row into
    ``model.logger`` (else :func:`restore_logger` does, once the logger is made).

    Raises:
        ValueError: the checkpoint does not fit the model or env the run builds (its config changed).
    """
    if not isinstance(checkpoint, Checkpoint):
        checkpoint = read_checkpoint(checkpoint, trust_pickle=trust_pickle, device=model.device)
    state, weights, arrays = checkpoint.state, checkpoint.weights, checkpoint.arrays
    try:
        model.policy.load_state_dict(weights["policy"])
        model.policy.optimizer.load_state_dict(weights["optimizer"])
        _set_agent_state(model, weights["agent"])
    except (RuntimeError, KeyError, AttributeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"checkpoint {str(checkpoint.path)!r} does not fit the model its run's config builds: {first}"
        ) from None
    reset = _set_env_state(model.get_env(), arrays, state["env"], checkpoint.pickled)
    if state.get("level_sampler") is not None:
        from heldout.agents.level_replay import scoring_sampler

        sampler = scoring_sampler(model.get_env())
        if sampler is None:
            raise ValueError(
                f"checkpoint {str(checkpoint.path)!r} holds a level sampler's state, but its run trains without one"
            )
        sampler.set_state(state["level_sampler"])
    model.num_timesteps = int(state["num_timesteps"])
    model._n_updates = int(state["n_updates"])
    if hasattr(model, "_episode_num"):
        model._episode_num = int(state["episode_num"])
    model._last_obs = None if reset else _get_obs(arrays, "last_obs")  # None: SB3 resets the envs
    model._last_original_obs = _get_obs(arrays, "last_original_obs")
    if "last_episode_starts" in arrays:
        model._last_episode_starts = arrays["last_episode_starts"].copy()
    window = getattr(model, "_stats_window_size", 100)
    model.ep_info_buffer = deque(state["ep_info_buffer"], maxlen=window)
    model.ep_success_buffer = deque(state["ep_success_buffer"], maxlen=window)
    if logger:
        restore_logger(model.logger, checkpoint)
    _set_global_rng_state(state["rng"], arrays, weights)
    unsaved = state["env"].get("unsaved") or []
    return {**state["extra"], "not_exact": unsaved}


def save_offline_checkpoint(
    model: Any, run_dir: str | os.PathLike[str], extra: dict[str, Any] | None = None, keep: int = DEFAULT_KEEP
) -> Path:
    """Writes the checkpoint of an offline run (:class:`heldout.protocol.offline.OfflineModel`): the
    agent's ``state_dict`` (networks, targets, optimisers, generator, step) as ``weights.pt``'s
    ``agent``, the update count (which fixes the next minibatch), the global generators and the
    logger; no env. The same folder and checks as an online checkpoint."""
    rng_json, rng_arrays, rng_tensors = _global_rng_state()
    weights = {"policy": {}, "optimizer": {}, "agent": model.agent.state_dict(), **rng_tensors}
    state = {
        "n_updates": int(model.n_updates),
        "episode_num": 0,
        "ep_info_buffer": [],
        "ep_success_buffer": [],
        "env": {"layers": []},
        "level_sampler": None,
    }
    return write_checkpoint(
        run_dir, int(model.num_timesteps), weights, rng_arrays, state, model.logger, rng_json, extra, keep
    )


def restore_offline_checkpoint(model: Any, checkpoint: Checkpoint) -> dict[str, Any]:
    """Puts an offline run's ``checkpoint`` into ``model`` (built as the run built it); returns its
    ``extra``. The next minibatch is the one the uninterrupted run would have taken.

    Raises:
        ValueError: the checkpoint does not fit the agent the run's config builds.
    """
    try:
        model.agent.load_state_dict(checkpoint.weights["agent"])
    except (RuntimeError, KeyError, AttributeError, TypeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(
            f"checkpoint {str(checkpoint.path)!r} does not fit the offline agent its run's config builds: {first}"
        ) from None
    model.num_timesteps = int(checkpoint.state["num_timesteps"])
    model.n_updates = int(checkpoint.state["n_updates"])
    _set_global_rng_state(checkpoint.state["rng"], checkpoint.arrays, checkpoint.weights)
    return {**checkpoint.state["extra"], "not_exact": []}


def restore_logger(logger: Any, checkpoint: Checkpoint) -> None:
    """Puts the values the logger held for its next row at ``checkpoint`` into SB3's ``logger``."""
    saved = checkpoint.state["logger"]
    logger.name_to_value.update(saved["values"])
    logger.name_to_count.update(saved["counts"])
    logger.name_to_excluded.update(
        {k: tuple(v) if isinstance(v, list) else v for k, v in saved["excluded"].items()}
    )


def final_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint taken when training ended (before the final evaluation), if training ended.

    It is always the newest checkpoint (nothing is saved after it), so a newest checkpoint that is
    corrupt is an error that names its bad file, not "no checkpoint".

    Raises:
        ValueError: the newest checkpoint is corrupt (naming the file, the checksum its manifest
            expects and the one it has) or its ``state.json`` is malformed.
    """
    from heldout.protocol.checks import check_fields
    from heldout.protocol.run_folder import read_json

    found = checkpoints(run_dir)
    if not found:
        return None
    path = found[-1]
    problem = verify(path)
    if problem is not None:
        raise ValueError(
            f"the final checkpoint {str(path)!r} is corrupt: {problem}; the checkpoints before it are "
            "older weights (heldout eval --checkpoint STEP evaluates one)"
        )
    state = check_fields(read_json(path / "state.json"), {"extra": "mapping"}, repr(str(path / "state.json")))
    extra = check_fields(
        state["extra"], {"training_done": "bool?"}, repr(str(path / "state.json")) + ": extra"
    )
    return path if extra.get("training_done") else None


def find_checkpoint(run_dir: str | os.PathLike[str], spec: str) -> Path:
    """Checkpoint ``spec`` of a run: a folder path, ``step-N`` or ``N`` (its step); checked intact.

    Raises:
        ValueError: naming the checkpoint and the run's checkpoints.
    """
    candidates = [
        Path(spec),
        Path(run_dir) / CHECKPOINTS / spec,
        Path(run_dir) / CHECKPOINTS / f"step-{spec}",
    ]
    path = next((c for c in candidates if (c / "manifest.json").is_file()), None)
    if path is None:
        have = ", ".join(p.name for p in checkpoints(run_dir)) or "none"
        raise ValueError(f"no checkpoint {spec!r} in {str(run_dir)!r}; its checkpoints: {have}")
    problem = verify(path)
    if problem is not None:
        raise ValueError(f"checkpoint {str(path)!r} is corrupt: {problem}")
    return path


def trained_checkpoint(
    run_dir: str | os.PathLike[str], checkpoint: str | None = None, trust_pickle: bool = False
) -> Path | None:
    """The checkpoint whose weights a saved run is evaluated with: ``checkpoint`` (:func:`find_checkpoint`)
    or the final one (:func:`final_checkpoint`), checked intact; None: the run's ``model.zip``, which
    only ``trust_pickle`` allows. Cheap (checksums, no model): commands call it before any work.

    Raises:
        ValueError: naming the folder, the corrupt file or what to do.
    """
    path = find_checkpoint(run_dir, checkpoint) if checkpoint is not None else final_checkpoint(run_dir)
    if path is None and not trust_pickle:
        raise ValueError(
            f"{str(run_dir)!r} has no checkpoint of its trained model (a run folder of an older heldout, "
            "or one that did not finish training): its model.zip loads through pickle, which runs the "
            "code it carries; pass --trust-pickle if you trust whoever wrote it"
        )
    return path


def load_trained_model(
    config: Any,
    run_dir: str | os.PathLike[str],
    checkpoint: str | None = None,
    device: str = "auto",
    trust_pickle: bool = False,
) -> Any:
    """The run's agent with the weights of a checkpoint (default: the one at the end of training),
    built from the run's config and loaded with ``weights_only``: no pickle of the folder is read.

    A folder without such a checkpoint (written before checkpoints existed) has only ``model.zip``,
    which SB3 loads through pickle; that needs ``trust_pickle``.

    Raises:
        ValueError: naming the folder and what to do.
    """
    import warnings

    from heldout.agents import AGENTS
    from heldout.protocol.families import family_for
    from heldout.protocol.offline import build_agent, is_offline
    from heldout.protocol.validate import agent_parameters

    if is_offline(config.agent):  # no model.zip: the agent of a checkpoint, always
        path = trained_checkpoint(run_dir, checkpoint, trust_pickle=False)
        agent = build_agent(config, family_for(config.env), device)
        try:
            agent.load_state_dict(read_checkpoint(path, envs=False).weights["agent"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ValueError(
                f"checkpoint {str(path)!r} does not fit the offline agent its run's config builds: {first}"
            ) from None
        return agent
    agent_cls = AGENTS.get(config.agent)
    path = trained_checkpoint(run_dir, checkpoint, trust_pickle)
    if path is None:
        return agent_cls.load(Path(run_dir) / "model.zip", device=device)
    family = family_for(config.env)
    # recording wrappers write files (episode-stats: episodes.csv) and change no space: left out
    from heldout.wrappers import parse_specs

    kept = [w for w, spec in zip(config.wrappers, parse_specs(config.wrappers)) if spec.kind != "recording"]
    small = config.replace(num_envs=1, reward_norm=False, wrappers=kept)
    kwargs = family.agent_kwargs(config)
    if "buffer_size" in agent_parameters(agent_cls):  # off-policy: no replay memory to predict
        kwargs["buffer_size"] = 1
    checkpoint_data = read_checkpoint(path, envs=False)  # the weights alone are used: no pickle read
    venv = family.make_train_env(small, family.split(config))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # minibatch vs one-env rollout size: irrelevant for predicting
        model = agent_cls(env=venv, seed=config.seed, device=device, verbose=0, **kwargs)
    try:
        model.policy.load_state_dict(checkpoint_data.weights["policy"])
    except RuntimeError as exc:
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit the model its run's config builds: {str(exc).splitlines()[0]}"
        ) from None
    venv.close()
    return model


__all__ = [
    "CHECKPOINTS",
    "Checkpoint",
    "check_state",
    "read_checkpoint",
    "restore_logger",
    "DEFAULT_KEEP",
    "checkpoints",
    "final_checkpoint",
    "find_checkpoint",
    "latest_checkpoint",
    "load_trained_model",
    "load_signed_pickle",
    "restore_checkpoint",
    "restore_offline_checkpoint",
    "save_checkpoint",
    "save_offline_checkpoint",
    "write_checkpoint",
    "trained_checkpoint",
    "verify",
]
