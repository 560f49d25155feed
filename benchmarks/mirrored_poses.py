"""Is a model's low PCK a left/right swap, and which joints lose it? Scores the poses that
MediaPipe finds in each model's output (and, with --real, in the real frames) as found and
with left and right joints exchanged, and counts the frames that read better exchanged
(PCK@0.1 higher by more than 0.2, metrics.mirrored_share, which `ganmotion eval` reports as
"read mirrored"): a figure drawn without the face that shows which way it faces is taken for
one seen from behind. Per limb pair (legs: knees and ankles; arms: elbows and wrists), the
share of frames where exchanging that pair alone brings its joints closer by more than 0.2
torso heights each: one leg drawn where the other should be; and the PCK@0.1 with every
such pair put back in its better order, which bounds what the swaps cost.

With --per-joint, a table of each joint's PCK@0.1 and its mean offset from the driving
position (x, y in torso heights; +y is down): a joint the detector places off in the same
direction in most frames is drawn off, not noisy.

    .venv/bin/python benchmarks/mirrored_poses.py --shards abl/synthetic \\
        critic=abl/synthetic_critic one_critic_step=abl/synthetic_one_critic_step
    .venv/bin/python benchmarks/mirrored_poses.py --shards OUT/shards shipped=OUT/run \\
        --real --per-joint --inside-blur 1.5@6
"""

from __future__ import annotations

import argparse

import numpy as np

from ganmotion import metrics
from ganmotion.eval import detect_poses, generate, load_frames, parse_model, skeletons_of
from ganmotion.models.generator import INSIDE_BLUR_HELP, ComposeConfig
from ganmotion.pose.detector import DetectorConfig, PoseDetector
from ganmotion.pose.schema import FLIP_PERMUTATION, JOINT, REDUCED_JOINT_NAMES
from ganmotion.runtime.backends import load_backend

LIMB_PAIRS = {"legs": ("knee", "ankle"), "arms": ("elbow", "wrist")}
LIMB_MARGIN = 0.2  # torso heights per joint the exchanged pair must be closer by


def limb_swaps(
    found: np.ndarray, driving: np.ndarray, parts: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool each: the frames judged (a person found, the driving torso visible) and
    those where exchanging the left and right `parts` (e.g. knee, ankle) alone brings them
    closer to the driving joints by more than LIMB_MARGIN torso heights per joint."""
    left = [JOINT[f"left_{p}"] for p in parts]
    right = [JOINT[f"right_{p}"] for p in parts]
    torso = metrics.torso_height(driving)

    def error(a: list[int], b: list[int]) -> np.ndarray:  # found a against driving b
        return np.nansum(np.linalg.norm(found[:, a, :2] - driving[:, b, :2], axis=-1), axis=1)

    as_found = error(left, left) + error(right, right)
    exchanged = error(right, left) + error(left, right)
    judged = np.isfinite(torso) & np.isfinite(found[:, left + right, :2]).all(axis=(1, 2))
    return judged, judged & (exchanged < as_found - LIMB_MARGIN * torso * len(left + right))


def limb_swapped_share(found: np.ndarray, driving: np.ndarray, parts: tuple[str, ...]) -> float:
    """Share of the judged frames whose `parts` read swapped (`limb_swaps`); NaN when none
    is judged."""
    judged, swapped = limb_swaps(found, driving, parts)
    return float(swapped[judged].mean()) if judged.any() else np.nan


def unswapped(found: np.ndarray, driving: np.ndarray) -> np.ndarray:
    """The found poses with every limb pair that reads swapped put back in its better order:
    what PCK would be if the detector never took one leg or arm for the other."""
    fixed = found.copy()
    for parts in LIMB_PAIRS.values():
        _, frames = limb_swaps(found, driving, parts)
        left = [JOINT[f"left_{p}"] for p in parts]
        right = [JOINT[f"right_{p}"] for p in parts]
        fixed[np.ix_(frames, left + right)] = found[np.ix_(frames, right + left)]
    return fixed


def joint_table(found: dict[str, np.ndarray], driving: np.ndarray) -> list[str]:
    """Markdown rows: per reduced joint, each pose set's PCK@0.1 (mean x, y offset), judged
    as `metrics.pose_accuracy` judges."""
    rows = ["| joint | " + " | ".join(found) + " |", "| --- |" + " ---: |" * len(found)]
    torso = metrics.torso_height(driving)
    columns = []
    for poses in found.values():
        frames, judged, distance, relative = metrics.pose_errors(poses, driving, 0.5)
        hits = judged & (np.nan_to_num(relative, nan=np.inf) <= 0.1)
        seen = judged & np.isfinite(distance)
        joints = metrics.POSE_JOINTS
        offset = poses[frames][:, joints, :2] - driving[frames][:, joints, :2]
        columns.append((judged, hits, seen, offset / torso[frames][:, None, None]))
    for j, name in enumerate(REDUCED_JOINT_NAMES):
        cells = []
        for judged, hits, seen, offset in columns:
            dx, dy = offset[seen[:, j], j].mean(axis=0) if seen[:, j].any() else (np.nan,) * 2
            cells.append(f"{hits[:, j][judged[:, j]].mean():.2f} ({dx:+.2f}, {dy:+.2f})")
        rows.append(f"| {name} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+", metavar="LABEL=MODEL", help="as ganmotion eval")
    parser.add_argument("--shards", required=True, help="the frames and their driving poses")
    parser.add_argument("--split", default="val")
    parser.add_argument("--real", action="store_true", help="also the real frames' poses")
    parser.add_argument("--per-joint", action="store_true", help="also the per-joint table")
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]", help=INSIDE_BLUR_HELP)
    args = parser.parse_args()
    torch_options = {"compose": ComposeConfig.parse(args.inside_blur)}
    frames = load_frames(args.shards, args.split)
    detector = PoseDetector(DetectorConfig(static_image_mode=True))
    found = {}
    for label, spec in (parse_model(m) for m in args.models):
        backend = load_backend(spec, shards=args.shards, torch_options=torch_options)
        skeletons = skeletons_of(frames, backend.skeleton)
        images, _ = generate(backend, skeletons, frames.keypoints, 16)
        found[label] = detect_poses(images, detector)
    if args.real:
        found["real frames"] = detect_poses(frames.images, detector)
    detector.close()
    print(f"{len(frames.keys)} frames of {args.shards} ({args.split})")
    print("| poses | PCK@0.1 as found | pose error px | PCK@0.1 left/right exchanged | pose "
          "error px | share of frames read mirrored | legs swapped | arms swapped | PCK@0.1 limbs "
          "unswapped |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, poses in found.items():
        as_found = metrics.pose_accuracy(poses, frames.keypoints)
        swapped = metrics.pose_accuracy(poses[:, FLIP_PERMUTATION], frames.keypoints)
        mirrored = metrics.mirrored_share(poses, frames.keypoints)
        limbs = [limb_swapped_share(poses, frames.keypoints, p) for p in LIMB_PAIRS.values()]
        fixed = metrics.pose_accuracy(unswapped(poses, frames.keypoints), frames.keypoints)
        print(f"| {label} | {as_found['pck@0.1']:.3f} | {as_found['error_px']:.2f} | "
              f"{swapped['pck@0.1']:.3f} | {swapped['error_px']:.2f} | "
              f"{mirrored:.3f} | {limbs[0]:.3f} | {limbs[1]:.3f} | "
              f"{fixed['pck@0.1']:.3f} |")  # fmt: skip
    if args.per_joint:
        print("\nPCK@0.1 per joint (mean offset x, y in torso heights):")
        print("\n".join(joint_table(found, frames.keypoints)))


if __name__ == "__main__":
    main()
