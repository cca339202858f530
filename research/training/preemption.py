"""Preemption: the first SIGTERM, SIGINT or SLURM time-limit signal asks the loop to checkpoint and stop.

Clusters announce preemption with SIGTERM (SLURM, Kubernetes, spot VMs) and
people press Ctrl-C; both should cost at most the step in flight. SLURM jobs
started by the submitit launcher (conf/hydra/launcher/slurm.yaml) are also
warned `signal_delay_s` before their time limit: submitit writes
`#SBATCH --signal=USR2@<signal_delay_s>` (the signal named by the
SUBMITIT_PREEMPT_SIGNAL variable, USR2 by default; submitit/slurm/slurm.py),
and SLURM sends SIGTERM only at the limit itself, SIGKILL `KillWait` seconds
later. The handler only records the request; the loop finishes its step,
writes a checkpoint at that step and returns. A second signal ends the
process at once with status 128 + signal number, without a checkpoint; the
atomic checkpoint rename keeps the run resumable from the last complete one.

Inside a submitit job, submitit has installed its own handlers before the
run starts: USR2 checkpoints its job *object* and requeues it (which would
rerun the same overrides without `trainer.resume=true`, from step 0), SIGTERM
is logged and ignored. `Preemption` replaces them while it is entered and puts
them back when it exits, so during training the run stops cleanly, the job
ends as a success, and submitit never requeues it; continue it with the
command `research.train` prints.

Python runs signal handlers between bytecodes, so "at once" means as soon as
the main thread is back from native code (a step, a compilation). The
handlers stay Python functions rather than the default action so that two
signals arriving during one native call are both seen, in order.
"""
from __future__ import annotations

import logging
import os
import signal
import threading

import jax

log = logging.getLogger(__name__)

# submitit reads the same variable, in the submitting process (the sbatch line) and in the job.
CLUSTER_SIGNAL_ENV, CLUSTER_SIGNAL_DEFAULT = "SUBMITIT_PREEMPT_SIGNAL", "USR2"


def signals() -> tuple[signal.Signals, ...]:
    """SIGTERM, SIGINT and the signal submitit asks SLURM to send before the time limit."""
    name = os.environ.get(CLUSTER_SIGNAL_ENV, CLUSTER_SIGNAL_DEFAULT)
    try:
        cluster = signal.Signals["SIG" + name]
    except KeyError:
        raise ValueError(f"{CLUSTER_SIGNAL_ENV}={name!r} is not a signal name (submitit expects e.g. USR2)") from None
    return tuple(dict.fromkeys((signal.SIGTERM, signal.SIGINT, cluster)))


class Preemption:
    """Context manager; `requested()` says whether a stop signal arrived.

    Outside the main thread (where Python cannot install handlers) it
    installs nothing and never requests a stop.
    """

    def __init__(self):
        self.signal: int | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> "Preemption":
        if threading.current_thread() is threading.main_thread():
            for s in signals():
                self._previous[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        del frame
        name = signal.Signals(signum).name
        if self.signal is not None:
            os.write(2, f"\n{name}: second stop signal; exiting now, without a checkpoint\n".encode())
            os._exit(128 + signum)
        self.signal = signum
        # os.write, not logging: a handler may interrupt a logging call holding its lock.
        os.write(2, f"\n{name}: finishing this step, then checkpointing and stopping "
                    f"(a second signal stops at once, without a checkpoint)\n".encode())

    def requested(self) -> bool:
        """True once any process of the run got a stop signal.

        With several processes every one must stop at the same step, or the
        others would wait forever in the next collective; they agree through
        one small all-gather per step (only when there is more than one).
        """
        local = self.signal is not None
        if jax.process_count() == 1:
            return local
        from jax.experimental import multihost_utils
        return bool(multihost_utils.process_allgather(local).any())

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else "a stop signal"
