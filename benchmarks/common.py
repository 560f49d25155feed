"""What every benchmark shares: the machine it ran on, that machine's compute ceiling, the
JSON result file, and a free TCP port.

Hosts that call themselves the same ("2-core AMD EPYC") are not: one ran the 512 generator in
ONNX Runtime at half the rate of another. So a result records the CPU exactly (vendor, family,
model number, stepping, model name, the vector and matrix instruction flags, cores, torch
threads) and MEASURES, in the same run, the machine's matrix-product rate:

    ceiling = torch.mm of two 2048x2048 matrices (8192x8192 on a GPU), in fp32 and in bf16,
              on every torch thread,
              median of 7 timings of ~0.2 s, the two dtypes interleaved
              (GFLOP/s, 2 * n^3 FLOP per product of n x n matrices)

That is what the machine's convolution and matmul kernels can reach at best, on the day,
under whatever else the (shared) machine was doing; it is not the vendor's peak.

Every throughput is then also given as its SHARE OF THE CEILING:

    share = items/s x FLOP per item / ceiling FLOP/s of the dtype the variant computes in

FLOP per item is counted, not estimated: torch.utils.flop_counter over one real call (a
generator forward for a frame; for training, one whole seed-style step - critic passes,
gradient penalty with its double backward, generator pass, backward - divided by the images
it consumes). It counts convolutions and matrix products (2 per multiply-add); norms,
activations, the optimiser and data loading are work too but are left out, so the share is
the fraction of the machine's matrix-product rate that went into the model's matrix work.
Two hosts that differ only in speed give the same share; a share that differs says the
variant, not the host, changed. Caveats: the ceiling is measured once, at the start, and the
load of a shared machine can change afterwards (inference and runner record the load
average); a large square product is the easiest work there is, so small layers (the 64x64
config) reach a small share; and a library that computes 3x3 convolutions with fewer
multiplications (Winograd) than the direct count could even show more than 100%.

For training, every variant is charged the seed-style step's FLOP per image (same models and
losses; a loop that skips work shows as a higher share, as its images/s is higher). The same
ceiling (all cores) is used whatever threads a variant uses, so a 1-thread variant on 2 cores
reaches at most about half. A rate that is not matrix work (JPEG decoding in the data
benchmark, an off-CPU stand-in generator) gets no share.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from ganmotion.files import atomic_write

MATMUL_SIZE = 2048
# A GPU needs larger products to reach its rate: 8192^3 in bf16 ran at ~790 TFLOP/s on an H200
# (2048^3 takes ~20 us there, about the cost of launching it).
MATMUL_SIZE_GPU = 8192
MATMUL_TIMINGS = 7
MATMUL_LONGEST_S = 0.5
CEILING_DEFINITION = (
    f"torch.mm of two {MATMUL_SIZE}x{MATMUL_SIZE} matrices on every torch thread (smaller, down "
    f"to {MATMUL_SIZE // 8}, where one product would take over {MATMUL_LONGEST_S} s: bf16 "
    f"without hardware support runs at ~1 GFLOP/s), median of {MATMUL_TIMINGS} timings of "
    "~0.2 s (fp32 and bf16 interleaved), 2*n^3 FLOP per product"
)
SHARE_DEFINITION = (
    "items/s x FLOP per item (torch.utils.flop_counter: convolutions and matrix products) / "
    "ceiling FLOP/s of the variant's dtype"
)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16}  # the ceiling's dtypes
# The instruction-set flags that decide how fast convolutions and matrix products run
# (x86: AVX*, AVX-512*, AMX*, FMA, F16C, SSE4; Arm: NEON/ASIMD, SVE, SME, bf16, i8mm).
_FLAG_PREFIXES = ("avx", "amx", "sse4", "asimd", "sve")
_FLAG_NAMES = {"fma", "f16c", "neon", "sme", "sme2", "bf16", "i8mm"}


def cpu() -> dict:
    """The CPU as /proc/cpuinfo names it (first processor), plus cores and torch's threads."""
    fields: dict[str, str] = {}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if not line.strip():
                break  # the first processor's block is enough: the others repeat it
            key, _, value = line.partition(":")
            fields[key.strip()] = value.strip()
    flags = (fields.get("flags") or fields.get("Features") or "").split()
    return {
        "vendor": fields.get("vendor_id") or fields.get("CPU implementer") or platform.processor(),
        "family": fields.get("cpu family"),
        "model": fields.get("model") or fields.get("CPU part"),
        "model_name": fields.get("model name") or platform.processor(),
        "stepping": fields.get("stepping") or fields.get("CPU revision"),
        "microcode": fields.get("microcode"),
        "cache": fields.get("cache size"),
        "flags": sorted(f for f in flags if f.startswith(_FLAG_PREFIXES) or f in _FLAG_NAMES),
        "virtualised": "hypervisor" in flags,
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


class _Matmul:
    """Timed products of two n x n matrices of one dtype on one device: n is MATMUL_SIZE
    (MATMUL_SIZE_GPU on a GPU), or smaller where a product that size would take more than
    MATMUL_LONGEST_S (the ceiling of a dtype the CPU emulates then costs seconds, not
    minutes)."""

    def __init__(self, dtype: torch.dtype, device: str):
        generator = torch.Generator().manual_seed(0)
        largest = MATMUL_SIZE if torch.device(device).type == "cpu" else MATMUL_SIZE_GPU
        self.n = MATMUL_SIZE // 8
        while True:
            self.a, self.b = (
                torch.randn(self.n, self.n, generator=generator).to(device, dtype) for _ in "ab"
            )
            single = min(self.seconds(1) for _ in range(2))  # warm-up, and a first estimate
            if self.n == largest or single * 8 > MATMUL_LONGEST_S:
                break
            self.n *= 2
        self.calls = max(1, round(0.2 / max(single, 1e-6)))  # ~0.2 s per timing

    def seconds(self, calls: int) -> float:
        self.sync()
        started = time.perf_counter()
        for _ in range(calls):
            torch.mm(self.a, self.b)
        self.sync()
        return time.perf_counter() - started

    def sync(self) -> None:
        if self.a.is_cuda:
            torch.cuda.synchronize()

    def gflops(self) -> float:
        return 2 * self.n**3 * self.calls / self.seconds(self.calls) / 1e9


def ceiling(device: str = "cpu") -> dict:
    """The matrix-product rate of `device` in fp32 and bf16 (GFLOP/s), measured now: the
    median of MATMUL_TIMINGS timings per dtype, the dtypes interleaved so that a change in the
    machine's load hits both alike."""
    products = {name: _Matmul(dtype, device) for name, dtype in PRECISIONS.items()}
    runs: dict[str, list[float]] = {name: [] for name in products}
    for _ in range(MATMUL_TIMINGS):
        for name, product in products.items():
            runs[name].append(product.gflops())
    return {
        "device": device,
        "threads": torch.get_num_threads() if device == "cpu" else None,
        **{f"{name}_gflops": statistics.median(rates) for name, rates in runs.items()},
        "runs": runs,
        "sizes": {name: product.n for name, product in products.items()},
        "definition": CEILING_DEFINITION,
    }


def machine(measure_ceiling: bool = True) -> dict:
    """Everything needed to compare a result with one from another host: the CPU, the
    software, the GPU if any, and (measured now) the CPU's ceiling."""
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu(),
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        # The versions that move results between machines (RESULTS: "The GPU check rehearsed
        # on the CPU": OpenCV 5.1 decodes video to other colours than 4.11).
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "onnx": _version("onnx"),
        "onnxruntime": _version("onnxruntime"),
        "accelerate": _version("accelerate"),
        "ceiling": ceiling("cpu") if measure_ceiling else None,
    }


def describe(machine: dict) -> str:
    """One line: the CPU, its ceiling, and the GPU if there is one."""
    c = machine["cpu"]
    line = (
        f"{c['vendor']} family {c['family']} model {c['model']} stepping {c['stepping']} "
        f"({c['model_name']}), {c['cores']} cores, {c['torch_threads']} torch threads, "
        f"{c['torch_cpu_capability']}"
    )
    if machine.get("ceiling"):
        ceil = machine["ceiling"]
        line += f"; ceiling {ceil['fp32_gflops']:.0f} GFLOP/s fp32, {ceil['bf16_gflops']:.0f} bf16"
    if machine.get("gpu"):
        line += f"; GPU {machine['gpu']}"
    return line


def count_flops(work: Callable[[], object]) -> int:
    """FLOP of one call of `work` (forward and any backward it runs, double backward included):
    convolutions and matrix products, 2 per multiply-add, by torch.utils.flop_counter's
    formulas. (Not through FlopCounterMode itself: its module tracker's hooks fail inside
    the gradient penalty's autograd.grad.)"""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Counter(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Counter() as counter:
        work()
    return counter.total


def share(items_per_s: float, flop_per_item: float, ceiling_gflops: float) -> float:
    """The fraction of the ceiling that `items_per_s` items of `flop_per_item` each reach."""
    return items_per_s * flop_per_item / (ceiling_gflops * 1e9)


def invocation() -> str:
    """How this benchmark was started, to quote beside its numbers."""
    return shlex.join(["python", *sys.argv])


def write_result(path: Path, report: dict) -> None:
    """Write `report` as JSON to `path` (atomically: a run that fails leaves the previous
    result), with the exact command line and the date first."""
    report = {"command": invocation(), "date": time.strftime("%Y-%m-%d"), **report}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")


def free_port() -> int:
    """A TCP port nobody listens on now, for the rendezvous of launched processes."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
