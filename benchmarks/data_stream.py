"""Data benchmark: the shard training stream against a seed-style loader, and prepare's speed.

    python benchmarks/data_stream.py [--video ../shared/data/taichi2.mp4] [--size 512]

1. samples/s at `--size` of the WebDataset stream (one process, and 2 loader workers) against
   a seed-style loader: one JPEG file per frame opened with PIL, the skeleton drawn per sample
   with PIL, one process. Same frames, same batch size, measured side by side in one run,
   median of `--repeats`; printed as ratios to the seed loader.
2. prepare's frames/s with 1 and 2 pose-detection worker processes on the same video.

Prints a table and writes JSON next to this file (results/data_stream.json) with the machine
(CPU model, flags, measured ceiling: benchmarks/common.py) and the exact command line. These
rates get no share of the ceiling: decoding JPEGs, warping and drawing are not matrix work, so
the matrix-product rate does not bound them; compare hosts through the CPU fields instead.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import describe, machine, write_result  # this folder is on sys.path
from PIL import Image, ImageDraw

from ganmotion.data.manifest import shard_urls
from ganmotion.data.prepare import PrepareConfig, prepare
from ganmotion.data.stream import StreamConfig, TrainingStream
from ganmotion.errors import command_line
from ganmotion.images import to_unit_range
from ganmotion.pose.schema import LIMB_COLOURS, LIMBS

HERE = Path(__file__).resolve().parent
DEFAULT_VIDEO = HERE.parent.parent / "shared" / "data" / "taichi2.mp4"


class SeedStyleFrames(torch.utils.data.Dataset):
    """The course project's loader: a folder of JPEGs and keypoints, decoded one by one."""

    def __init__(self, folder: Path, size: int):
        self.images = sorted(folder.glob("*.jpg"))
        self.size = size

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        path = self.images[index]
        image = Image.open(path).convert("RGB").resize((self.size, self.size))
        keypoints = np.load(path.with_suffix(".npy"))
        skeleton = Image.new("RGB", (self.size, self.size))
        draw = ImageDraw.Draw(skeleton)
        scale = self.size / image.width
        for (a, b), colour in zip(LIMBS, LIMB_COLOURS):
            if keypoints[a, 2] >= 0.5 and keypoints[b, 2] >= 0.5:
                draw.line(
                    [tuple(keypoints[a, :2] * scale), tuple(keypoints[b, :2] * scale)],
                    fill=colour,
                    width=max(1, self.size // 128),
                )
        to_tensor = lambda im: to_unit_range(torch.from_numpy(np.asarray(im)).permute(2, 0, 1))  # noqa: E731
        return to_tensor(skeleton), to_tensor(image)


def unpack_to_files(shards: Path, folder: Path) -> int:
    """Write every training sample as `<key>.jpg` + `<key>.npy`: the seed's on-disk layout."""
    folder.mkdir()
    count = 0
    for url in shard_urls(shards, "train"):
        with tarfile.open(url) as tar:
            for member in tar.getmembers():
                key, extension = member.name.split(".", 1)
                data = tar.extractfile(member).read()
                if extension == "jpg":
                    (folder / f"{key}.jpg").write_bytes(data)
                    count += 1
                elif extension == "pose.npy":  # the seed had no masks: mask.png stays behind
                    np.save(folder / f"{key}.npy", np.load(io.BytesIO(data)))
    return count


def samples_per_second(batches, batch_size: int, count: int, warmup: int = 3) -> float:
    iterator = iter(batches)
    for _ in range(warmup):
        next(iterator)
    start = time.perf_counter()
    for _ in range(count):
        next(iterator)
    return count * batch_size / (time.perf_counter() - start)


def bench_loaders(
    shards: Path, files: Path, size: int, batch: int, count: int, repeats: int
) -> dict:
    urls = shard_urls(shards, "train")
    total = count + 3
    variants = {
        "seed-style (PIL files, 1 process)": lambda: torch.utils.data.DataLoader(
            SeedStyleFrames(files, size), batch_size=batch, shuffle=True, num_workers=0
        ),
        "shard stream (1 process)": lambda: TrainingStream(
            urls, StreamConfig(size=size, batch_size=batch), total, num_workers=0
        ),
        "shard stream, no augmentation (1 process)": lambda: TrainingStream(
            urls, StreamConfig(size=size, batch_size=batch, augment=False), total, num_workers=0
        ),
        "shard stream (2 loader workers)": lambda: TrainingStream(
            urls, StreamConfig(size=size, batch_size=batch), total, num_workers=2
        ),
    }
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeats):  # interleaved, so drift in machine load hits every variant
        for name, make in variants.items():
            runs[name].append(samples_per_second(make(), batch, count))
    return {name: statistics.median(values) for name, values in runs.items()}


def bench_prepare(video: Path, size: int, workdir: Path) -> dict:
    results = {}
    for workers in (1, 2):
        out = workdir / f"prepare-{workers}"
        summary = prepare(video, out, PrepareConfig(size=size, workers=workers), progress=False)
        results[f"prepare, {workers} worker(s)"] = summary.frames_read / summary.seconds
    return results


@command_line
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=25, help="timed batches per measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "data_stream.json")
    args = parser.parse_args()
    host = machine()  # before the load of the benchmark itself
    print(describe(host), flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        prepare_fps = bench_prepare(args.video, args.size, workdir)
        shards = workdir / "prepare-2"
        frames = unpack_to_files(shards, workdir / "files")
        loaders = bench_loaders(
            shards, workdir / "files", args.size, args.batch, args.batches, args.repeats
        )

    seed = loaders["seed-style (PIL files, 1 process)"]
    print(
        f"\n{frames} training frames of {args.video.name} at {args.size}x{args.size}, "
        f"batch {args.batch}, median of {args.repeats}"
    )
    print(f"{'loader':<45} {'samples/s':>10} {'vs seed':>8}")
    for name, rate in loaders.items():
        print(f"{name:<45} {rate:>10.1f} {rate / seed:>7.2f}x")
    print(f"\n{'prepare (pose + crop + shards)':<45} {'frames/s':>10}")
    for name, rate in prepare_fps.items():
        print(f"{name:<45} {rate:>10.1f}")

    print()
    report = {
        "machine": host,
        "video": str(args.video),
        "size": args.size,
        "batch": args.batch,
        "frames": frames,
        "repeats": args.repeats,
        "loaders_samples_per_s": loaders,
        "prepare_frames_per_s": prepare_fps,
    }
    write_result(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())
