"""`python -m ganmotion.eval`: reports, the contact sheet, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from conftest import make_checkpoint

from ganmotion.eval import contact_sheet, evaluate, load_frames, main, parse_model
from ganmotion.pose.render import SkeletonStyle

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def model(synthetic_shards, tmp_path_factory):
    """An untrained 64 px U-Net checkpoint that names the synthetic shards as its data."""
    return make_checkpoint(tmp_path_factory.mktemp("model"), size=64, shards=synthetic_shards)


def test_compare_writes_the_report_table_and_contact_sheet(
    synthetic_shards, model, tmp_path, capsys
):
    out = tmp_path / "eval"
    code = main(["--compare", "nearest", f"unet={model}", "--shards", str(synthetic_shards),
                 "--out", str(out), "--sheet-frames", "5"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    frames = load_frames(str(synthetic_shards), "val")
    assert report["frames"] == len(frames.keys) and report["split"] == "val"
    assert list(report["models"]) == ["nearest", "unet", "mean"]  # mean: the floor row
    assert report["models"]["unet"]["weights"] == str(model.resolve())
    for row in report["models"].values():
        assert 0 < row["ssim"] < 1 and row["psnr"] > 0 and row["l1"] > 0
        for region in ("box", "mask"):  # the synthetic shards carry exact person masks
            assert 0 < row[f"{region}_ssim"] < 1 and row[f"{region}_psnr"] > 0, row
            assert row[f"{region}_l1"] > 0
        assert 0 <= row["pck@0.1"] <= 1 and 0 <= row["detected"] <= 1
        assert row["lpips"] is None  # no backbone given: skipped, not invented
    assert report["real"]["detected"] == 1.0  # MediaPipe finds the synthetic person
    # nearest looks up training frames: a real person, so a better SSIM than noise
    assert report["models"]["nearest"]["ssim"] > report["models"]["unet"]["ssim"]
    # ... and the person's pixels are far closer than the mean crop's, the floor
    nearest, floor = report["models"]["nearest"], report["models"]["mean"]
    assert nearest["mask_l1"] < floor["mask_l1"] and nearest["box_ssim"] > floor["box_ssim"]
    assert floor["flicker"] == 0  # a constant image does not flicker
    table = (out / "report.md").read_text()
    assert "| nearest |" in table and "| unet |" in table and "| real frames (reference) |" in table
    assert "| mean |" in table and "person box PSNR" in table and "person mask PSNR" in table
    printed = capsys.readouterr().out
    assert "LPIPS skipped" in printed and "| unet |" in printed
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet.shape[0] == 5 * 64  # skeleton, real, nearest, unet, mean
    assert sheet.shape[1] >= 5 * 64
    assert sorted(p.name for p in out.iterdir()) == [
        "contact_sheet.png",
        "report.json",
        "report.md",
    ]


def test_models_drawn_in_two_styles_get_a_skeleton_row_each(synthetic_shards, tmp_path, capsys):
    """A model trained on dimly drawn hidden joints (`data.stream.occluded`) sees other
    skeletons than nearest neighbour: the sheet shows both, each named after its first model."""
    dim = make_checkpoint(tmp_path / "dim", size=64, shards=synthetic_shards)
    state = json.loads((dim / "state.json").read_text())
    state["skeleton"] = SkeletonStyle.for_size(64, occluded=0.4).to_dict()
    (dim / "state.json").write_text(json.dumps(state))
    _, outputs, frames, skeletons = evaluate(SimpleNamespace(
        model=None, compare=["nearest", f"dim={dim}"], no_floor=True, shards=synthetic_shards,
        split="val", max_frames=4, lpips_backbone=None, no_pose=True, inside_blur=None,
        target_shards=None, batch=4))  # fmt: skip
    assert list(skeletons) == ["skeleton (nearest)", "skeleton (dim)"]
    # The synthetic poses hide no joint, so the two styles draw the same pixels here.
    np.testing.assert_array_equal(*skeletons.values())
    sheet = contact_sheet(frames, skeletons, outputs, columns=2)
    assert sheet.shape[0] == 5 * 64  # two skeleton rows, real, nearest, dim
    capsys.readouterr()


def test_a_long_row_label_is_drawn_whole_before_the_first_frame():
    """The label column is as wide as the longest label is drawn (it was 9 px a letter, and
    `mask_person_3` lost its last letter under the frames)."""
    frames = SimpleNamespace(keys=["a", "b"], size=16, images=np.zeros((2, 16, 16, 3), np.uint8))
    label = "mask_person_weight_3"  # wide letters: 181 px at the sheet's font
    sheet = contact_sheet(frames, {"skeleton": frames.images}, {label: frames.images}, columns=2)
    label_width = sheet.shape[1] - 2 * 16
    ink = np.flatnonzero((sheet[2 * 16 : 3 * 16, :label_width] < 128).any(axis=(0, 2)))
    assert ink.size and ink[-1] < label_width - 4  # the text ends clear of the frames


def test_model_labels():
    assert parse_model("nearest") == ("nearest", "nearest")
    assert parse_model("gan=runs/x") == ("gan", "runs/x")
    assert parse_model("runs/gan_512") == ("gan_512", "runs/gan_512")
    assert parse_model("exports/gen.onnx") == ("gen", "exports/gen.onnx")
    assert parse_model("runs/gan/checkpoints/step-000400") == (
        "gan/step-000400",
        "runs/gan/checkpoints/step-000400",
    )


def fails(capsys, *argv) -> str:
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    return err


def test_shards_without_a_validation_split_are_named(synthetic_clip, model, tmp_path, capsys):
    from ganmotion.data.prepare import PrepareConfig, prepare

    video, keypoints = synthetic_clip
    shards = tmp_path / "all_train"
    config = PrepareConfig(size=64, val_fraction=0.0)
    prepare(video, shards, config, keypoints_file=keypoints, progress=False)
    err = fails(
        capsys, "--model", str(model), "--shards", str(shards), "--out", str(tmp_path / "e")
    )
    assert "has no 'val' split" in err and not (tmp_path / "e").exists()


def test_a_model_of_another_size_is_refused(synthetic_shards, tmp_path, capsys):
    other = make_checkpoint(tmp_path / "ckpt", size=128)
    err = fails(capsys, "--model", str(other), "--shards", str(synthetic_shards),
                "--no-pose", "--out", str(tmp_path / "e"))  # fmt: skip
    assert "generates 128 px images" in err and "64 px frames" in err
    assert not (tmp_path / "e").exists()


def test_an_empty_split_is_an_error(synthetic_shards, model, tmp_path, capsys):
    shards = tmp_path / "shards"
    shutil.copytree(synthetic_shards, shards)
    for tar in shards.glob("val-*.tar"):
        tarfile.open(tar, "w").close()  # the shard is there, with no samples in it
    err = fails(capsys, "--model", str(model), "--shards", str(shards), "--no-pose",
                "--out", str(tmp_path / "e"))  # fmt: skip
    # The manifest says the shard holds samples: that is what the line reports.
    assert "val-000000.tar: holds 0 samples, manifest.json says" in err
    assert not (tmp_path / "e").exists()


def test_nothing_to_evaluate_is_an_error(synthetic_shards, tmp_path, capsys):
    err = fails(capsys, "--shards", str(synthetic_shards), "--out", str(tmp_path / "e"))
    assert "give --model or --compare" in err


# -------------------------------------------- quality on poses the training never saw


@pytest.mark.slow
def test_a_trained_generator_beats_nearest_neighbour_on_unseen_poses(tmp_path):
    """Synthetic clips give exact ground truth for any pose: train the U-Net (L1, 400 steps
    at 128 px, about a minute on 2 cores) on one motion of a person, then evaluate on
    another motion of the same person, against nearest neighbour over the training frames."""
    from ganmotion.config import load_config
    from ganmotion.data.prepare import PrepareConfig, prepare
    from ganmotion.data.synthetic import write_clip
    from ganmotion.training.config import VanillaConfig
    from ganmotion.training.loop import Trainer

    def shards(name: str, motion_seed: int, frames: int, val_fraction: float):
        video, keypoints = write_clip(
            tmp_path / f"{name}.mp4", frames, 256, motion_seed=motion_seed
        )
        config = PrepareConfig(size=128, samples_per_shard=100, val_fraction=val_fraction)
        prepare(video, tmp_path / name, config, keypoints_file=keypoints, progress=False)
        return tmp_path / name

    target, unseen = shards("target", 0, 300, 0.1), shards("unseen", 11, 60, 0.0)
    overrides = [
        f"data.shards={target}", f"run.out_dir={tmp_path / 'run'}", "run.steps=400",
        "data.stream.size=128", "generator.size=128", "generator.depth=5",
        "run.tensorboard=false", "run.sample_every=1000", "run.checkpoint_every=1000",
    ]  # fmt: skip
    config = load_config(VanillaConfig, ROOT / "configs" / "vanilla_tiny.yaml", overrides)
    assert Trainer(config).run() == 0

    out = tmp_path / "eval"
    args = [
        "--compare", "nearest", f"unet={tmp_path / 'run'}", "--shards", str(unseen),
        "--split", "train", "--target-shards", str(target), "--out", str(out),
    ]  # fmt: skip
    assert main(args) == 0
    rows = json.loads((out / "report.json").read_text())["models"]
    unet, nearest = rows["unet"], rows["nearest"]
    shortfall = {
        k: round(nearest[k] - unet[k], 4) for k in ("ssim", "pck@0.1") if unet[k] <= nearest[k]
    }
    assert not shortfall, f"the generator falls short of nearest neighbour by {shortfall}: {rows}"


@pytest.mark.slow
def test_compare_on_the_sample_video(taichi_shards, tmp_path):
    """`--compare nearest vanilla gan` on taichi2.mp4 (MediaPipe keypoints, 128 px), with run
    folders named vanilla and gan as a user would have them; a few training steps each."""
    from ganmotion.config import load_config
    from ganmotion.training.config import GanConfig, VanillaConfig
    from ganmotion.training.loop import Trainer

    for name, kind, steps in (("vanilla", VanillaConfig, 20), ("gan", GanConfig, 10)):
        overrides = [f"data.shards={taichi_shards}", f"run.out_dir={tmp_path / name}",
                     f"run.steps={steps}", "run.tensorboard=false"]  # fmt: skip
        config = load_config(kind, ROOT / "configs" / f"{name}_demo.yaml", overrides)
        assert Trainer(config).run() == 0
    result = subprocess.run(
        [sys.executable, "-m", "ganmotion.eval", "--compare", "nearest", "vanilla", "gan",
         "--shards", str(taichi_shards), "--max-frames", "30", "--out", "eval"],
        cwd=tmp_path, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    table = (tmp_path / "eval" / "report.md").read_text()
    for row in ("nearest", "vanilla", "gan", "mean", "real frames (reference)"):
        assert f"| {row} |" in table and f"| {row} |" in result.stdout
    report = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert report["frames"] == 30 and report["real"]["detected"] > 0.9
    # MediaPipe's masks: the person columns are measured on the real footage too
    assert all(0 < row["mask_ssim"] < 1 for row in report["models"].values())
    sheet = cv2.imread(str(tmp_path / "eval" / "contact_sheet.png"))
    assert sheet.shape[0] == 6 * 128  # skeleton, real, nearest, vanilla, gan, mean


# -------------------------------------------------------------------------- alpha


def test_mask_iou_is_the_overlap_of_alpha_and_mask_over_their_union():
    from ganmotion.eval import mask_iou

    masks = np.zeros((3, 4, 4), np.uint8)
    masks[0, :2] = 255  # half the frame
    masks[1, :, :1] = 255
    alpha = np.zeros((3, 4, 4), np.float32)
    alpha[0, :1] = 0.9  # a quarter, inside the mask: IoU 1/2
    alpha[1] = 0.6  # the whole frame over a quarter of it: IoU 1/4
    alpha[2] = 0.5  # not above 0.5, where the mask is empty too: they agree, IoU 1
    assert mask_iou(alpha, masks) == pytest.approx((0.5 + 0.25 + 1) / 3)


def test_a_model_with_alpha_gets_a_mask_iou_column(synthetic_shards, tmp_path, capsys):
    from test_export import make_alpha_checkpoint

    alpha = make_alpha_checkpoint(tmp_path / "alpha", 64, synthetic_shards)
    out = tmp_path / "eval"
    code = main(["--model", f"alpha={alpha}", "--shards", str(synthetic_shards), "--no-pose",
                 "--max-frames", "4", "--out", str(out)])  # fmt: skip
    assert code == 0
    rows = json.loads((out / "report.json").read_text())["models"]
    assert 0 < rows["alpha"]["mask_iou"] < 1
    assert rows["mean"]["mask_iou"] is None  # the floor row has no alpha
    assert 0 < rows["alpha"]["mask_ssim"] < 1  # the other columns as for any model
    table = (out / "report.md").read_text()
    assert "alpha mask IoU ↑" in table
    floor = next(line for line in table.splitlines() if line.startswith("| mean |"))
    assert floor.rstrip(" |").endswith("–")  # the last column: no alpha, no IoU
    capsys.readouterr()


def test_the_mask_iou_column_stays_empty_without_masks(synthetic_shards):
    import dataclasses

    from ganmotion.eval import score

    frames = load_frames(str(synthetic_shards), "val", max_frames=2)
    alpha = frames.masks.astype(np.float32) / 255
    assert score(frames.images, frames, alpha=alpha)["mask_iou"] == 1.0  # the real mask itself
    unmasked = dataclasses.replace(frames, masks=None)  # shards prepared before masks
    assert score(frames.images, unmasked, alpha=alpha)["mask_iou"] is None
