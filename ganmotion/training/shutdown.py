"""Ending a distributed run so that its processes exit with the run's own status.

Why this is needed (issue 12): a gloo worker thread finishes each collective by dropping its
references to the collective's tensors, after the caller's wait has returned; torch keeps a
tensor's Python object alive while C++ holds the tensor, so that drop takes the GIL. If the
main thread has begun interpreter finalisation by then, CPython (before 3.14) ends the waiting
thread with `pthread_exit`, and its unwinding through the work's noexcept destructor calls
`std::terminate`: "terminate called without an active exception", SIGABRT, after every file
was written (pytorch/pytorch#38228, python/cpython#87135). It hit rank 1, which does no I/O
between the last `gather` and its exit, in a few launches in a hundred, DDP and DeepSpeed alike.

`destroy_process_group()` alone does not stop those threads: gloo has no shutdown, its threads
are joined only by its destructor, and the group object outlives the run. The DDP wrappers
hold it, and so do the default arguments `group=group.WORLD` of modules that are first
imported after the group exists (torch.distributed.nn.functional, imported by DDP;
deepspeed.comm.torch, imported by Accelerate's `unwrap_model` where DeepSpeed is installed).

So: import those modules before the group exists, hold the group while the run drops its
wrappers, then let it go with the interpreter whole. Its destructor runs without the GIL,
waits for the worker threads (a late one can take the GIL and finish) and joins them.
(DeepSpeed's own data-parallel group stays alive in `deepspeed.utils.groups`; its threads are
idle by then: the run's last collectives, on the default group, come after ZeRO's.)

    shutdown.import_before_process_group()
    trainer = Trainer(config)                  # creates the process group
    group = shutdown.hold_process_group()
    status = trainer.run()
    del trainer                                # the last references to the DDP wrappers
    group.end()                                # every rank; communication threads joined
"""

from __future__ import annotations

import gc
import importlib
import logging
import weakref

import torch.distributed as dist

log = logging.getLogger(__name__)

# Modules with functions that take `group=group.WORLD` as a default argument: imported after
# the process group exists, they keep it (and its threads) alive until the interpreter exits.
GROUP_PINNING_MODULES = ("torch.distributed.nn.functional", "deepspeed.comm.torch")


def import_before_process_group() -> None:
    """Import GROUP_PINNING_MODULES (those installed) while no process group exists, so that
    their default arguments are None rather than the group. (DDP runs import them anyway.)"""
    if dist.is_initialized():
        log.warning("import_before_process_group: the process group exists already")
    for name in GROUP_PINNING_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:  # not installed: nothing will import it later either
            pass


class HeldProcessGroup:
    """The default process group, held until `end()` (see the module docstring)."""

    def __init__(self, group: dist.ProcessGroup | None):
        self._group = group

    def end(self) -> bool:
        """Destroy the process group (if not already) and release it, after the caller has
        dropped everything that was wrapped for DDP or DeepSpeed. Returns whether the group
        is gone, its communication threads joined; if something still holds it, says so."""
        if self._group is None:
            return True
        if dist.is_initialized():
            dist.destroy_process_group()
        gc.collect()  # the wrappers' reference cycles: the group outlives them (held here)
        gone = weakref.ref(self._group)
        self._group = None  # the last reference: the destructor joins the threads
        if gone() is not None:
            gc.collect()
        if gone() is not None:
            log.warning(
                "the process group is still referenced after the run; its communication "
                "threads may abort this process at exit (see ganmotion/training/shutdown.py)"
            )
            return False
        return True


def hold_process_group() -> HeldProcessGroup:
    """A hold on the default process group (call once it exists); a no-op hold without one."""
    return HeldProcessGroup(dist.group.WORLD if dist.is_initialized() else None)
