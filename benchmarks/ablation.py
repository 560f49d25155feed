"""The quality ablation of benchmarks/RESULTS.md: what each part of the recipe is worth, every
row trained with the same budget on the same machine and scored on the same held-out frames.

    .venv/bin/python benchmarks/ablation.py --out ablation_out            # all rows, both clips
    .venv/bin/python benchmarks/ablation.py --out ablation_out --rows before composed \\
        --datasets synthetic --steps 100                                  # a quick look

Rows are configs/gan_demo.yaml (128 px, batch 8 x 2 processes on the CPU) with the overrides
in ROWS, each spelled out in full, so that a row means the same whatever the demo config
becomes. Datasets: the synthetic static-camera clip (scored on its held-out frames and on a
motion it never saw) and ../shared/data/taichi2.mp4 (MediaPipe keypoints and masks, a moving
camera, scored on its held-out last 10%). `ganmotion eval` scores every row of a dataset
together with nearest neighbour and the mean image; its report.md/json and contact sheet land
in OUT/eval_<dataset>_<split>/. OUT/ablation_<datasets>.json gathers the machine, the rows,
each run's training time and critic gap, and every report. Trainings run one after another:
on 2 cores two at once would each get half the machine. A row already trained in OUT is not
trained again, so `--inside-blur SIGMA[@DEPTH]` scores rows trained before with the person
blurred deep inside its alpha (`ganmotion eval --inside-blur`; the eval folders and the JSON
get a `_blur<SIGMA>` suffix).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import machine, write_result  # noqa: E402

PYTHON = sys.executable
TAICHI = ROOT.parent / "shared" / "data" / "taichi2.mp4"

# What the demo GAN was before issue 13 (the row every other row is compared with).
BEFORE = [
    "generator.alpha=false",
    "loss.mask_weight=0",
    "loss.person_weight=1",
    "loss.head_weight=1",
    "loss.gp_every=1",
    "loss.feature_matching_weight=0",
    "critic.norm=instance",
    "loss.adversarial_weight=1",
]
COMPOSED = ["generator.alpha=true", "loss.mask_weight=10", "loss.person_weight=1"]
PERSON = [*COMPOSED, "loss.feature_matching_weight=10", "loss.person_weight=3"]
CRITIC = ["critic.norm=none", "loss.adversarial_weight=0.1"]
# the rows from head_weight on build on it, and the alpha's rows on mask_30
HEAD_WEIGHT = [*BEFORE, *PERSON, *CRITIC, "loss.head_weight=5"]
MASK_30 = [*HEAD_WEIGHT, "loss.mask_weight=30"]
ADVERSARIAL_005 = [*MASK_30, "loss.mask_loss=bce", "loss.adversarial_weight=0.05"]
ROWS = {
    "before": BEFORE,  # the recipe before issue 13
    "composed": [*BEFORE, *COMPOSED],  # + masks and composition over the background
    "feature_matching": [*BEFORE, *COMPOSED, "loss.feature_matching_weight=10"],
    "person_weight": [*BEFORE, *PERSON],
    # + a critic that learns: no norm, the penalty on the mean patch score (a code change:
    # rows trained before it had the penalty on the sum), a 0.1 adversarial weight
    "critic": [*BEFORE, *PERSON, *CRITIC],
    # + skeleton limbs 2 px wide (1 px at 128 px by default): easier to see after the first
    # downsampling
    "thick_skeleton": [*BEFORE, *PERSON, *CRITIC, "data.stream.line_thickness=2"],
    # the critic row without the stem's full-resolution skip: no three-conv route from the
    # skeleton's strokes to the image (benchmarks/stripes.py)
    "no_full_res_skip": [*BEFORE, *PERSON, *CRITIC, "generator.full_res_skip=false"],
    # + a second critic at half resolution (pix2pixHD's multi-scale discriminator): patches
    # twice as large, to judge how the limbs of the figure fit together
    "two_scale_critic": [*BEFORE, *PERSON, *CRITIC, "critic.scales=2"],
    # the critic row with one critic update per generator update instead of two: a cheaper
    # step, and more of them in the same wall clock (STEP_SCALE)
    "one_critic_step": [*BEFORE, *PERSON, *CRITIC, "critic_steps=1"],
    # + the head's box counting 5 times more in the L1: a face drawn with its eyes and mouth
    # tells MediaPipe which way the figure faces (benchmarks/mirrored_poses.py)
    "head_weight": HEAD_WEIGHT,
    # + the gradient penalty on every 4th critic update only, weighed 4-fold (StyleGAN2's
    # lazy regularisation): a cheaper step, and more of them in the same wall clock
    "lazy_gp": [*HEAD_WEIGHT, "loss.gp_every=4"],
    # the same with the penalty on every 2nd critic update: once a step, weighed 2-fold
    "lazy_gp_2": [*HEAD_WEIGHT, "loss.gp_every=2"],
    # the head_weight row with the alpha's L1 to the mask weighed 30, not 10: on a moving
    # camera the mask alone teaches the alpha, and where it misses the person the mean
    # room shows through
    "mask_30": MASK_30,
    # the mask_30 row with the person's pixels counting 3 times more in the alpha's L1: an
    # alpha that covers a pixel that was the person in more than a quarter of similar poses,
    # not half (the sleeves and the hem that mask_30's alpha leaves transparent)
    "mask_person_3": [*MASK_30, "loss.mask_person_weight=3"],
    # the mask_30 row with the alpha's cross entropy to the mask instead of its L1: an alpha
    # that is the share of similar poses in which a pixel was the person, not their median,
    # so that an uncertain edge is a blend of person and room, not one or the other
    "mask_bce": [*MASK_30, "loss.mask_loss=bce"],
    # the mask_bce row with half the adversarial weight: on taichi2 its training L1 and its
    # val PSNR peak at step 200 of 400 and then fall back while the adversarial term keeps
    # pulling (the critic's gap stays near 5)
    "adversarial_005": ADVERSARIAL_005,
    # the adversarial_005 row without feature matching: at 60 minutes on taichi2 the texture
    # it asks for is painted in the wrong places deep inside the person, which costs SSIM
    # there (benchmarks/mask_ssim_depth.py)
    "no_feature_matching": [*ADVERSARIAL_005, "loss.feature_matching_weight=0"],
    # between the two: without feature matching taichi2 gains and the synthetic clip's unseen
    # motion loses PCK (the detector reads the texture at the person's outline)
    "feature_matching_3": [*ADVERSARIAL_005, "loss.feature_matching_weight=3"],
    # the adversarial_005 row with feature matching at the person's outline only: none deeper
    # than 3 px inside the mask (6 px at 256 px, where blurring the real frames there left
    # MediaPipe's detections whole)
    "feature_matching_outline": [
        *ADVERSARIAL_005,
        "loss.feature_matching_inside_weight=0",
        "loss.feature_matching_depth=3",
    ],
    # the same with the outline's band narrowed to 2 px: the synthetic clip's unseen motion
    # kept its pose at 3 px, and taichi2 gained less than without feature matching
    "feature_matching_outline_2": [
        *ADVERSARIAL_005,
        "loss.feature_matching_inside_weight=0",
        "loss.feature_matching_depth=2",
    ],
    # the head_weight row without alpha: the generator paints the room too (on a moving
    # camera, can it paint it better than the mean room?)
    "no_alpha": [*HEAD_WEIGHT, "generator.alpha=false", "loss.mask_weight=0"],
}
# Rows whose step is cheaper than the critic row's get the steps that fit the critic row's
# time: --steps times the ratio of the two step times, measured side by side (demo config,
# synthetic shards, 2 processes, 60 steps each, interleaved twice) on the 2-core AVX2 host:
# 0.992 s/step with two critic steps, 0.652 with one (benchmarks/RESULTS.md). lazy_gp:
# benchmarks/step_cost.py on the demo config and the synthetic shards, 1 thread, 24 rounds:
# 0.765 s/step mean against 0.934 with the penalty on every update (0.815 for lazy_gp_2).
STEP_SCALE = {"one_critic_step": 1.52, "lazy_gp": 1.22, "lazy_gp_2": 1.15}


def run(command: list[str], log: Path, env: dict | None = None) -> float:
    """Run a command with its output in `log`; its wall time in seconds, or exit on failure."""
    started = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    if done.returncode:
        sys.exit(f"ablation: {' '.join(command[:4])} ... failed (exit {done.returncode}): {log}")
    return time.perf_counter() - started


def prepare(out: Path, datasets: list[str]) -> dict[str, Path]:
    """Shards of each dataset (made once; reused when OUT already holds them)."""
    shards = {}
    module = [PYTHON, "-m"]
    if "synthetic" in datasets:
        for name, seed, frames in (("synthetic", None, 450), ("unseen", 11, 120)):
            folder = out / name
            if not (folder / "manifest.json").is_file():
                video = out / f"{name}.mp4"
                motion = ["--motion-seed", str(seed)] if seed is not None else []
                run(
                    [
                        *module,
                        "ganmotion.data.synthetic",
                        "--out",
                        str(video),
                        "--frames",
                        str(frames),
                        "--size",
                        "256",
                        *motion,
                    ],
                    out / f"{name}_video.log",
                )
                # The unseen motion is cut with the target's box, so that the plate the
                # models bake in is its room pixel for pixel.
                split = []
                if name == "unseen":
                    split = ["--val-fraction", "0", "--crop-like", str(shards["synthetic"])]
                run(
                    [
                        *module,
                        "ganmotion.data.prepare",
                        "--video",
                        str(video),
                        "--keypoints",
                        str(out / f"{name}.keypoints.npy"),
                        "--out",
                        str(folder),
                        "--size",
                        "128",
                        "--overwrite",
                        *split,
                    ],
                    out / f"{name}_prepare.log",
                )
            shards[name] = folder
    if "taichi" in datasets:
        if not TAICHI.is_file():
            sys.exit(f"ablation: {TAICHI} is missing (the taichi dataset needs it)")
        folder = out / "taichi"
        if not (folder / "manifest.json").is_file():
            run(
                [
                    *module,
                    "ganmotion.data.prepare",
                    "--video",
                    str(TAICHI),
                    "--out",
                    str(folder),
                    "--size",
                    "128",
                    "--overwrite",
                ],
                out / "taichi_prepare.log",
            )
        shards["taichi"] = folder
    return shards


def train(shards: Path, run_dir: Path, overrides: list[str], steps: int, port: int) -> dict:
    """Train one row (2 processes on the CPU, as `make demo`); its time and critic gap. A row
    whose run already finished in OUT is not trained again (its time is then that of the
    earlier run, read from its log's timestamps: absent)."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}
    command = [
        PYTHON, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--main_process_port", str(port), "train/gan.py", "--config", "configs/gan_demo.yaml",
        f"data.shards={shards}", f"run.out_dir={run_dir}", f"run.steps={steps}",
        # as drawn, whatever the demo's compose: --inside-blur scores rows with a blur
        "run.log_every=10", "compose.inside_blur=0", *overrides,
    ]  # fmt: skip
    seconds = None
    status = run_dir / "status.json"
    if not (status.is_file() and json.loads(status.read_text())["state"] == "finished"):
        seconds = run(command, run_dir.with_suffix(".log"), env)
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    gaps = [m["critic/gap"] for m in lines if "critic/gap" in m]
    fifth = max(1, len(gaps) // 5)
    return {
        "seconds": None if seconds is None else round(seconds, 1),
        "steps": steps,
        "seconds_per_step": None if seconds is None else round(seconds / steps, 3),
        "critic_gap_first_fifth": statistics.mean(gaps[:fifth]),
        "critic_gap_last_fifth": statistics.mean(gaps[-fifth:]),
        "last_losses": {k: v for k, v in lines[-1].items() if "/" in k} if lines else {},
    }


def evaluate(shards: Path, models: list[str], out: Path, log: Path, extra: list[str]) -> dict:
    run(
        [
            PYTHON,
            "-m",
            "ganmotion.eval",
            "--compare",
            "nearest",
            *models,
            "--shards",
            str(shards),
            "--out",
            str(out),
            *extra,
        ],
        log,
    )
    return json.loads((out / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("ablation_out"))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--datasets", nargs="+", default=["synthetic", "taichi"],
                        choices=["synthetic", "taichi"])  # fmt: skip
    parser.add_argument("--steps", type=int, default=400, help="steps per row [400: the demo's]")
    parser.add_argument("--port", type=int, default=29571)
    parser.add_argument("--seed", type=int, default=0, help="run.seed of every row [0]")
    parser.add_argument("--inside-blur", metavar="SIGMA[@DEPTH]",
                        help="score every row with this inside blur (ganmotion eval)")  # fmt: skip
    args = parser.parse_args()
    tag = f"_seed{args.seed}" if args.seed else ""  # seed 0 keeps the names of earlier runs
    scoring, blur = [], ""
    if args.inside_blur is not None:
        scoring, blur = ["--inside-blur", args.inside_blur], f"_blur{args.inside_blur}"
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "seed": args.seed, "rows": {}, "train": {}, "eval": {}}
    report["inside_blur"] = args.inside_blur
    report["rows"] = {name: ROWS[name] for name in args.rows}
    shards = prepare(args.out, args.datasets)
    for dataset in args.datasets:
        models = []
        for name in args.rows:
            run_dir = args.out / f"{dataset}_{name}{tag}"
            print(f"ablation: training {dataset} {name} ...", flush=True)
            overrides = [*ROWS[name], f"run.seed={args.seed}"]
            steps = round(args.steps * STEP_SCALE.get(name, 1))
            result = train(shards[dataset], run_dir, overrides, steps, args.port)
            report["train"][f"{dataset}/{name}"] = result
            print(f"  {result['seconds']} s, critic gap {result['critic_gap_first_fifth']:.3g}"
                  f" -> {result['critic_gap_last_fifth']:.3g}", flush=True)  # fmt: skip
            models.append(f"{name}={run_dir}")
        splits = {"val": []}
        if dataset == "synthetic":
            splits["unseen"] = ["--target-shards", str(shards["synthetic"])]
        for split, extra in splits.items():
            source = shards["unseen"] if split == "unseen" else shards[dataset]
            extra = [*extra, "--split", "train"] if split == "unseen" else extra
            out = args.out / f"eval_{dataset}_{split}{tag}{blur}"
            print(f"ablation: evaluating {dataset} {split} ...", flush=True)
            report["eval"][f"{dataset}/{split}"] = evaluate(
                source, models, out, Path(f"{out}.log"), [*extra, *scoring]
            )
        write_result(args.out / f"ablation_{'_'.join(args.datasets)}{tag}{blur}.json", report)
    print(f"wrote {args.out}/ablation_*.json and the reports in {args.out}/eval_*/")


if __name__ == "__main__":
    main()
