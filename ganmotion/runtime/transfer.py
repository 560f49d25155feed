"""Batches between the host and the generator's device, for the video runner.

    transfer = DeviceTransfer(backend.device)
    skeletons = transfer.to_device(drawn)    # (N, S, S, 3) uint8 numpy -> (N, 3, S, S) float
                                             # in [-1, 1] on the device
    images = transfer.to_host(generated)     # (N, 3, S, S) float in [-1, 1] on the device ->
    images.wait()                            # (N, S, S, 3) uint8 numpy

Skeletons travel as uint8 and become floats on the device: a quarter of the bytes of the
float batch. On a CUDA GPU, both ways go through page-locked (pinned) host memory without
blocking: the copy in runs on a copy stream of its own, so it overlaps the generator's work
on the batch before, and `to_host` returns at once with the copy out queued behind the
generator, so the host can draw the next batch meanwhile (the runner keeps `in_flight`
batches going). On a CPU everything happens at once, as before this module; `wait` only
hands the result over.
"""

from __future__ import annotations

import numpy as np
import torch

from ganmotion.images import to_uint8_images, to_unit_range, uint8_channels_last


class Pending:
    """A batch on its way to the host: `wait()` returns it as numpy once it has arrived."""

    def __init__(self, host: np.ndarray | torch.Tensor, arrived: torch.cuda.Event | None = None):
        self.host, self.arrived = host, arrived

    def wait(self) -> np.ndarray:
        if self.arrived is None:
            return self.host
        self.arrived.synchronize()
        # A view of a fresh pinned tensor, which it keeps alive: PyTorch's pinned-memory cache
        # hands the memory out again only once the frames holding it are gone.
        return self.host.numpy()


class DeviceTransfer:
    """Copies for one device; `in_flight` is how many batches the runner should keep going
    (2 on a GPU, where the host prepares one while the device works on the other; 1
    elsewhere)."""

    def __init__(self, device: torch.device | str):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.in_flight = 2 if self.cuda else 1
        self.copies = torch.cuda.Stream(self.device) if self.cuda else None

    def to_device(self, drawn: np.ndarray) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 in [-1, 1] on the device."""
        batch = torch.from_numpy(np.ascontiguousarray(drawn))
        if not self.cuda:
            return to_unit_range(batch.permute(0, 3, 1, 2).to(self.device))
        pinned = batch.pin_memory()
        with torch.cuda.stream(self.copies):
            on_device = pinned.to(self.device, non_blocking=True)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_stream(self.copies)  # the generator starts once its batch has arrived
        on_device.record_stream(compute)  # its memory is the compute stream's to free
        return to_unit_range(on_device.permute(0, 3, 1, 2))

    def to_host(self, images: torch.Tensor) -> Pending:
        """(N, 3, S, S) float in [-1, 1] -> (N, S, S, 3) uint8 numpy, once `wait()`ed;
        values outside [-1, 1] are clipped, as `images.to_uint8_images` does."""
        if not self.cuda or images.device.type != "cuda":
            return Pending(to_uint8_images(images))
        return self._queued(uint8_channels_last(images).contiguous())

    def alpha_to_host(self, alpha: torch.Tensor) -> Pending:
        """(N, 1, S, S) float in [0, 1] -> (N, S, S) float32 numpy, once `wait()`ed."""
        alpha = alpha[:, 0].float()
        if not self.cuda or alpha.device.type != "cuda":
            return Pending(alpha.cpu().numpy())
        return self._queued(alpha)

    def _queued(self, on_device: torch.Tensor) -> Pending:
        host = torch.empty(on_device.shape, dtype=on_device.dtype, pin_memory=True)
        host.copy_(on_device, non_blocking=True)  # queued behind the generator's kernels
        arrived = torch.cuda.Event()
        arrived.record(torch.cuda.current_stream(self.device))
        return Pending(host, arrived)
