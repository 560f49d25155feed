"""Preemption: a signal asks for a checkpoint at the end of the current step, then an exit
with a status that tells a scheduler to requeue the job.

SLURM sends SIGTERM (or, with `--signal=USR1@90`, SIGUSR1) before it kills a job. Under
`accelerate launch`, export PET_SIGNALS_TO_HANDLE=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1 so
the launcher passes SIGUSR1 on to the training processes.
"""

from __future__ import annotations

import signal

# EX_TEMPFAIL from sysexits.h: "temporary failure, the user is invited to retry".
REQUEUE_EXIT_CODE = 75

PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class PreemptionFlag:
    """Set by SIGTERM/SIGUSR1; the loop polls it once per step (on every rank)."""

    def __init__(self, signals=PREEMPTION_SIGNALS):
        self.signal: int | None = None
        self._previous = {s: signal.signal(s, self._handle) for s in signals}

    def _handle(self, signum, frame) -> None:
        self.signal = signum

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def restore(self) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
