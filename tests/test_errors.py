import argparse
import signal

import pytest

from ganmotion.errors import GanmotionError, command_line


@command_line
def _main(outcome: str = "ok") -> int | None:
    """The wrapped command's docstring."""
    if outcome == "error":
        raise GanmotionError("clip.mp4: no such file")
    if outcome == "interrupt":
        raise KeyboardInterrupt
    if outcome == "bug":
        raise ValueError("a bug keeps its traceback")
    if outcome == "usage":
        argparse.ArgumentParser(prog="cmd").parse_args(["--nope"])
    return None if outcome == "none" else 3


def test_a_ganmotion_error_is_one_line_and_status_1(capsys):
    assert _main("error") == 1
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "error: clip.mp4: no such file\n")


def test_ctrl_c_is_a_short_line_and_status_130(capsys):
    assert _main("interrupt") == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_the_commands_own_status_passes_through():
    assert _main() == 3
    assert _main("none") == 0


def test_bugs_and_usage_errors_are_not_swallowed():
    with pytest.raises(ValueError):
        _main("bug")
    with pytest.raises(SystemExit) as exit_:
        _main("usage")
    assert exit_.value.code == 2


def test_the_wrapper_keeps_the_commands_name_and_docstring():
    assert _main.__name__ == "_main"
    assert _main.__doc__ == "The wrapped command's docstring."


@pytest.fixture
def sigint(request):
    """SIGINT handled as `request.param` (Python's default: a KeyboardInterrupt; or ignored)
    for the test, whatever pytest inherited: a suite started as a background job of a script
    runs with SIGINT ignored, and there the default-handler test could not see its interrupt."""
    previous = signal.signal(signal.SIGINT, request.param)
    yield
    signal.signal(signal.SIGINT, previous)


def _blocked_then_wait(queue) -> None:
    import signal

    queue.put(signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []))
    signal.pause()


@pytest.mark.parametrize("sigint", [signal.default_int_handler], indirect=True)
def test_a_ctrl_c_while_workers_start_is_kept_for_after_and_never_reaches_them(sigint):
    import multiprocessing
    import os
    import time

    from ganmotion.errors import children_ignore_interrupts

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    still_here = False
    with pytest.raises(KeyboardInterrupt):
        with children_ignore_interrupts():
            worker = context.Process(target=_blocked_then_wait, args=(queue,), daemon=True)
            worker.start()
            os.kill(os.getpid(), signal.SIGINT)  # kept for after the block, not lost
            still_here = True
        # Another thread of this process may take the signal and run its handler just after
        # the block; the KeyboardInterrupt then comes from the restored handler, a moment
        # later. (Asserting it at the block's end failed CI once; with three other threads about,
        # 125 of 300 tries came late.) Short sleeps: the main thread's sleep is not cut by another
        # thread's signal.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            time.sleep(0.01)
    assert still_here
    assert queue.get(timeout=60) is True  # the worker started with SIGINT blocked
    os.kill(worker.pid, signal.SIGINT)  # so it keeps waiting
    worker.join(timeout=1)
    assert worker.is_alive()
    worker.terminate()
    worker.join()


def _report_sigint(queue) -> None:
    import signal

    queue.put(signal.getsignal(signal.SIGINT) is signal.SIG_IGN)


@pytest.mark.parametrize("sigint", [signal.SIG_IGN], indirect=True)
def test_where_sigint_is_ignored_the_block_leaves_it_ignored(sigint):
    """A background job (`cmd &` in a script, `nohup`) runs with SIGINT ignored: the block
    must not turn a Ctrl-C meant for others into an interrupt, and its children ignore it too."""
    import multiprocessing
    import os
    import time

    from ganmotion.errors import children_ignore_interrupts

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    with children_ignore_interrupts():
        worker = context.Process(target=_report_sigint, args=(queue,))
        worker.start()
        os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)  # an interrupt, were there one, would come by now
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    assert queue.get(timeout=60) is True
    worker.join()
