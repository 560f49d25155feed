"""Library noise off the user's stderr: what FFmpeg, OpenCV, MediaPipe and TensorFlow Lite
print from C and C++ ("moov atom not found", "W0000 ... inference_feedback_manager.cc",
"INFO: Created TensorFlow Lite XNNPACK delegate") around our one-line error or progress bar.

They write to file descriptor 2 directly, from native threads and from worker processes, so
no Python logging setting reaches them (GLOG_minloglevel and TF_CPP_MIN_LOG_LEVEL do not
either, measured with mediapipe 0.10.21). So, for the length of a command, descriptor 2 is a
pipe: a thread reads it and passes on to the real stderr everything but whole lines of known
library noise (`NOISE`). Python's own stderr (tracebacks, logging, tqdm's partial lines) goes
through unchanged, and so does what child processes, which inherit the pipe, write.

    with filtered_stderr():
        ...                                  # the command

GANMOTION_NATIVE_LOGS=1 in the environment turns the filter off (to see those lines).
"""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Lines dropped, each from where it starts to its end: a native line can follow a progress
# bar's partial line in the same read ("\rpose: 3%|█ |W0000 ..."), and the bar's part stays.
# Each is a diagnostic of a library, not of the user's input: our own one-line error says
# what is wrong with the file.
NOISE = re.compile(
    rb"(?:"
    rb"[WI]\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] "  # absl/glog warnings and info
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called"
    rb"|INFO: Created TensorFlow Lite "
    rb"|\[[\w,]+ @ 0x[0-9a-f]+\] "  # FFmpeg's av_log: [mov,mp4,... @ 0x55d0...] moov atom ...
    rb"|\[ WARN:\d+@[\d.]+\] "  # OpenCV's warnings
    rb"|libpng error: "  # (OpenCV returns False: our line names the file)
    rb").*$"
)
# The start of a line that may still become noise: held back until its end arrives, since
# TF Lite and FFmpeg write a line in parts ("INFO: ", then the message, then "\n").
MAYBE_NOISE = re.compile(rb"(?:INFO: |WARNING: |[WI]\d{4} |libpng |\[[\w,]+ @ 0x)[^\n]*$")
ENABLE_VARIABLE = "GANMOTION_NATIVE_LOGS"
JOIN_SECONDS = 2.0  # waiting for the last lines when children still hold the pipe open


def without_noise(line: bytes) -> bytes:
    """A line (without its newline) as passed on: with its newline, or, where noise starts in
    it, only what comes before (no newline: a bar's partial line stays partial)."""
    found = NOISE.search(line)
    return line + b"\n" if found is None else line[: found.start()]


def _pass_on(read_end: int, out: int) -> None:
    """Copy the pipe to `out` until every writer has closed it, without the noise. A partial
    line (tqdm's bar, redrawn with \r) goes on at once, up to where noise may be starting."""
    pending = b""
    while chunk := os.read(read_end, 65536):
        *lines, pending = (pending + chunk).split(b"\n")
        kept = b"".join(without_noise(line) for line in lines)
        starts = [m.start() for m in (NOISE.search(pending), MAYBE_NOISE.search(pending)) if m]
        cut = min(starts, default=len(pending))
        kept, pending = kept + pending[:cut], pending[cut:]
        if kept:
            os.write(out, kept)
    if pending:
        os.write(out, without_noise(pending).rstrip(b"\n"))
    os.close(read_end)


@contextmanager
def filtered_stderr() -> Iterator[None]:
    """Descriptor 2 through the noise filter for the length of the block (see the module
    docstring); a no-op when stderr is not the process's descriptor 2 (a test capturing
    it), when the variable GANMOTION_NATIVE_LOGS is set, or off the main thread."""
    try:
        real = sys.stderr.fileno() == 2
    except (AttributeError, OSError, ValueError):  # replaced by an object without one
        real = False
    if (
        not real
        or os.environ.get(ENABLE_VARIABLE)
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    reader = threading.Thread(
        target=_pass_on, args=(read_end, saved), name="stderr-filter", daemon=True
    )
    reader.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # our last writer closed: the reader ends once children have too
        reader.join(JOIN_SECONDS)
        if not reader.is_alive():
            os.close(saved)
