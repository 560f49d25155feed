"""The one error type that crosses the library's edge, and the wrapper that reports it.

Library code raises `GanmotionError` with a message a user can act on; each command-line
entry point is wrapped in `command_line`, which prints that one line and exits non-zero.
"""

from __future__ import annotations

import errno
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec

P = ParamSpec("P")

EXIT_ERROR = 1  # a GanmotionError: bad input or environment
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports a process killed by it


class GanmotionError(Exception):
    """A problem with the user's input or environment, explained in one line."""


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def one_line(error: BaseException) -> str:
    """A library's exception as one line for our message: its type and the line of its text
    that says what went wrong. torch.load's refusal of a file that is not plain tensors is a
    page whose first line is about a change of default in PyTorch 2.6; what it met in the
    file is the line after "WeightsUnpickler error:"."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    telling = next(
        (after for before, after in zip(lines, lines[1:]) if before.endswith("error:")),
        lines[0] if lines else "",
    )
    return f"{type(error).__name__}: {telling}" if telling else type(error).__name__


def disk_full(error: BaseException) -> str | None:
    """ "No space left on device" (or "Disk quota exceeded") when `error` says the disk is
    full (an `OSError` ENOSPC or EDQUOT, or a library's error whose text says so, as
    safetensors' does), else None."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return os.strerror(error.errno)
    return next((text for text in map(os.strerror, DISK_FULL) if text in str(error)), None)


@contextmanager
def naming_full_disk(where: str | os.PathLike) -> Iterator[None]:
    """A full disk inside the block becomes one `GanmotionError` naming `where` (what was
    being written: a library's error names a hidden temporary, or nothing)."""
    try:
        yield
    except Exception as error:
        text = disk_full(error)
        if text is None:
            raise
        raise GanmotionError(f"{where}: {text}") from None


def interrupted() -> int:
    """What a Ctrl-C ends a command with: the line `interrupted` on stderr, and status 130."""
    print("interrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def command_line(main: Callable[P, int | None]) -> Callable[P, int]:
    """Wrap a command's `main` so that it returns an exit status instead of raising:

    - `GanmotionError` -> `error: <message>` on stderr, status 1 (no traceback: the message
      says what is wrong and with which file);
    - a full disk (`OSError` ENOSPC or EDQUOT, from whichever writer) -> one line naming
      the folder, status 1 (what was half written is removed by its `atomic_write`);
    - `KeyboardInterrupt` -> `interrupted` on stderr, status 130;
    - otherwise `main`'s own status (None counts as 0).

    While `main` runs, what FFmpeg, OpenCV and MediaPipe print natively is filtered out of
    stderr (`ganmotion.native_stderr`).

    Other exceptions are bugs and keep their traceback; `SystemExit` (argparse's usage errors,
    `--help`) passes through. Use as `@command_line` on `def main(argv=None) -> int`, and
    `raise SystemExit(main())` under `if __name__ == "__main__"`.
    """

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> int:
        from ganmotion.native_stderr import filtered_stderr

        try:
            with filtered_stderr():  # library noise off: the user sees our line
                status = main(*args, **kwargs)
        except GanmotionError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_ERROR
        except OSError as error:  # a full disk where no naming_full_disk named the place
            if error.errno not in DISK_FULL:
                raise
            where = f"{os.path.dirname(error.filename) or '.'}: " if error.filename else ""
            print(f"error: {where}{disk_full(error)}", file=sys.stderr)
            return EXIT_ERROR
        except KeyboardInterrupt:
            return interrupted()
        return 0 if status is None else status

    return run


@contextmanager
def interrupted_quietly() -> Iterator[None]:
    """Around a script's imports: torch and MediaPipe take seconds to load, and a Ctrl-C
    meanwhile ends the script as it would end the command (`interrupted`, status 130), not
    with a traceback into torch."""
    try:
        yield
    except KeyboardInterrupt:
        raise SystemExit(interrupted()) from None


@contextmanager
def children_ignore_interrupts() -> Iterator[None]:
    """Processes started inside this block never see SIGINT; this one sees it after the block.

    Ctrl-C in a terminal goes to the whole process group: a worker still importing torch or
    MediaPipe would print its own KeyboardInterrupt traceback around our one line. So SIGINT
    is blocked in this (main) thread, whose mask a spawned child inherits and keeps; and as
    another thread may take the signal meanwhile, a handler notes it. Either way the Ctrl-C
    interrupts this process as the block ends (ignoring it instead lost it: the run went on
    to the end), and the parent then stops its workers. One race remains: a thread that has
    taken the signal may run its handler a moment after the block ends; the main thread then
    gets its KeyboardInterrupt there, from the restored handler, a few bytecodes later.

    Where SIGINT is ignored (a background job of a script, `nohup`), the block leaves it so:
    the children inherit the ignoring, and a Ctrl-C is not turned into an interrupt here."""
    if (
        threading.current_thread() is not threading.main_thread()  # signals are the main's
        or signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    ):
        yield
        return
    noted: list[int] = []
    previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: noted.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)  # one pending: raised here
    if noted:
        raise KeyboardInterrupt
