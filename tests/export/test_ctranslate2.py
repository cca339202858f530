"""The CTranslate2 export computes what our model computes: per-token log-probabilities and greedy outputs agree."""
from __future__ import annotations

import subprocess
import sys

import jax
import numpy as np
import pytest

import ctranslate2  # in the test extra: tests/export checks the export against ours

from research.config import REPO, resolve
from research.data.batch import pad_batch
from research.export import ctranslate2 as export
from research.models.seq2seq import Seq2Seq, architecture
from tests.conftest import compose_config

VOCAB = 40
PIECES = ["<pad>", "<unk>", "<s>", "</s>", *[f"p{i}" for i in range(VOCAB - 4)]]


def tiny(tmp_path, *overrides):
    cfg = resolve(compose_config(["encoder=transformer", "decoder=transformer", "model.d_model=32", "encoder.num_layers=2",
                                  "decoder.num_layers=2", "encoder.d_ff=64", "decoder.d_ff=64", "encoder.num_heads=4",
                                  "decoder.num_heads=4", *overrides]))
    model = Seq2Seq(architecture(cfg, VOCAB, VOCAB))
    batch = {k: np.asarray(v) for k, v in pad_batch([[5, 6]], [[7]], 8, 8).items()}
    params = model.init({"params": jax.random.PRNGKey(3)}, batch)["params"]
    # Larger weights than the initialisation's, so outputs depend on the input and differences show.
    params = jax.tree.map(lambda x: x * 3.0 if x.ndim >= 2 else x + 0.1, params)
    for side in ("encoder", "decoder"):  # relative-position tables start at zero: random entries make each bucket count
        if "relative_bias" in params[side]:
            table = params[side]["relative_bias"]["bias"]
            params[side]["relative_bias"]["bias"] = np.random.default_rng(1).normal(size=table.shape).astype(np.float32)
    spec = export.build_spec(cfg, params, PIECES, PIECES)
    spec.validate()
    (tmp_path / "ct2").mkdir()
    spec.save(str(tmp_path / "ct2"))
    return cfg, model, params, ctranslate2.Translator(str(tmp_path / "ct2"), device="cpu")


RELATIVE_SMALL = ["encoder.positions=relative", "encoder.relative_buckets=8", "encoder.relative_max_distance=6",
                  "decoder.relative_buckets=8", "decoder.relative_max_distance=6"]


def our_log_probs(model, params, source: list[int], target: list[int]) -> np.ndarray:
    batch = {k: np.asarray(v) for k, v in pad_batch([source], [target], 16, 16).items()}  # adds EOS, BOS
    logits = model.apply({"params": params}, batch)
    lp = np.asarray(jax.nn.log_softmax(logits, -1))[0]
    out = batch["target_out"][0][: len(target) + 1]
    return lp[np.arange(len(out)), out]


@pytest.mark.parametrize("overrides", [[], ["encoder.norm=post", "decoder.norm=post"],
                                       ["encoder.positions=learned", "decoder.positions=learned", "encoder.max_len=32",
                                        "decoder.max_len=32"],
                                       # T5's relative positions on both sides, and beside sinusoidal ones. 8 buckets up
                                       # to distance 6: the up to 9 pieces here reach each side's log-spaced and last
                                       # buckets (the encoder's exact below 2, the decoder's below 4).
                                       [*RELATIVE_SMALL, "decoder.positions=relative"],
                                       [*RELATIVE_SMALL, "encoder.norm=post", "decoder.norm=post"]],
                         ids=["pre-sinusoidal", "post", "learned", "relative", "relative-encoder-post"])
def test_scores_equal_ours_token_by_token(tmp_path, overrides):
    cfg, model, params, translator = tiny(tmp_path, *overrides)
    rng = np.random.default_rng(0)
    for _ in range(3):
        source = rng.integers(4, VOCAB, size=rng.integers(2, 9)).tolist()
        target = rng.integers(4, VOCAB, size=rng.integers(2, 9)).tolist()
        ours = our_log_probs(model, params, source, target)
        theirs = translator.score_batch([[PIECES[i] for i in source] + ["</s>"]], [[PIECES[i] for i in target]])[0]
        np.testing.assert_allclose(np.asarray(theirs.log_probs), ours, atol=2e-4)


def test_other_architectures_are_refused(tmp_path):
    cfg = resolve(compose_config(["encoder=rnn", "decoder=transformer"]))
    with pytest.raises(export.NotExportable, match="encoder=rnn decoder=transformer: CTranslate2 runs Transformer .* #796"):
        export.build_spec(cfg, {}, PIECES, PIECES)
    cfg = resolve(compose_config(["encoder=transformer", "decoder=transformer", "model.pointer_generator=true"]))
    with pytest.raises(export.NotExportable, match="model.pointer_generator=true: CTranslate2's Transformer has no copy attention"):
        export.build_spec(cfg, {}, PIECES, PIECES)


@pytest.mark.slow  # trains the tiny run and decodes 50 sentences five ways: 1-3 minutes on 2 cores
def test_a_trained_run_exports_and_translates_as_ours(tmp_path, tmp_path_factory):
    """50 validation sentences: greedy equal token for token, beam-4 BLEU within 0.2, int8 within 1 BLEU."""
    from research import run_dir as runs
    from research.decoding.metrics import bleu
    from research.evaluate import read_split
    from research.export.__main__ import main as export_main
    from research.translate import Translator
    from tests.helpers.runs import tiny_run

    run_path = tiny_run(tmp_path_factory)
    assert export_main(["ctranslate2", f"run_dir={run_path}", f"out={tmp_path}/fp32"]) == 0
    assert export_main(["ctranslate2", f"run_dir={run_path}", f"out={tmp_path}/int8", "quantization=int8"]) == 0
    run = runs.load(run_path)
    examples = read_split(run.cfg.data, "validation")
    lines = [examples[i]["source"] for i in range(50)]
    refs = [examples[i]["target"] for i in range(50)]
    ours = Translator(run)(lines)
    theirs = export.Engine(tmp_path / "fp32")(lines)
    assert theirs == ours
    ours_beam = Translator(runs.load(run_path, ["decode=beam", "decode.beam_size=4", "decode.length_penalty=0"]))(lines)
    theirs_beam = export.Engine(tmp_path / "fp32", beam_size=4)(lines)
    assert abs(bleu(theirs_beam, refs)["bleu"] - bleu(ours_beam, refs)["bleu"]) <= 0.2
    int8 = export.Engine(tmp_path / "int8")(lines)
    assert abs(bleu(int8, refs)["bleu"] - bleu(ours, refs)["bleu"]) <= 1.0
    # The command line: research.translate engine=ctranslate2 keeps the line contract (blank lines stay blank).
    piped = subprocess.run([sys.executable, "-m", "research.translate", "engine=ctranslate2", f"model={tmp_path}/fp32"],
                           input="\n".join([lines[0], "", lines[1]]) + "\n", capture_output=True, text=True, cwd=REPO,
                           timeout=300)
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert piped.stdout.split("\n") == [ours[0], "", ours[1], ""]
