"""benchmarks/common.py: what every benchmark records to make hosts comparable."""

import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import common  # noqa: E402


def test_the_machine_names_the_cpu_exactly():
    host = common.machine(measure_ceiling=False)
    cpu = host["cpu"]
    for field in ("vendor", "family", "model", "model_name", "stepping", "flags", "cores"):
        assert field in cpu
    assert cpu["torch_threads"] == torch.get_num_threads()
    if Path("/proc/cpuinfo").exists() and "x86" in host["machine"]:
        assert cpu["family"] and cpu["model"] and "sse4_2" in cpu["flags"]
        assert not any(flag == "smep" for flag in cpu["flags"])  # not an instruction set


def test_flops_are_counted_through_a_double_backward():
    conv = torch.nn.Conv2d(3, 8, 3, padding=1)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    forward = common.count_flops(lambda: conv(x))
    assert forward == 2 * (2 * 8 * 16 * 16) * (3 * 3 * 3)  # 2 per multiply-add

    def penalty():  # as the gradient penalty does it: autograd.grad with create_graph
        (grad,) = torch.autograd.grad(conv(x).sum(), x, create_graph=True)
        grad.square().sum().backward()

    assert common.count_flops(penalty) > 2 * forward


def test_share_is_achieved_over_ceiling():
    assert common.share(items_per_s=5.0, flop_per_item=72e9, ceiling_gflops=720.0) == 0.5


def test_results_are_written_whole_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["benchmarks/x.py", "--quick", "--out", "a b.json"])
    common.write_result(tmp_path / "r.json", {"frames_per_s": 1.0})
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["command"] == "python benchmarks/x.py --quick --out 'a b.json'"
    assert list(report)[:2] == ["command", "date"] and report["frames_per_s"] == 1.0
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_free_port_is_bindable():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", common.free_port()))
