"""A run folder's lease: which process trains the run, so that no two processes ever do at once.

The process that trains a run holds ``lease.json`` in its folder::

    {"host": "node7", "pid": 4242, "token": "9f0c...", "since": 1765012345.2, "heartbeat": 1765012399.8}

It is created atomically (written to a private file, then hard-linked to ``lease.json``; the link
fails when a lease exists, a test-and-set that holds on NFS too), refreshed every
:data:`HEARTBEAT_SECONDS` by a thread of the holder (so also during a long update or evaluation), and
removed when the run stops. A lease is **live** while its heartbeat is younger than
:data:`STALE_SECONDS` and, on the host that wrote it, its process exists. A **stale** lease (its
process gone from this host; or silent for ``STALE_SECONDS`` on any host: a job killed outright, a
lost node) may be taken over: one contender wins an ``O_EXCL`` marker named by the stale lease's
token, checks the lease is still that one, and replaces it; every other contender finds it held.

A holder that finds its lease gone or taken (it was silent past the threshold: a suspended process, a
partitioned node) stops at once, writing nothing more: the folder is someone else's now.

The host is ``$HELDOUT_HOST`` where set (tests simulate a second machine with it), else the machine's
host name. Hosts' clocks must agree to well within ``STALE_SECONDS`` (NTP keeps them within
milliseconds).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

LEASE_FILE = "lease.json"
#: Seconds between a holder's heartbeats.
HEARTBEAT_SECONDS = 10.0
#: Seconds of silence after which a lease is stale on any host (12 missed heartbeats: a loaded
#: machine or a slow shared file system never gets near it; a lost node is taken over in 2 minutes).
STALE_SECONDS = 120.0
#: The exit code of a holder that lost its lease.
LOST = 75
_MARKER = ".lease-takeover-"


class LeaseHeld(ValueError):
    """The run is held by a live process (one line naming it)."""


def host_id() -> str:
    """The host a lease names: ``$HELDOUT_HOST``, else this machine's host name."""
    return os.environ.get("HELDOUT_HOST") or socket.gethostname()


def pid_alive(pid: Any) -> bool:
    """Whether process ``pid`` exists on this host (an untrusted value: anything but a pid is not)."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid < 2**31:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def is_live(lease: dict[str, Any], now: float | None = None) -> bool:
    """Whether ``lease`` (as read, untrusted) is live: a heartbeat younger than :data:`STALE_SECONDS`
    and, on this host, a process that exists."""
    beat = lease.get("heartbeat")
    if not isinstance(beat, (int, float)) or isinstance(beat, bool) or not math.isfinite(beat):
        return False
    if (time.time() if now is None else now) - beat > STALE_SECONDS:
        return False
    return lease.get("host") != host_id() or pid_alive(lease.get("pid"))


def is_mine(lease: dict[str, Any]) -> bool:
    """Whether this process holds ``lease``."""
    return lease.get("host") == host_id() and lease.get("pid") == os.getpid()


def read_lease(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """``run_dir``'s lease, None without one; a file that holds no lease reads as a stale one."""
    try:
        data = json.loads((Path(run_dir) / LEASE_FILE).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"token": None}
    return data if isinstance(data, dict) else {"token": None}


def describe(lease: dict[str, Any]) -> str:
    """``"pid 4242 on node7 (heartbeat 3 s ago)"``."""
    beat = lease.get("heartbeat")
    ago = (
        f"{time.time() - beat:.0f} s ago"
        if isinstance(beat, (int, float)) and math.isfinite(beat)
        else "none"
    )
    return f"pid {lease.get('pid')!r} on {lease.get('host')!r} (heartbeat {ago})"


def holder(run_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The live lease of another process on ``run_dir``, None when the run is free to take."""
    lease = read_lease(run_dir)
    return lease if lease is not None and is_live(lease) and not is_mine(lease) else None


def refuse_if_held(run_dir: str | os.PathLike[str]) -> None:
    """Raises :class:`LeaseHeld` (one line) when another live process holds ``run_dir``."""
    lease = holder(run_dir)
    if lease is not None:
        raise LeaseHeld(
            f"run {str(run_dir)!r} is held by a live process, {describe(lease)}: it is training there; "
            f"wait for it to stop (a silent holder is taken over after {STALE_SECONDS:g} s)"
        )


class Lease:
    """A held lease: its heartbeat thread runs until :meth:`release`."""

    def __init__(self, run_dir: Path, token: str) -> None:
        self.run_dir, self.token, self.depth = run_dir, token, 1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="heldout-lease", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        from heldout.protocol.run_folder import write_json

        while not self._stop.wait(HEARTBEAT_SECONDS):
            found = read_lease(self.run_dir)
            if self._stop.is_set():
                return
            if found is None or found.get("token") != self.token:
                print(f"lost the lease of {str(self.run_dir)!r}: stopping at once", file=sys.stderr)
                os._exit(LOST)
            write_json(self.run_dir / LEASE_FILE, {**found, "heartbeat": time.time()})

    def release(self) -> None:
        """Gives the lease up (the outermost release of a nested hold)."""
        self.depth -= 1
        if self.depth:
            return
        self._stop.set()
        self._thread.join()
        _HELD.pop(str(self.run_dir.resolve()), None)
        if (read_lease(self.run_dir) or {}).get("token") == self.token:
            (self.run_dir / LEASE_FILE).unlink(missing_ok=True)


#: The leases this process holds, by folder: holding one again nests.
_HELD: dict[str, Lease] = {}


def _create(run_dir: Path, token: str) -> bool:
    now = time.time()
    record = {"host": host_id(), "pid": os.getpid(), "token": token, "since": now, "heartbeat": now}
    tmp = run_dir / f".{LEASE_FILE}.{token}"
    tmp.write_text(json.dumps(record))
    try:
        os.link(tmp, run_dir / LEASE_FILE)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def acquire(run_dir: str | os.PathLike[str]) -> Lease:
    """Takes the lease of ``run_dir`` (created with its parents): a free one, or a stale one over.

    Raises:
        LeaseHeld: A live process holds it, or another process is taking it over right now.
    """
    path = Path(run_dir)
    held = _HELD.get(str(path.resolve()))
    if held is not None:
        held.depth += 1
        return held
    path.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    for _ in range(5):
        if _create(path, token):
            lease = _HELD[str(path.resolve())] = Lease(path, token)
            return lease
        found = read_lease(path)
        if found is None:  # released meanwhile
            continue
        refuse_if_held(path)
        # stale: whoever creates the marker named by its token removes it; then the link decides
        marker = path / f"{_MARKER}{found.get('token')}"
        with contextlib.suppress(FileNotFoundError):
            if time.time() - marker.stat().st_mtime > STALE_SECONDS:  # a contender that died midway
                marker.unlink()
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            raise LeaseHeld(f"run {str(path)!r} is being taken over by another process right now") from None
        try:
            if (read_lease(path) or {}).get("token") == found.get("token"):
                (path / LEASE_FILE).unlink(missing_ok=True)
        finally:
            marker.unlink(missing_ok=True)
    raise LeaseHeld(f"run {str(path)!r}: its lease changed hands five times while taking it; try again")


@contextlib.contextmanager
def hold(run_dir: str | os.PathLike[str]) -> Iterator[Lease]:
    """The lease of ``run_dir`` for the block (:func:`acquire`, then released)."""
    lease = acquire(run_dir)
    try:
        yield lease
    finally:
        lease.release()


def is_lease_file(path: Path) -> bool:
    """Whether ``path`` is a lease's file (the lease, a takeover marker or one being written)."""
    return path.name == LEASE_FILE or path.name.startswith((_MARKER, f".{LEASE_FILE}."))


__all__ = [
    "HEARTBEAT_SECONDS",
    "LEASE_FILE",
    "LOST",
    "STALE_SECONDS",
    "Lease",
    "LeaseHeld",
    "acquire",
    "describe",
    "hold",
    "holder",
    "host_id",
    "is_lease_file",
    "is_live",
    "is_mine",
    "pid_alive",
    "read_lease",
    "refuse_if_held",
]
