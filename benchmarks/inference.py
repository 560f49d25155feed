"""Inference benchmark: generator frames/s per backend, precision and batch size.

    python benchmarks/inference.py                  # 256 and 512, batches 1,4,8: ~10 min on 2 cores
    python benchmarks/inference.py --quick          # 256 only, batches 1,4, 1 repeat: ~1 min
    python benchmarks/inference.py --sizes 256,512 --batches 1,4,8 --repeats 3 --frames 8

Generator only: skeleton batch in, image batch out, on this machine's CPU (or `--device cuda`
for the torch rows). The generator is the configs/gan_512.yaml architecture (its `generator:`
section), built at each size with random weights (seed 0, attention gate 0.5 so the attention
counts in the errors); speed does not depend on the weights. Variants, every one through the
library's backends (ganmotion.runtime), measured side by side in one run:

  torch eager fp32            TorchBackend, the reference
  torch channels_last         TorchBackend(channels_last=True)
  torch bf16                  TorchBackend(precision="bf16"): torch.autocast (CPU: oneDNN bf16)
  torch bf16 channels_last    both
  torch.compile               TorchBackend(compile=True), default mode; compiling is untimed
  with --device cuda also:
  torch fp16 [channels_last]  TorchBackend(precision="fp16"[, channels_last=True])
  torch.compile [MODE] bf16 channels_last   compiled (default mode, reduce-overhead or
                              max-autotune: the last two replay CUDA graphs), bf16, NHWC
  onnxruntime fp32            OnnxRuntimeBackend on the ONNX from ganmotion.export.onnx
  onnxruntime fp16 ONNX       the same ONNX through onnx.to_fp16 (norms/attention fp32), as
                              built for TensorRT; on a CPU without fp16 kernels expect it slow

The ONNX is exported once per size into a temporary folder (with the export's parity check).
Per size, variants are interleaved (for each repeat, for each batch size: every variant in
turn), each timing runs whole batches until at least `--frames` frames are done, after one
untimed warm-up call per variant and batch size (for torch.compile that call compiles: its
seconds are reported apart). Each batch is already on the variant's device: on a GPU the
generator is timed, not the copy to it. frames/s is the median of `--repeats` timings; "vs"
is the ratio to torch eager fp32 at batch 1 of the same size. "error" is
max|variant - torch eager fp32| / max|torch eager fp32| on the warm-up batch, worst over batch
sizes. A variant that fails to load or run is listed with its reason, not timed.

Memory: ~15 GiB peak at 512 px, batch 8. ONNX Runtime's CPU arena keeps each session's peak
(~7 GiB at that batch, against ~3.5 GiB for torch eager) and there are two sessions; the JSON
records the peak and the load average before and after, since other work on the machine slows
every variant.

Share of the ceiling (benchmarks/common.py): frames/s x the generator's counted FLOP per frame
/ the machine's measured matrix-product rate in the variant's dtype (bf16 rows against bf16,
the rest against fp32; the torch rows against `--device`'s own ceiling, fp16 rows there
against bf16's).

Prints a table per size and writes JSON (results/inference_generator.json) with the machine
(CPU model, flags, ceiling) and the exact command line. The video runner end to end:
benchmarks/runner.py.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from common import ceiling, count_flops, describe, machine, share, write_result  # this folder

from ganmotion.config import load_config
from ganmotion.errors import GanmotionError, command_line
from ganmotion.export.onnx import export_generator, relative_error, to_fp16
from ganmotion.models.generator import UNetGenerator
from ganmotion.runtime import OnnxRuntimeBackend, TorchBackend
from ganmotion.training.config import GanConfig

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = ROOT / "configs" / "gan_512.yaml"
REFERENCE = "torch eager fp32"


@dataclass
class Variant:
    """One way to run the generator: `make(generator, onnx_dir)` builds its backend."""

    name: str
    make: Callable[[UNetGenerator, Path], object]
    backend: object = None
    failure: str | None = None
    first_call_s: dict[int, float] = field(default_factory=dict)  # batch -> warm-up seconds


def torch_variant(name: str, device: str, **options) -> Variant:
    # A copy per variant: channels_last converts the module it is given in place.
    return Variant(
        name, lambda generator, _: TorchBackend(copy.deepcopy(generator), device, **options)
    )


def onnx_variant(name: str, filename: str) -> Variant:
    return Variant(
        name,
        lambda _, folder: OnnxRuntimeBackend(folder / filename, ["CPUExecutionProvider"]),
    )


def variants(device: str, skip: set[str]) -> list[Variant]:
    rows = [
        torch_variant(REFERENCE, device),
        torch_variant("torch channels_last", device, channels_last=True),
        torch_variant("torch bf16", device, precision="bf16"),
        torch_variant("torch bf16 channels_last", device, precision="bf16", channels_last=True),
        torch_variant("torch.compile", device, compile=True),
    ]
    if torch.device(device).type == "cuda":  # fp16 is slow or refused on CPUs
        rows += [
            torch_variant("torch fp16", device, precision="fp16"),
            torch_variant("torch fp16 channels_last", device, precision="fp16", channels_last=True),
        ]
        for mode in ("default", "reduce-overhead", "max-autotune"):  # the last two: CUDA graphs
            name = "torch.compile" + ("" if mode == "default" else f" {mode}")
            rows.append(
                torch_variant(
                    f"{name} bf16 channels_last",
                    device,
                    compile=mode,
                    precision="bf16",
                    channels_last=True,
                )
            )
    rows += [
        onnx_variant("onnxruntime fp32", "gen.onnx"),
        onnx_variant("onnxruntime fp16 ONNX", "gen_fp16.onnx"),
    ]
    return [row for row in rows if row.name == REFERENCE or row.name not in skip]


def build_generator(size: int) -> UNetGenerator:
    """The configs/gan_512.yaml generator at `size`, random weights."""
    config = load_config(GanConfig, CONFIG)
    torch.manual_seed(0)
    architecture = {**vars(config.generator), "size": size}
    generator = UNetGenerator(**architecture).eval()
    with torch.no_grad():
        generator.attention.gamma.fill_(0.5)  # 0 at init: the attention would add nothing
    return generator


def export_onnx(generator: UNetGenerator, folder: Path, fp16: bool) -> float:
    """gen.onnx, and gen_fp16.onnx if `fp16`, in `folder`; the seconds it took."""
    import onnx

    started = time.perf_counter()
    export_generator(generator, folder / "gen.onnx")
    if fp16:  # needs onnxconverter-common, which the GPU machine lacks
        onnx.save_model(to_fp16(onnx.load(str(folder / "gen.onnx"))), str(folder / "gen_fp16.onnx"))
    return time.perf_counter() - started


def timed(backend, batch: torch.Tensor, frames: int) -> float:
    """frames/s of whole batches, run until at least `frames` frames are done."""
    calls = max(1, -(-frames // len(batch)))
    started = time.perf_counter()
    for _ in range(calls):
        images = backend(batch)
    if images.is_cuda:
        torch.cuda.synchronize()
    return calls * len(batch) / (time.perf_counter() - started)


def row_device(row: Variant) -> torch.device:
    """Where a variant takes its batches: its backend's device (the CPU for one that failed
    to load or for ONNX Runtime's CPU provider)."""
    return getattr(row.backend, "device", None) or torch.device("cpu")


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def variant_ceiling(name: str, ceilings: dict[str, dict]) -> float:
    """The GFLOP/s a variant is measured against: its device's, in its dtype (fp16 rows
    against bf16: a GPU's tensor cores run both at one rate)."""
    device = "cpu" if name.startswith("onnxruntime") else "device"
    half = "bf16" in name or ("fp16" in name and device == "device")
    return ceilings[device]["bf16_gflops" if half else "fp32_gflops"]


def bench_size(size: int, args, workdir: Path, ceilings: dict[str, dict]) -> dict:
    generator = build_generator(size)
    with torch.no_grad():
        flop_per_frame = count_flops(lambda: generator(torch.zeros(1, 3, size, size)))
    folder = workdir / f"onnx-{size}"
    folder.mkdir()
    rows = variants(args.device, set(args.skip))
    export_s = None
    if any(row.name.startswith("onnxruntime") for row in rows):
        fp16 = any(row.name == "onnxruntime fp16 ONNX" for row in rows)
        print(
            f"{size}x{size}: exporting ONNX ({'fp32 and fp16' if fp16 else 'fp32'}) ...", flush=True
        )
        export_s = export_onnx(generator, folder, fp16)
    for row in rows:
        try:
            row.backend = row.make(generator, folder)
        except (GanmotionError, RuntimeError) as error:
            row.failure = f"load: {first_line(error)}"

    # Warm-up, untimed: the first call of each batch size (torch.compile compiles here), and
    # the outputs that the errors compare.
    inputs = {
        b: torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(b)) * 2 - 1
        for b in args.batches
    }
    # Each batch waits on the variant's device: the generator is timed, not the copy to a GPU
    # (the video runner's to overlap; benchmarks/runner.py measures it end to end).
    placed = {
        (d, b): x.to(d) for d in {str(row_device(row)) for row in rows} for b, x in inputs.items()
    }
    errors: dict[str, float] = {}
    for batch in inputs:
        reference = None
        for row in rows:
            if row.failure:
                continue
            started = time.perf_counter()
            try:
                images = row.backend(placed[str(row_device(row)), batch]).cpu()
            except (GanmotionError, RuntimeError) as error:
                row.failure = f"batch {batch}: {first_line(error)}"
                continue
            row.first_call_s[batch] = time.perf_counter() - started
            reference = images if row.name == REFERENCE else reference
            error = relative_error(images.numpy(), reference.numpy())
            errors[row.name] = max(errors.get(row.name, 0.0), error)
            print(
                f"  [{size} warm-up] {row.name:<26} batch {batch}: "
                f"{row.first_call_s[batch]:6.1f} s, error {error:.1e}",
                flush=True,
            )

    runs = {row.name: {b: [] for b in args.batches} for row in rows}
    for repeat in range(args.repeats):  # interleaved: drift in machine load hits every variant
        for batch in inputs:
            for row in rows:
                if row.failure:
                    continue
                rate = timed(row.backend, placed[str(row_device(row)), batch], args.frames)
                runs[row.name][batch].append(rate)
                print(
                    f"  [{size} {repeat + 1}/{args.repeats}] {row.name:<26} batch {batch}: "
                    f"{rate:7.2f} frames/s",
                    flush=True,
                )

    base = statistics.median(runs[REFERENCE][args.batches[0]])
    results = {}
    for row in rows:
        if row.failure:
            results[row.name] = {"failure": row.failure}
            continue
        medians = {b: statistics.median(r) for b, r in runs[row.name].items()}
        top = variant_ceiling(row.name, ceilings)
        results[row.name] = {
            "frames_per_s": {str(b): v for b, v in medians.items()},
            "ceiling_share": {str(b): share(v, flop_per_frame, top) for b, v in medians.items()},
            f"vs_{REFERENCE.replace(' ', '_')}_batch_{args.batches[0]}": {
                str(b): v / base for b, v in medians.items()
            },
            "max_relative_error": errors[row.name],
            "first_call_s": {str(b): s for b, s in row.first_call_s.items()},
            "runs": {str(b): r for b, r in runs[row.name].items()},
        }
        if isinstance(row.backend, OnnxRuntimeBackend):
            results[row.name]["provider"] = row.backend.provider
    return {
        "architecture": {**vars(load_config(GanConfig, CONFIG).generator), "size": size},
        "parameters": sum(p.numel() for p in generator.parameters()),
        "gflop_per_frame": flop_per_frame / 1e9,
        "onnx_export_s": export_s,
        "variants": results,
    }


def print_table(size: int, result: dict, batches: list[int], repeats: int, frames: int) -> None:
    print(
        f"\n{size}x{size} generator ({CONFIG.relative_to(ROOT)} architecture, "
        f"{result['parameters'] / 1e6:.1f} M parameters, {result['gflop_per_frame']:.1f} GFLOP "
        f"per frame): frames/s (x vs {REFERENCE} batch {batches[0]}; share of the ceiling), "
        f"median of {repeats}, >= {frames} frames per timing"
    )
    header = "".join(f"{'batch ' + str(b):>23}" for b in batches)
    print(f"{'variant':<26}{header}{'error':>10}")
    ratio_key = f"vs_{REFERENCE.replace(' ', '_')}_batch_{batches[0]}"
    for name, row in result["variants"].items():
        if "failure" in row:
            print(f"{name:<26}  not run: {row['failure']}")
            continue
        cells = "".join(
            f"{row['frames_per_s'][str(b)]:>9.2f} ({row[ratio_key][str(b)]:4.2f}x)"
            f"{row['ceiling_share'][str(b)]:>6.1%}"
            for b in batches
        )
        print(f"{name:<26}{cells}{row['max_relative_error']:>10.1e}")
    compiled = result["variants"].get("torch.compile", {}).get("first_call_s")
    if compiled:
        firsts = ", ".join(f"batch {b}: {s:.0f} s" for b, s in compiled.items())
        print(f"torch.compile first calls (compiling, untimed): {firsts}")


def int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


@command_line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int_list, default=[256, 512], help="256,512")
    parser.add_argument("--batches", type=int_list, default=[1, 4, 8], help="1,4,8")
    parser.add_argument("--repeats", type=int, default=3, help="timings per variant (3)")
    parser.add_argument("--frames", type=int, default=8, help="min frames per timing (8)")
    parser.add_argument("--device", default="cpu", help="device of the torch rows (cpu)")
    parser.add_argument(
        "--skip", default="", type=lambda s: [v for v in s.split(",") if v], help="variant names"
    )
    parser.add_argument(
        "--quick", action="store_true", help="--sizes 256 --batches 1,4 --repeats 1 --frames 4"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "inference_generator.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.batches, args.repeats, args.frames = [256], [1, 4], 1, 4
    if args.repeats < 1 or args.frames < 1:
        parser.error("--repeats and --frames must be >= 1")

    host = machine()  # before the load of the benchmark itself
    ceilings = {"cpu": host["ceiling"]}
    ceilings["device"] = ceilings["cpu"] if args.device == "cpu" else ceiling(args.device)
    print(describe(host), flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            results[str(size)] = bench_size(size, args, Path(tmp), ceilings)
    seconds = time.perf_counter() - started

    for size in args.sizes:
        print_table(size, results[str(size)], args.batches, args.repeats, args.frames)
    # Other work on the machine slows every variant; the load average says whether there was.
    load_after = os.getloadavg()
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    print(
        f"\n{seconds:.0f} s in all, peak RSS {peak_gib:.1f} GiB, 1-min load average "
        f"{load_before[0]:.1f} before / {load_after[0]:.1f} after on {os.cpu_count()} cores"
    )

    report = {
        "machine": host,
        "device_ceiling": ceilings["device"] if args.device != "cpu" else None,
        "settings": {
            "batches": args.batches,
            "repeats": args.repeats,
            "min_frames_per_timing": args.frames,
            "device": args.device,
            "reference": f"{REFERENCE} batch {args.batches[0]}",
            "error": "max|variant - torch eager fp32| / max|torch eager fp32|, warm-up batch",
            "ceiling_share": "frames/s x GFLOP per frame / ceiling GFLOP/s of the variant's "
            "dtype and device (benchmarks/common.py)",
        },
        "seconds": seconds,
        "peak_rss_gib": peak_gib,
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "generator": results,
    }
    write_result(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
