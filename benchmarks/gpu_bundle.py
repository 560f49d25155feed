"""What the GPU check needs on the GPU machine and cannot find there (`make gpu-bundle`).

    python benchmarks/gpu_bundle.py [--video ../shared/data/taichi2.mp4] [--out .gpu_bundle]

That machine has no MediaPipe, WebDataset or PyAV and reaches no package registry, and what
travels with a run is at most 64 MiB. So this writes, into --out (git-ignored):

  <clip>.mp4             the sample clip
  <clip>.keypoints.npy   its MediaPipe poses, (frames, 33, 3) pixels and visibility
  <clip>.masks.npz       its MediaPipe person masks (ganmotion.data.masks), so that `prepare
                         --keypoints` there makes the shards MediaPipe makes here
  wheels/                PyAV, WebDataset and braceexpand for CPython 3.12 on manylinux x86-64

and prints the size of what a run carries (the working tree and this folder) against the limit.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from ganmotion.data.masks import MaskWriter
from ganmotion.files import atomic_write
from ganmotion.pose.detector import DetectorConfig, detect_video
from ganmotion.video import probe_video

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT.parent / "shared" / "data" / "taichi2.mp4"
# What the check's parts import that the GPU machine's Python lacks (see the device tool's
# KINDS.md): the versions installed here, which the tests pass with.
WHEELS = ("av", "webdataset", "braceexpand")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")
CARRY_LIMIT_MIB = 64


def write_poses(video: Path, out: Path, workers: int) -> None:
    poses = detect_video(video, workers, DetectorConfig(segmentation=True))
    stem = out / video.stem
    with atomic_write(stem.with_name(f"{video.stem}.keypoints.npy")) as tmp:
        with open(tmp, "wb") as file:
            np.save(file, poses.keypoints.astype(np.float32))
    info = probe_video(video)
    empty = np.zeros((info.height, info.width), np.uint8)  # a frame without a person
    with atomic_write(stem.with_name(f"{video.stem}.masks.npz")) as tmp:
        with MaskWriter(tmp) as masks:
            for packed in poses.masks:
                masks.write(empty if packed is None else packed.unpack())
    found = int(np.isfinite(poses.keypoints).all(axis=(1, 2)).sum())
    print(f"{video.name}: {len(poses.keypoints)} frames, a person in {found}")


def download_wheels(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--python-version",
            "3.12",
            "--implementation",
            "cp",
            *platforms,
            "-d",
            str(folder),
            *pins,
        ],  # fmt: skip
        check=True,
    )
    print(f"wheels: {', '.join(sorted(p.name for p in folder.glob('*.whl')))}")


def mib(paths: list[Path]) -> float:
    return sum(p.stat().st_size for p in paths if p.is_file()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=SAMPLE, help="[../shared/data/taichi2.mp4]")
    parser.add_argument("--out", type=Path, default=ROOT / ".gpu_bundle", help="[.gpu_bundle]")
    parser.add_argument("--workers", type=int, default=2, help="MediaPipe processes [2]")
    args = parser.parse_args()
    if not args.video.is_file():
        raise SystemExit(f"{args.video}: no such file")
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.mp4"):  # the check takes the bundle's one clip
        if old.name != args.video.name:
            old.unlink()
    shutil.copyfile(args.video, args.out / args.video.name)
    write_poses(args.video, args.out, args.workers)
    download_wheels(args.out / "wheels")

    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    tree = mib([ROOT / p for p in listed if p])
    bundle = mib(list(args.out.rglob("*")))
    total = tree + bundle
    print(
        f"a run carries {total:.1f} MiB (working tree {tree:.1f}, {args.out.name} {bundle:.1f}) "
        f"of at most {CARRY_LIMIT_MIB}"
    )
    return 0 if total <= CARRY_LIMIT_MIB else 1


if __name__ == "__main__":
    raise SystemExit(main())
