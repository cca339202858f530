"""The console: plain progress lines off a terminal, a bar on one, and logging that hides only routine noise."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys

import pytest
from absl import logging as absl_logging
from tensorflow_datasets.core.utils import file_utils

from research import console
from research.config import REPO
from research.data import builders, readers
from tests.conftest import SAMPLE, tiny_overrides


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "research.progress"]


@pytest.fixture
def plain(caplog):
    caplog.set_level(logging.INFO, logger="research.progress")
    return caplog


def test_plain_lines_every_30_s_with_the_recent_rate_eta_and_a_final_average(plain):
    clock = FakeClock()
    stream = io.StringIO()  # not a terminal
    with console.progress(100, "train", "steps", stream=stream, clock=clock) as bar:
        for step in range(1, 101):
            clock.t += 25.0 if step == 1 else 1.0  # a slow first step (compilation), then 1 step/s
            bar.update(1, loss=3.0 - step / 100)
    assert stream.getvalue() == ""  # lines go through logging, never drawn on the stream
    # Worked out by hand: step 6 at t=30 (6 steps / 30 s = 0.2/s, 94 left -> 470 s);
    # step 36 at t=60 (30 steps in the last 30 s = 1/s, 64 left -> 64 s); step 66 at t=90; 96 at t=120;
    # the end at t=124: 100 steps / 124 s = 0.806/s on average.
    assert _lines(plain) == [
        "train: 6/100 steps (6%), 0.2 steps/s, ETA 7m50s, loss=2.94",
        "train: 36/100 steps (36%), 1 steps/s, ETA 1m04s, loss=2.64",
        "train: 66/100 steps (66%), 1 steps/s, ETA 34s, loss=2.34",
        "train: 96/100 steps (96%), 1 steps/s, ETA 4s, loss=2.04",
        "train: 100/100 steps in 2m04s, 0.806 steps/s, loss=2",
    ]


def test_plain_lines_of_a_resumed_run_count_only_new_steps_and_say_when_stopped_early(plain):
    clock = FakeClock()
    bar = console.progress(1000, "train", "steps", initial=400, stream=io.StringIO(), clock=clock, every_s=10)
    for _ in range(50):
        clock.t += 0.5
        bar.update(2)
    bar.close()
    bar.close()  # a second close adds nothing
    assert _lines(plain) == [
        "train: 440/1,000 steps (44%), 4 steps/s, ETA 2m20s",  # 40 new steps in 10 s
        "train: 480/1,000 steps (48%), 4 steps/s, ETA 2m10s",
        "train: stopped at 500/1,000 steps in 25s, 4 steps/s",
    ]


def test_plain_lines_without_a_total_and_in_bytes(plain):
    clock = FakeClock()
    with console.progress(None, "translating", "lines", stream=io.StringIO(), clock=clock) as bar:
        clock.t = 40.0
        bar.update(1200)
    with console.progress(27_100_000, "preparing train", "B", scale=True, stream=io.StringIO(), clock=clock) as bar:
        clock.t += 30.0
        bar.update(12_300_000)
        clock.t += 29.0
        bar.update(14_800_000)
    assert _lines(plain) == [
        "translating: 1,200 lines, 30 lines/s",  # no total: no percentage, no ETA
        "translating: 1,200 lines in 40s, 30 lines/s",
        "preparing train: 12.3MB/27.1MB (45%), 410kB/s, ETA 36s",  # 12.3 MB in 30 s; 14.8 MB left
        "preparing train: 27.1MB/27.1MB in 59s, 459kB/s",
    ]


def test_an_error_inside_is_not_swallowed_and_the_line_says_where_it_stopped(plain):
    with pytest.raises(ValueError, match="bad line"):
        with console.progress(10, "decoding", "examples", stream=io.StringIO()) as bar:
            bar.update(3)
            raise ValueError("bad line")
    assert _lines(plain)[-1].startswith("decoding: stopped at 3/10 examples in ")


def test_a_terminal_gets_a_tqdm_bar_and_logging_is_restored_after(plain):
    term = Terminal()
    root_handlers = list(logging.getLogger().handlers)
    with console.progress(50, "decoding validation", "examples", stream=term) as bar:
        assert isinstance(bar, console._Bar)
        for _ in range(50):
            bar.update(1, bleu=12.5)
    drawn = term.getvalue()
    assert "\r" in drawn and "decoding validation" in drawn
    assert "50/50" in drawn and "100%" in drawn and "examples/s" in drawn and "bleu=12.5" in drawn
    assert _lines(plain) == []  # no plain lines when there is a bar
    assert logging.getLogger().handlers == root_handlers
    assert console._Bar._open == 0


def test_not_a_terminal_and_disabled_choose_no_bar(plain):
    assert isinstance(console.progress(5, "x", stream=io.StringIO()), console._Lines)
    off = console.progress(5, "x", stream=Terminal(), enabled=False)
    with off:
        off.update(5)
    assert isinstance(off, console._Off) and _lines(plain) == []


@pytest.fixture
def logging_setup():
    """setup_logging, with the levels and absl filters put back afterwards (levels only: keeps caplog)."""
    names = ["", *console.QUIET_INFO]
    levels = {n: logging.getLogger(n).level for n in names}
    filters = list(logging.getLogger("absl").filters)
    console.setup_logging(hydra=True)
    yield
    for n, level in levels.items():
        logging.getLogger(n).setLevel(level)
    logging.getLogger("absl").filters = filters


def test_setup_hides_routine_library_records_and_keeps_their_warnings(logging_setup, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="research")
    logging.getLogger("jax._src.xla_bridge").info("Unable to initialize backend 'tpu': no libtpu.so")
    logging.getLogger("jax._src.xla_bridge").warning("a CUDA-enabled jaxlib is not installed. Falling back to cpu.")
    absl_logging.info("Saving checkpoint at step 10")
    absl_logging.warning("Using custom data configuration: %s", "from our own code, so not tfds's routine one")
    file_utils.is_valid_variant_dir(tmp_path / "not_a_version")  # tfds: "Variant folder %s has invalid version %s"
    file_utils.is_valid_variant_dir(tmp_path / "1.0.0")  # tfds: "Variant folder %s has no dataset_info.json"
    logging.getLogger("research.test").info("ours")
    shown = [r.getMessage() for r in caplog.records]
    assert shown == [
        "a CUDA-enabled jaxlib is not installed. Falling back to cpu.",
        "Using custom data configuration: from our own code, so not tfds's routine one",
        f"Variant folder {tmp_path / 'not_a_version'} has invalid version not_a_version",
        "ours",
    ]


def test_preparing_a_corpus_shows_progress_and_none_of_tfds_routine_output(logging_setup, caplog, capfd, tmp_path):
    caplog.set_level(logging.INFO)
    builders.prepare("jsonl", str(SAMPLE), "de", "en", ("train", "validation"), str(tmp_path / "tfds"), "sample")
    out, err = capfd.readouterr()
    assert "Unknown size" not in out + err and "Subsequent calls will reuse" not in out + err
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if m.startswith(("Using custom data configuration", "Variant folder"))], messages
    sizes = {split: (SAMPLE / f"{split}.jsonl.gz").stat().st_size for split in ("train", "validation")}
    progress = _lines(caplog)
    assert len(progress) == 2, progress
    for line, (split, size) in zip(progress, sizes.items()):  # every byte of the file counted, once
        assert line.startswith(f"preparing {split}: {console._number(size, True)}B/{console._number(size, True)}B in ")
    assert any(m.startswith(f"prepared {SAMPLE} (train 3,000, validation 300 examples)") for m in messages), messages


JAX_START = """
import logging, sys
from research import console
if sys.argv[1] == "setup":
    console.setup_logging()
else:  # what the entry points did before: everything at INFO
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
import jax
jax.devices()
logging.getLogger("research.x").info("ours")
"""


def test_jax_backend_probing_is_hidden_on_a_real_start():
    """A fresh process, where JAX really probes its backends (the test process has done so already)."""
    run = lambda mode: subprocess.run([sys.executable, "-c", JAX_START, mode], cwd=REPO, capture_output=True,
                                      text=True, timeout=120, env={**os.environ, "JAX_PLATFORMS": ""}, check=True)
    before, after = run("basic").stderr, run("setup").stderr
    if "Unable to initialize backend" not in before:  # JAX found every backend it probes (a TPU host)
        pytest.skip("no backend probe fails on this machine, so there is no line to hide")
    # the line is real here, so its absence below means something
    assert "Unable to initialize backend" not in after and "ours" in after


def test_decoding_shows_progress_in_examples_not_padding_rows(plain):
    import numpy as np
    from research.decoding.corpus import SOURCE_KEYS, decode_batches
    from research.decoding.generate import Hypotheses

    class Letters:  # token t -> chr(t)
        def decode_target(self, ids):
            return "".join(map(chr, ids))

    def generate(params, batch):  # echoes the first source token: a hypothesis that names its example
        first = batch["source"][:, :1]
        return Hypotheses(tokens=first[:, None], lengths=np.ones((len(first), 1), np.int32),
                          scores=np.zeros((len(first), 1)), log_probs=np.zeros((len(first), 1)))

    index = [np.array([2, 0, -1]), np.array([1, 4, 3])]  # 5 examples, one padding row
    batches = [{**{k: np.array([[65 + i] if i >= 0 else [0] for i in idx]) for k in SOURCE_KEYS}, "index": idx}
               for idx in index]
    out = decode_batches(generate, None, batches, 5, Letters(), description="decoding validation")
    assert [o[0].text for o in out] == ["A", "B", "C", "D", "E"]
    (line,) = _lines(plain)
    assert line.startswith("decoding validation: 5/5 examples in ")
    assert decode_batches(generate, None, batches, 5, Letters(), description=None) == out
    assert len(_lines(plain)) == 1  # description=None shows nothing


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_preparation_progress_counts_every_byte_of_the_file_as_it_reads(tmp_path, suffix):
    import gzip
    text = "".join(json.dumps({"de": f"Satz {i}", "en": f"sentence {i}"}) + "\n" for i in range(2000))
    path = tmp_path / f"train.jsonl{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix else text.encode())
    seen, at_pair = [], []
    for pair in readers.read_jsonl(str(path), "de", "en", advance=seen.append):
        at_pair.append(sum(seen))
    assert sum(seen) == path.stat().st_size  # the bar ends at 100%, not short of it or past it
    assert len(at_pair) == 2000 and at_pair == sorted(at_pair)
    if not suffix:  # plain text: after pair i exactly its lines are counted
        assert at_pair[999] == len("".join(text.splitlines(keepends=True)[:1000]).encode())


@pytest.mark.slow  # ~40 s on 2 cores, nearly all compilation; the fast tests above check each part
def test_a_first_run_prints_nothing_a_user_cannot_act_on(tmp_path):
    """The app as a user starts it: fresh data and tokenizer caches, output captured (not a terminal)."""
    cmd = [sys.executable, "-m", "research.train", *tiny_overrides("transformer", "transformer"),
           "trainer.max_steps=2", "trainer.eval_every=2", "trainer.eval_examples=4", "data.max_train_examples=100",
           f"data.tfds_dir={tmp_path}/tfds", f"tokenizer.cache_dir={tmp_path}/spm", f"hydra.run.dir={tmp_path}/run"]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    console_text = done.stdout + done.stderr
    assert done.returncode == 0, console_text[-3000:]
    for noise in ("Unable to initialize backend", "Unknown size", "Subsequent calls will reuse",
                  "Using custom data configuration", "Variant folder", "[absl]"):
        assert noise not in console_text, noise
    assert "preparing train: " in console_text and "decoding" in console_text
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["steps"] == 2


def test_an_out_folder_is_made_with_its_parents_or_refused_naming_it(tmp_path):
    assert console.out_folder(tmp_path / "a" / "b") == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit, match=f"error: --out {tmp_path / 'file' / 'c'}: Not a directory"):
        console.out_folder(tmp_path / "file" / "c")
