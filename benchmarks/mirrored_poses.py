"""Is a model's low PCK a left/right swap? Scores the poses that MediaPipe finds in each
model's output as found and with left and right joints exchanged, and counts the frames
that read better exchanged (PCK@0.1 higher by more than 0.2, metrics.mirrored_share, which
`ganmotion eval` reports as "read mirrored"): a figure drawn without the face that shows
which way it faces is taken for one seen from behind.

    .venv/bin/python benchmarks/mirrored_poses.py --shards abl/synthetic \\
        critic=abl/synthetic_critic one_critic_step=abl/synthetic_one_critic_step
"""

from __future__ import annotations

import argparse

from ganmotion import metrics
from ganmotion.eval import detect_poses, generate, load_frames, parse_model, skeletons_of
from ganmotion.pose.detector import DetectorConfig, PoseDetector
from ganmotion.pose.schema import FLIP_PERMUTATION
from ganmotion.runtime.backends import load_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL", help="as ganmotion eval")
    parser.add_argument("--shards", required=True, help="the frames and their driving poses")
    parser.add_argument("--split", default="val")
    args = parser.parse_args()
    frames = load_frames(args.shards, args.split)
    detector = PoseDetector(DetectorConfig(static_image_mode=True))
    print(f"{len(frames.keys)} frames of {args.shards} ({args.split})")
    print("| model | PCK@0.1 as found | pose error px | PCK@0.1 left/right exchanged | "
          "pose error px | share of frames read mirrored |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, spec in (parse_model(m) for m in args.models):
        backend = load_backend(spec, shards=args.shards)
        skeletons = skeletons_of(frames, backend.skeleton)
        images, _ = generate(backend, skeletons, frames.keypoints, 16)
        found = detect_poses(images, detector)
        exchanged = found[:, FLIP_PERMUTATION]
        as_found = metrics.pose_accuracy(found, frames.keypoints)
        swapped = metrics.pose_accuracy(exchanged, frames.keypoints)
        mirrored = metrics.mirrored_share(found, frames.keypoints)
        print(f"| {label} | {as_found['pck@0.1']:.3f} | {as_found['error_px']:.2f} | "
              f"{swapped['pck@0.1']:.3f} | {swapped['error_px']:.2f} | "
              f"{mirrored:.3f} |")  # fmt: skip
    detector.close()


if __name__ == "__main__":
    main()
