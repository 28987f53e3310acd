"""``heldout sweep --address``: the Ray cluster a sweep joins, checked to answer before anything is
written.

``auto``, ``HOST:PORT`` or ``ray://HOST:PORT`` as Ray reads them; this module only checks that
something accepts a TCP connection there, with a short timeout, so that a malformed address or one
where nothing answers is bad input (one line, exit 2) in a second where Ray would wait a minute.
"""

from __future__ import annotations

import socket

#: The forms ``--address`` takes, as the messages name them.
FORMS = "auto, HOST:PORT (the head's GCS, port 6379 by default) or ray://HOST:PORT (Ray Client, 10001)"
#: Seconds a reachability check waits for the TCP connection.
CONNECT_TIMEOUT = 3.0


def check_address(text: str, timeout: float = CONNECT_TIMEOUT) -> str:
    """``text``, checked to name a Ray cluster that answers (``auto`` found as Ray finds it).

    Raises:
        ValueError: One line: a malformed address, no cluster for ``auto``, or nothing answering.
    """
    from ray._common.network_utils import parse_address
    from ray._private.services import get_ray_address_from_environment

    found = text
    if text == "auto":
        try:
            found = get_ray_address_from_environment("auto", None)
        except ConnectionError:
            raise ValueError(
                "--address auto found no Ray cluster on this machine (no RAY_ADDRESS, no 'ray start'): "
                f"start one with 'ray start --head', or give {FORMS.split(', ', 1)[1]}"
            ) from None
    parsed = parse_address(found.removeprefix("ray://")) if found != "auto" else None
    host, port = parsed or ("", "")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        shown = f"--address {text!r}" + (f" (found {found!r})" if found != text else "")
        raise ValueError(f"{shown} is not a Ray address; valid: {FORMS}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except (OSError, UnicodeError) as exc:
        why = (
            f"no answer in {timeout:g} s"
            if isinstance(exc, socket.timeout)
            else getattr(exc, "strerror", None)
        )
        raise ValueError(
            f"--address {text!r}: no Ray cluster answers at {host}:{port} ({why or type(exc).__name__}); "
            "start one with 'ray start --head' there, or leave --address out for a local Ray instance"
        ) from None
    return text


__all__ = ["CONNECT_TIMEOUT", "FORMS", "check_address"]
