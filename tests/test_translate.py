"""`python -m research.translate` in a shell pipe: order, line count, empty lines, clean stdout."""
from __future__ import annotations

import random
import subprocess
import sys

import pytest

from research.config import REPO
from research.run_dir import load
from research.translate import Translator
from tests.helpers.models import real_pairs
from tests.helpers.runs import tiny_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory)


def test_pipe_keeps_order_line_count_and_empty_lines(run_dir):
    # The tiny model rarely stops by itself, so with the output capped at the
    # source length (a=1, b=0), sources of distinct lengths give distinct outputs.
    decode = ["decode.max_len_a=1", "decode.max_len_b=0"]
    run = load(run_dir, decode)
    by_length = {}
    for src, _ in real_pairs(60, max_words=30):
        if len(run.tokenizer.encode_source(src)) <= 24:
            by_length.setdefault(len(run.tokenizer.encode_source(src)), src)
    sources = list(by_length.values())[:9]
    assert len(sources) == 9
    # Expected outputs: translated in-process, in another order, in one batch.
    shuffled = random.Random(0).sample(sources, len(sources))
    expected = dict(zip(shuffled, Translator(run)(shuffled)))
    assert len(set(expected.values())) == len(sources) and all(expected.values())

    lines = ["", sources[0], sources[1], "", "   ", *sources[2:5], "", sources[5], sources[0], *sources[6:], ""]
    stdin = "".join(line + "\n" for line in lines)
    cmd = [sys.executable, "-m", "research.translate", f"run_dir={run_dir}", "chunk=4", *decode]  # several chunks
    out = subprocess.run(cmd, cwd=REPO, input=stdin, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = out.stdout.split("\n")
    assert got[-1] == "" and len(got) - 1 == len(lines), "one output line per input line"
    for line, hyp in zip(lines, got):
        assert hyp == (expected[line] if line.strip() else ""), f"wrong output for {line!r}"
    assert "loaded best checkpoint" in out.stderr, "logs go to stderr"
