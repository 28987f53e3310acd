"""``heldout sweep --address`` (Ray reads it; heldout checks that something answers there) and what
each run's Ray task asks for; no Ray instance is started here.

The reachable case listens on a loopback port of this machine; the unreachable one connects to a
loopback port nothing listens on (found by binding one and closing it), so no test leaves this machine.
"""

from __future__ import annotations

import socket
import time

import pytest

pytest.importorskip("ray")

from heldout.sweep.ray_address import check_address  # noqa: E402
from heldout.sweep.ray_backend import Needs, check_feasible, task_needs  # noqa: E402


@pytest.mark.parametrize(
    "text", ["", "head", "head:", ":6379", "head:port", "head:0", "head:65536", "http://head:8265", "ray://head",
             "head:6379/x", "AUTO", "local"],
)  # fmt: skip
def test_a_malformed_address_is_one_line_naming_it_and_the_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        check_address(text, timeout=1.0)
    message = str(info.value)
    assert f"--address {text!r}" in message and "\n" not in message
    assert "auto, HOST:PORT" in message and "ray://HOST:PORT" in message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_something_listens_is_reachable_in_both_forms() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(2)
        port = server.getsockname()[1]
        assert check_address(f"127.0.0.1:{port}", timeout=2.0) == f"127.0.0.1:{port}"
        assert check_address(f"ray://127.0.0.1:{port}", timeout=2.0) == f"ray://127.0.0.1:{port}"


def test_an_address_where_nothing_listens_is_refused_quickly() -> None:
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        check_address(f"127.0.0.1:{port}", timeout=2.0)
    assert time.monotonic() - start < 2.5
    message = str(info.value)
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in message and "\n" not in message
    assert "ray start --head" in message


def test_auto_checks_the_address_ray_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    port = _closed_port()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address("auto", timeout=2.0)
    monkeypatch.setenv("RAY_ADDRESS", "nonsense")
    with pytest.raises(ValueError, match=r"--address 'auto' \(found 'nonsense'\) is not a Ray address"):
        check_address("auto", timeout=2.0)


class _Config:
    def __init__(self, device: str = "auto", torch_threads: int | None = None, env: str = "cartpole"):
        self.device, self.torch_threads, self.env = device, torch_threads, env


class _Decision:
    def __init__(self, name: str, config: _Config):
        self.run = type("Run", (), {"name": name, "config": config})()


def test_each_task_asks_for_its_torch_threads_and_a_gpu_on_cuda_only() -> None:
    decisions = [
        _Decision("a", _Config("cpu", 3)),
        _Decision("b", _Config("auto")),  # contextual CartPole: the family's 1 thread; no GPU under auto
        _Decision("c", _Config("cuda", 2)),
        _Decision("d", _Config("cuda:1")),
    ]
    needs = task_needs(decisions, cluster_cpus=16, node_cpus=8)  # type: ignore[arg-type]
    assert needs == {"a": Needs(3, 0, 3), "b": Needs(1, 0, 1), "c": Needs(2, 1, 2), "d": Needs(1, 1, 1)}


def test_the_specs_resources_are_what_each_task_asks_for() -> None:
    decisions = [_Decision("a", _Config("auto", 2)), _Decision("b", _Config("auto", env="coinrun"))]
    needs = task_needs(decisions, 16, 8, {"cpus": 4, "gpus": 0.25})  # type: ignore[arg-type]
    assert needs == {"a": Needs(4, 0.25, 2), "b": Needs(4, 0.25, 4)}  # threads: torch_threads, else cpus
    needs = task_needs(decisions, 16, 8, {"gpus": 1})  # type: ignore[arg-type]
    assert needs["a"] == Needs(2, 1, 2)


def test_runs_that_leave_threads_to_torch_share_the_cluster_at_most_a_node_each() -> None:
    decisions = [_Decision(f"r{i}", _Config("cpu", env="coinrun")) for i in range(2)]
    needs = task_needs(decisions, cluster_cpus=32, node_cpus=8)  # type: ignore[arg-type]
    assert {n.num_cpus for n in needs.values()} == {8}
    needs = task_needs(decisions * 20, cluster_cpus=32, node_cpus=8)  # type: ignore[arg-type]
    assert {n.num_cpus for n in needs.values()} == {1}


def test_a_run_no_node_can_place_is_refused() -> None:
    check_feasible({"a": Needs(4, 0.5, 4)}, node_cpus=4, cluster_gpus=1)
    with pytest.raises(ValueError, match=r"run 'a' asks for 5 CPU\(s\).*largest Ray node has 4"):
        check_feasible({"a": Needs(5, 0, 5)}, node_cpus=4, cluster_gpus=0)
    with pytest.raises(ValueError, match=r"run 'g' asks for 1 GPU\(s\) .* the Ray cluster has 0"):
        check_feasible({"g": Needs(1, 1, 1)}, node_cpus=4, cluster_gpus=0)
    with pytest.raises(ValueError, match=r"asks for 0.25 GPU\(s\)"):
        check_feasible({"g": Needs(1, 0.25, 1)}, node_cpus=4, cluster_gpus=0)
