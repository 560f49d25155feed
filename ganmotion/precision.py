"""Whether this CPU runs bf16 and fp16 natively, and what to tell a user who asks for them.

Without native kernels oneDNN emulates the type, and a reduced precision is far slower than
fp32, not faster: a 3x3 convolution (64 channels, 4x128x128) took 46 ms in fp32 and 7.6 s under
bf16 autocast on a 2-core AMD EPYC with AVX2 (torch 2.11 and 2.14 alike), ~165x; a 512 px
validation of 16 frames in bf16 took 17 minutes there. fp16 is as slow on such CPUs.
"""

from __future__ import annotations

import torch

# What oneDNN needs for native kernels of each type, for the messages.
NATIVE_KERNELS = {"bf16": "AVX-512 or AMX", "fp16": "AVX512-FP16 or AMX-FP16"}


def cpu_runs_natively(precision: str) -> bool:
    """Whether oneDNN has native `precision` ("bf16" or "fp16") kernels on this CPU."""
    probe = {
        "bf16": "_is_mkldnn_bf16_supported",
        "fp16": "_is_mkldnn_fp16_supported",
    }[precision]
    try:
        return bool(getattr(torch.ops.mkldnn, probe)())
    except (AttributeError, RuntimeError):  # private ops: absent means no
        return False


def fastest_cpu_precision() -> str:
    """What to suggest instead of an emulated precision: bf16 where it is native, else fp32."""
    return "bf16" if cpu_runs_natively("bf16") else "fp32"


def emulated_on_cpu(precision: str) -> str | None:
    """Why `precision` will be slow on this CPU, in one line, or None when it will not be
    (fp32, or a type with native kernels)."""
    if precision not in NATIVE_KERNELS or cpu_runs_natively(precision):
        return None
    return (
        f"this CPU has no native {precision} kernels ({NATIVE_KERNELS[precision]}): a "
        f"convolution runs 100x or more slower than in fp32"
    )
