"""`python -m research.sample run_dir=PATH [prompt="..."] [n=1] [checkpoint=best] [decode=sample decode.temperature=0.8 ...]`.

Continues `prompt` with a trained language model (a `data.task=lm` run,
research/tasks/lm.py) and prints `n` continuations, one per line, in row
order. The prompt and BOS go through the decoder's incremental cache, then
the run's decode config searches on from there, with any `decode.*`
overrides: `decode=sample` (or `decode.search=sample`) draws with
`decode.temperature`, `decode.top_k`, `decode.top_p` and `decode.seed` (row i
uses fold_in(key(seed), i), so the same command prints the same lines, and
its first line is the same for any n); `decode=greedy` / `decode=beam` give
the most likely continuation (the same on every line). An empty prompt (the
default) starts from BOS alone.

A continuation is at most ceil(decode.max_len_a * prompt pieces +
decode.max_len_b) pieces, EOS included (the seq2seq output cap, the prompt
as the source: raise decode.max_len_b for longer text), and stops at EOS. Each
line is exactly the text that follows the prompt (a new word starts with its
space), newlines inside it turned into spaces. Logs go to stderr.
"""
from __future__ import annotations

import io
import logging
import sys
from typing import Sequence

from research import console
from research.decoding.corpus import one_line
from research.registry import ConfigError
from research.run_dir import from_config, load_config, parse_args
from research.tasks import lm
from research.training.checkpoint import CheckpointError

log = logging.getLogger("research.sample")

OPTIONS = {"run_dir": None, "prompt": "", "n": 1, "checkpoint": "best"}


def sample(run_dir: str, prompt: str = "", n: int = 1, overrides: Sequence[str] = (), checkpoint: str = "best") -> list[str]:
    """The `n` continuations of `prompt` by the language model in `run_dir` (see the module docstring)."""
    if n < 1:
        raise ConfigError("n: must be at least 1")
    cfg = load_config(run_dir, overrides)
    if cfg.data.task != lm.TASK.name:
        raise ConfigError(f"run_dir: {run_dir} is a {cfg.data.task} run; research.sample continues text with a "
                          f"language model (data.task={lm.TASK.name})")
    if n > 1 and cfg.decode.search != "sample":
        log.warning("n=%d with decode.search=%s: every line is the same continuation; decode=sample draws "
                    "different ones", n, cfg.decode.search)
    run = from_config(run_dir, cfg, checkpoint)
    return lm.sample_texts(run.model, run.params, run.tokenizer, cfg.decode, prompt, n)


def main(argv: Sequence[str]) -> int:
    console.setup_logging()
    try:
        opts, overrides = parse_args(argv, OPTIONS)
        lines = sample(opts["run_dir"], opts["prompt"], opts["n"], overrides, opts["checkpoint"])
    except (ConfigError, CheckpointError, FileNotFoundError) as e:
        log.error("%s", e)
        return 2
    stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", write_through=True)
    for line in lines:
        stdout.write(one_line(line) + "\n")
    stdout.flush()
    stdout.detach()  # sys.stdout keeps its buffer
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
