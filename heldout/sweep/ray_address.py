"""``heldout sweep --address``: which Ray cluster a sweep joins, checked before Ray is imported.

Three forms, as ``ray.init(address=...)`` takes them (Moritz et al. 2018, "Ray: A Distributed
Framework for Emerging AI Applications"):

- ``auto``: the cluster this machine is part of: ``RAY_ADDRESS``, else the address the last ``ray
  start`` on this machine left in Ray's temporary folder (``/tmp/ray/ray_current_cluster``; Ray
  also falls back to any GCS process it finds running here, which this check does not look for);
- ``HOST:PORT``: the head node's GCS (``ray start --head`` listens on 6379 by default);
- ``ray://HOST:PORT``: the head node's Ray Client server (10001 by default), for a driver outside
  the cluster.

A malformed address and one where nothing answers (a plain TCP connect with a short timeout) are bad
input: one line, exit 2, decided before the sweep folder exists and without importing Ray, so they
are caught in a second even where Ray would wait a minute for its GCS.
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

#: The forms ``--address`` takes, as the messages name them.
FORMS = "auto, HOST:PORT (the head's GCS, port 6379 by default) or ray://HOST:PORT (Ray Client, 10001)"
#: Seconds a reachability check waits for the TCP connection.
CONNECT_TIMEOUT = 3.0

_HOST_PORT = re.compile(
    r"^(?:\[(?P<ip6>[0-9A-Fa-f:.]+)\]|(?P<host>[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?)):(?P<port>\d{1,5})$"
)


@dataclass(frozen=True)
class RayAddress:
    """A parsed ``--address``.

    Attributes:
        text: As given (what ``ray.init`` is passed).
        host: The host to check, None for ``auto`` (found at check time).
        port: Its port, None for ``auto``.
        client: Whether it is a Ray Client address (``ray://``).
    """

    text: str
    host: str | None = None
    port: int | None = None
    client: bool = False

    @property
    def auto(self) -> bool:
        return self.host is None


def parse_address(text: str) -> RayAddress:
    """``text`` as a :class:`RayAddress`.

    Raises:
        ValueError: One line naming ``text`` and the valid forms.
    """
    if not isinstance(text, str):
        raise ValueError(f"--address {text!r} is not an address; valid: {FORMS}")
    if text == "auto":
        return RayAddress(text)
    client = text.startswith("ray://")
    rest = text[len("ray://") :] if client else text
    match = _HOST_PORT.match(rest)
    port = int(match.group("port")) if match else 0
    if match is None or not 1 <= port <= 65535:
        why = "" if match is None else f" (port {port} is not in 1-65535)"
        raise ValueError(f"--address {text!r} is not a Ray address{why}; valid: {FORMS}")
    return RayAddress(text, match.group("ip6") or match.group("host"), port, client)


def ray_temp_dir(env: dict[str, str] | None = None) -> Path:
    """Ray's temporary folder on this machine, as Ray finds it: ``$RAY_TMPDIR/ray``, else
    ``$TMPDIR/ray``, else ``/tmp/ray``."""
    env = os.environ if env is None else env
    return Path(env.get("RAY_TMPDIR") or env.get("TMPDIR") or "/tmp") / "ray"


def find_auto(env: dict[str, str] | None = None, temp_dir: Path | None = None) -> str | None:
    """The ``HOST:PORT`` that ``--address auto`` means here, None when there is none: ``RAY_ADDRESS``,
    else ``ray_current_cluster`` in Ray's temporary folder (what ``ray start`` writes)."""
    env = os.environ if env is None else env
    found = (env.get("RAY_ADDRESS") or "").strip()
    if found and found != "auto":
        return found
    file = (temp_dir or ray_temp_dir(env)) / "ray_current_cluster"
    try:
        found = file.read_text().strip()
    except OSError:
        return None
    return found or None


def check_reachable(
    address: RayAddress, timeout: float = CONNECT_TIMEOUT, env: dict[str, str] | None = None
) -> RayAddress:
    """``address`` with its host found (for ``auto``), checked to accept a TCP connection.

    Raises:
        ValueError: One line: no cluster found for ``auto``, or nothing answering at the address.
    """
    if address.auto:
        found = find_auto(env)
        if found is None:
            raise ValueError(
                f"--address auto found no Ray cluster on this machine (no RAY_ADDRESS, no "
                f"{ray_temp_dir(env) / 'ray_current_cluster'}): start one with 'ray start --head', or give "
                f"{FORMS.split(', ', 1)[1]}"
            )
        try:
            resolved = parse_address(found)
        except ValueError:
            raise ValueError(
                f"--address auto: RAY_ADDRESS or ray_current_cluster holds {found!r}, not a Ray address; "
                f"valid: {FORMS}"
            ) from None
        if resolved.auto:  # pragma: no cover - find_auto never returns "auto"
            raise ValueError(f"--address auto: no Ray cluster found; valid: {FORMS}")
        checked = check_reachable(resolved, timeout, env)
        return RayAddress(address.text, checked.host, checked.port, checked.client)
    assert address.host is not None and address.port is not None
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            pass
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        if isinstance(exc, socket.timeout):
            why = f"no answer in {timeout:g} s"
        raise ValueError(
            f"--address {address.text!r}: no Ray cluster answers at {address.host}:{address.port} "
            f"({why}); start one with 'ray start --head' there, or leave --address out for a local "
            "Ray instance"
        ) from None
    return address


__all__ = ["CONNECT_TIMEOUT", "FORMS", "RayAddress", "check_reachable", "find_auto", "parse_address"]
