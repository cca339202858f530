"""What a person sees: one logging setup for every entry point, and progress with rate and ETA.

`setup_logging()` is the first call of every entry point. It hides what a
user cannot act on and nothing else: the INFO records of JAX ("Unable to
initialize backend 'tpu'" on every machine without one) and of absl (orbax
logs each checkpoint save), and a short list of library warnings that every
run triggers by design (`ROUTINE_WARNINGS`); all other warnings and errors
still show. tfds's two `print`s about preparing a local corpus ("Unknown
size") are replaced in `research/data/builders.py`.

`progress(total, description, unit)` shows a tqdm bar when its stream is a
terminal, and otherwise (CI logs, SLURM files, a pipe) logs a plain line
every `PLAIN_EVERY_S` seconds and one when it closes:

    with progress(10_000, "train", "steps", initial=start) as bar:
        for step in ...:
            bar.update(1)                    # cheap: no formatting, no line unless one is due
            if step % 100 == 0:
                bar.update(0, loss=loss)     # postfix values: host numbers or strings
"""
from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

import absl.logging  # noqa: F401  absl's logger made first: a plain "absl" logger made by us would name absl as the caller
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

# Hydra's default job_logging format, so research.train and the other entry points read alike.
FORMAT = "[%(asctime)s][%(name)s][%(levelname)s] - %(message)s"

# Loggers whose INFO records a user cannot act on; their warnings still show
# (e.g. JAX's "a CUDA-enabled jaxlib is not installed. Falling back to cpu").
QUIET_INFO = (
    "jax",   # jax._src.xla_bridge: "Unable to initialize backend 'tpu'/'cuda'/'rocm'" wherever that backend is absent
    "absl",  # orbax logs every checkpoint save at INFO; tfds logs through absl too
)

# Library warnings that every run here triggers by design and no user can act on,
# matched by the unformatted message and the package that logs it, so that any
# other warning of theirs still shows. All come through absl's logger.
ROUTINE_WARNINGS = (
    # Every local corpus config is made at run time (research/data/builders.py).
    ("tensorflow_datasets", "Using custom data configuration: "),
    # A corpus not prepared yet has no dataset_info.json; it is prepared next.
    ("tensorflow_datasets", "Variant folder %s has no "),
    # evaluate and translate open checkpoints read-only, on purpose (research/run_dir.py).
    ("orbax", "CheckpointManagerOptions.read_only=True, setting "),
    ("orbax", "Given directory is read only="),
    # orbax looks for a metadata file beside each item (step/state/); it writes it for the step (step/).
    ("orbax", "Metadata file does not exist: "),
)


class _Routine(logging.Filter):
    """Drops the records listed in ROUTINE_WARNINGS."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = str(record.msg)
        return not any(msg.startswith(start) and f"{os.sep}{package}{os.sep}" in record.pathname
                       for package, start in ROUTINE_WARNINGS)


_ROUTINE = _Routine()

# A plain line at most this often, whatever the length of the job: someone
# tailing a SLURM file sees progress at most 30 s old, a 3-hour run writes
# ~360 lines, and a task under 30 s writes only its final line. (Every k
# percent would space lines 2 s apart in a 20 s task and 17 min in a 3 h one.)
PLAIN_EVERY_S = 30.0

log = logging.getLogger("research.progress")


def setup_logging(*, hydra: bool = False, level: int = logging.INFO) -> None:
    """Configures logging for an entry point; call it first.

    Args:
      hydra: Hydra has installed its handlers (research.train: the console on
        stdout and the run's train.log); keep them and set levels only.
        Otherwise records go to stderr, so stdout carries only results
        (translations, reports) and can be redirected.
      level: the level of our own records.
    """
    if not hydra:
        logging.basicConfig(level=level, stream=sys.stderr, format=FORMAT, force=True)
    else:
        logging.getLogger().setLevel(level)
    for name in QUIET_INFO:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger("absl").addFilter(_ROUTINE)  # the same object each call: added once


class Progress:
    """Counts work done; `progress()` picks the tty bar or the plain lines. A context manager."""

    def update(self, n: int = 1, **postfix) -> None:
        """Adds `n` units of work done; `postfix` (e.g. loss=2.31) is shown until replaced."""

    def close(self) -> None:
        """Shows the final state (a last plain line) and releases the terminal."""

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Off(Progress):
    """No output at all (e.g. processes other than 0)."""


def _number(x: float, scale: bool) -> str:
    """12, 3.4, 0.25; with `scale`, SI prefixes as tqdm's unit_scale writes them (12.3M)."""
    if scale:
        for prefix in ("", "k", "M", "G", "T"):
            if abs(x) < 999.5:
                return f"{x:.3g}{prefix}" if prefix else f"{x:.3g}"
            x /= 1000
        return f"{x:.3g}P"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _duration(seconds: float) -> str:
    """45s, 3m05s, 2h07m."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s // 60 % 60:02d}m"


def _postfix(postfix: dict) -> dict[str, str]:
    return {k: f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in postfix.items()}


class _Lines(Progress):
    """Plain log lines: one every `every_s` seconds, one at the end.

        train: 1,200/10,000 steps (12%), 9.8 steps/s, ETA 15m00s, loss=3.21
        train: 10,000/10,000 steps in 17m01s, 9.79 steps/s, loss=2.05

    The rate of a periodic line is over the interval since the previous one
    (an ETA after a slow first compilation would be too pessimistic
    otherwise); the final line's is the average over the whole task.
    """

    def __init__(self, total: int | None, description: str, unit: str, initial: int, scale: bool,
                 every_s: float, clock: Callable[[], float]):
        self.total, self.description, self.unit, self.scale = total, description, unit, scale
        self.every_s, self.clock = every_s, clock
        self.n = self._start_n = self._last_n = initial
        self._start = self._last = clock()
        self._postfix: dict = {}
        self._closed = False

    def update(self, n: int = 1, **postfix) -> None:
        self.n += n
        if postfix:
            self._postfix = postfix
        now = self.clock()
        if now - self._last >= self.every_s and (self.total is None or self.n < self.total):  # done: close() says so
            rate = (self.n - self._last_n) / (now - self._last)
            log.info("%s", self._line(rate, eta=self._eta(rate)))
            self._last, self._last_n = now, self.n

    def _eta(self, rate: float) -> str:
        if self.total is None:
            return ""
        if rate <= 0:
            return ", ETA unknown"
        return f", ETA {_duration(max(self.total - self.n, 0) / rate)}"

    def _amount(self, x: float) -> str:
        """1,200 steps; with `scale` the unit follows the prefix (12.3MB)."""
        return f"{_number(x, True)}{self.unit}" if self.scale else f"{_number(x, False)} {self.unit}"

    def _count(self) -> str:
        if self.total is None:
            return self._amount(self.n)
        if self.scale:
            return f"{self._amount(self.n)}/{self._amount(self.total)}"
        return f"{_number(self.n, False)}/{self._amount(self.total)}"

    def _rate(self, rate: float) -> str:
        return f"{self._amount(rate)}/s"

    def _tail(self) -> str:
        return "".join(f", {k}={v}" for k, v in _postfix(self._postfix).items())

    def _line(self, rate: float, eta: str) -> str:
        pct = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
        return f"{self.description}: {self._count()}{pct}, {self._rate(rate)}{eta}{self._tail()}"

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        elapsed = self.clock() - self._start
        rate = (self.n - self._start_n) / elapsed if elapsed > 0 else 0.0
        done = self.total is None or self.n >= self.total
        what = self._count() if done else f"stopped at {self._count()}"
        log.info("%s: %s in %s, %s%s", self.description, what, _duration(elapsed), self._rate(rate), self._tail())


class _Bar(Progress):
    """A tqdm bar; while the outermost bar is open, console log records print above it, not through it."""

    _open = 0  # bars open now; nested ones (validation inside training) draw below the outer one

    def __init__(self, total: int | None, description: str, unit: str, initial: int, scale: bool, stream: TextIO):
        if _Bar._open == 0:
            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
        _Bar._open += 1
        # leave=None: the outermost bar stays on screen when done, nested ones vanish.
        self._bar = tqdm(total=total, desc=description, unit=f" {unit}" if unit and not scale else unit,
                         unit_scale=scale, initial=initial, file=stream, dynamic_ncols=True, leave=None)
        self._closed = False

    def update(self, n: int = 1, **postfix) -> None:
        if postfix:
            self._bar.set_postfix(_postfix(postfix), refresh=False)
        self._bar.update(n)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._bar.close()
        _Bar._open -= 1
        if _Bar._open == 0:
            self._redirect.__exit__(None, None, None)


def is_terminal(stream: TextIO) -> bool:
    """Whether `stream` is a terminal a bar can be drawn on.

    A pseudo-terminal nobody gave a size (`script`, `docker run -t`, some CI
    runners) reports 0 columns, in which tqdm draws an empty bar: plain lines then.
    """
    isatty = getattr(stream, "isatty", None)
    if not (isatty and isatty()):
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (AttributeError, OSError, ValueError):  # no file descriptor (a test's fake terminal): trust isatty
        return True


def progress(total: int | None, description: str, unit: str = "it", *, initial: int = 0, scale: bool = False,
             enabled: bool = True, stream: TextIO | None = None, every_s: float = PLAIN_EVERY_S,
             clock: Callable[[], float] = time.monotonic) -> Progress:
    """A progress display for `total` units of work (None: unknown; no percentage or ETA).

    Args:
      total: units of work in all, counting `initial`.
      description: what is being done, e.g. "train", "decoding validation".
      unit: what is counted, e.g. "steps", "examples", "B" (bytes, with `scale`).
      initial: units already done before this display (a resumed run's start step); rates count only new ones.
      scale: write amounts with SI prefixes (12.3MB).
      enabled: False shows nothing (processes other than 0 of a multi-process run).
      stream: where a bar draws (default: stderr at the time of the call). A terminal gets a tqdm
        bar; anything else gets plain lines through the `research.progress` logger.
      every_s: seconds between plain lines.
      clock: the time source of plain lines (tests give a fake one).
    """
    if not enabled:
        return _Off()
    stream = sys.stderr if stream is None else stream
    if is_terminal(stream):
        return _Bar(total, description, unit, initial, scale, stream)
    return _Lines(total, description, unit, initial, scale, every_s, clock)


def out_folder(path: Path) -> Path:
    """An entry point's --out folder, made with its parents, or the exit that names it and why it cannot be."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SystemExit(f"error: --out {path}: {e.strerror}") from None
    return path
