"""``heldout sweep --address``: parsing, ``auto``, and the reachability check, none of which needs Ray.

The reachable case listens on a loopback port of this machine; the unreachable one connects to a
loopback port nothing listens on (found by binding one and closing it), so no test leaves this machine.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from heldout.sweep.ray_address import RayAddress, check_reachable, find_auto, parse_address
from heldout.sweep.ray_backend import Needs, check_feasible, task_needs, wants_gpu


@pytest.mark.parametrize(
    ("text", "host", "port", "client"),
    [
        ("auto", None, None, False),
        ("10.0.0.5:6379", "10.0.0.5", 6379, False),
        ("head-node.cluster:6380", "head-node.cluster", 6380, False),
        ("ray://head:10001", "head", 10001, True),
        ("[::1]:6379", "::1", 6379, False),
        ("ray://[fe80::1]:10001", "fe80::1", 10001, True),
    ],
)
def test_the_three_forms_parse(text: str, host: str | None, port: int | None, client: bool) -> None:
    address = parse_address(text)
    assert (address.text, address.host, address.port, address.client) == (text, host, port, client)
    assert address.auto == (text == "auto")


@pytest.mark.parametrize(
    "text",
    ["", "head", "head:", ":6379", "head:port", "head:0", "head:65536", "http://head:8265", "ray://head",
     "ray:/head:1", "head:6379/x", "he ad:6379", "AUTO", "local", "-head:1"],
)  # fmt: skip
def test_a_malformed_address_is_one_line_naming_it_and_the_forms(text: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_address(text)
    message = str(info.value)
    assert f"--address {text!r}" in message and "\n" not in message
    assert "auto, HOST:PORT" in message and "ray://HOST:PORT" in message


def test_a_port_out_of_range_says_so() -> None:
    with pytest.raises(ValueError, match=r"port 70000 is not in 1-65535"):
        parse_address("head:70000")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_where_something_listens_is_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        address = parse_address(f"127.0.0.1:{port}")
        assert check_reachable(address, timeout=2.0) == address
        client = parse_address(f"ray://127.0.0.1:{port}")
        assert check_reachable(client, timeout=2.0).client


def test_an_address_where_nothing_listens_is_refused_quickly() -> None:
    port = _closed_port()
    start = time.monotonic()
    with pytest.raises(ValueError) as info:
        check_reachable(parse_address(f"127.0.0.1:{port}"), timeout=2.0)
    assert time.monotonic() - start < 2.5
    message = str(info.value)
    assert f"no Ray cluster answers at 127.0.0.1:{port}" in message and "\n" not in message
    assert "ray start --head" in message


def test_auto_reads_ray_address_then_the_file_ray_start_leaves(tmp_path: Path) -> None:
    assert find_auto({}, tmp_path) is None
    (tmp_path / "ray_current_cluster").write_text("10.1.2.3:6379\n")
    assert find_auto({}, tmp_path) == "10.1.2.3:6379"
    assert find_auto({"RAY_ADDRESS": "ray://h:10001"}, tmp_path) == "ray://h:10001"
    assert find_auto({"RAY_ADDRESS": "auto"}, tmp_path) == "10.1.2.3:6379"  # auto means: look further


def test_auto_without_a_cluster_is_one_line(tmp_path: Path) -> None:
    env = {"RAY_TMPDIR": str(tmp_path)}
    with pytest.raises(ValueError) as info:
        check_reachable(parse_address("auto"), env=env)
    message = str(info.value)
    assert "--address auto found no Ray cluster" in message and str(tmp_path / "ray") in message
    assert "ray start --head" in message and "\n" not in message


def test_auto_checks_the_address_it_found(tmp_path: Path) -> None:
    port = _closed_port()
    (tmp_path / "ray").mkdir()
    (tmp_path / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{port}")
    with pytest.raises(ValueError, match=f"no Ray cluster answers at 127.0.0.1:{port}"):
        check_reachable(parse_address("auto"), timeout=2.0, env={"RAY_TMPDIR": str(tmp_path)})
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        env = {"RAY_ADDRESS": f"127.0.0.1:{port}"}
        found = check_reachable(parse_address("auto"), timeout=2.0, env=env)
        assert found == RayAddress("auto", "127.0.0.1", port, False)


class _Config:
    def __init__(self, device: str = "auto", torch_threads: int | None = None, env: str = "cartpole"):
        self.device, self.torch_threads, self.env = device, torch_threads, env


class _Decision:
    def __init__(self, name: str, config: _Config):
        self.run = type("Run", (), {"name": name, "config": config})()


def test_each_task_asks_for_its_torch_threads_and_a_gpu_on_cuda() -> None:
    assert wants_gpu(_Config("cuda"), 0) and wants_gpu(_Config("cuda:0"), 0)
    assert wants_gpu(_Config("auto"), 2) and not wants_gpu(_Config("auto"), 0)
    assert not wants_gpu(_Config("cpu"), 8)
    decisions = [
        _Decision("a", _Config("cpu", 3)),
        _Decision("b", _Config("auto")),  # contextual CartPole: the family's 1 thread
        _Decision("c", _Config("cuda", 2)),
    ]
    needs = task_needs(decisions, cluster_cpus=16, node_cpus=8, cluster_gpus=1)  # type: ignore[arg-type]
    assert needs == {"a": Needs(3, 0, 3), "b": Needs(1, 1, 1), "c": Needs(2, 1, 2)}


def test_runs_that_leave_threads_to_torch_share_the_cluster_at_most_a_node_each() -> None:
    decisions = [_Decision(f"r{i}", _Config("cpu", env="coinrun")) for i in range(2)]
    needs = task_needs(decisions, cluster_cpus=32, node_cpus=8, cluster_gpus=0)  # type: ignore[arg-type]
    assert {n.num_cpus for n in needs.values()} == {8}
    needs = task_needs(decisions * 20, cluster_cpus=32, node_cpus=8, cluster_gpus=0)  # type: ignore[arg-type]
    assert {n.num_cpus for n in needs.values()} == {1}


def test_a_run_no_node_can_place_is_refused() -> None:
    check_feasible({"a": Needs(4, 0, 4)}, node_cpus=4, cluster_gpus=0)
    with pytest.raises(ValueError, match=r"run 'a' asks for 5 CPU\(s\).*largest Ray node has 4"):
        check_feasible({"a": Needs(5, 0, 5)}, node_cpus=4, cluster_gpus=0)
    with pytest.raises(ValueError, match=r"run 'g' trains on CUDA but the Ray cluster has no GPU"):
        check_feasible({"g": Needs(1, 1, 1)}, node_cpus=4, cluster_gpus=0)
