"""What a run reports: scalars to TensorBoard and metrics.jsonl, sample grids as PNG and
TensorBoard images. Only the main process writes; elsewhere every call is a no-op."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2

from ganmotion.errors import GanmotionError
from ganmotion.files import atomic_write


class Tracker:
    """`resumed_at`: the step a resumed run starts from. metrics.jsonl keeps what was logged up
    to it and drops the rest (steps the run will log again), or everything for a fresh run
    (None) in a folder that has one, so every step has one row."""

    def __init__(
        self, run_dir: Path, active: bool, tensorboard: bool, resumed_at: int | None = None
    ):
        self.run_dir = run_dir
        self.active = active
        self.writer = None
        if active and tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: slow

            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        self._metrics = None
        if active:
            path = run_dir / "metrics.jsonl"
            kept = [] if resumed_at is None else rows_through(path, resumed_at)
            with atomic_write(path) as tmp:
                tmp.write_text("".join(json.dumps(row) + "\n" for row in kept))
            self._metrics = open(path, "a")  # noqa: SIM115

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if not self.active:
            return
        clean = {k: (v if math.isfinite(v) else str(v)) for k, v in values.items()}
        self._metrics.write(json.dumps({"step": step, **clean}) + "\n")
        self._metrics.flush()
        if self.writer:
            for name, value in values.items():
                self.writer.add_scalar(name, value, step)

    def image(self, step: int, name: str, grid) -> None:
        """An RGB uint8 (H, W, 3) grid: `samples/<name>-<step>.png` and TensorBoard."""
        if not self.active:
            return
        folder = self.run_dir / "samples"
        folder.mkdir(exist_ok=True)
        final = folder / f"{name}-{step:06d}.png"
        with atomic_write(final) as tmp:
            if not cv2.imwrite(str(tmp), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR)):
                raise GanmotionError(f"{final}: cannot write the sample grid")
        if self.writer:
            self.writer.add_image(name, grid, step, dataformats="HWC")

    def close(self) -> None:
        if self._metrics:
            self._metrics.close()
        if self.writer:
            self.writer.close()


def rows_through(path: Path, step: int) -> list[dict]:
    """The rows of a metrics.jsonl logged at `step` or before; a last line cut short by a
    crash is dropped."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= step:
            rows.append(row)
    return rows


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
