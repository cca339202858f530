"""Every user-facing option is checked before anything compiles, and a config cannot run a class.

A bad value fails in `resolve` (or already in Hydra's composition, for wrong
types and unknown group options) with a message that names the full key and
the values it allows. Nothing in the project instantiates config nodes, and
the strict schemas refuse a `_target_` anywhere, so a config file or an
override cannot make the program import and call an arbitrary object.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from hydra.utils import instantiate

from research.config import REPO, resolve
from research.registry import ConfigError
from tests.conftest import compose_config, tiny_overrides

TT, RNN, CNN = ("transformer", "transformer"), ("rnn", "rnn"), ("cnn", "cnn")
REGISTERED = "cnn, rnn, transformer"

# (encoder, decoder), overrides, the start of the error: the full key, then the rule it broke.
IMPOSSIBLE = [
    # shared sizes and the transformer encoder/decoder
    (TT, ["model.d_model=-8"], "model.d_model: must be positive"),
    (TT, ["encoder.num_heads=0"], "encoder.num_heads: must be positive"),
    (TT, ["decoder.num_heads=-2"], "decoder.num_heads: must be positive"),
    (TT, ["encoder.num_heads=3"], "encoder.num_heads: d_model 64 is not divisible by num_heads 3"),
    (TT, ["encoder.num_layers=-1"], "encoder.num_layers: must be positive"),
    (TT, ["decoder.d_ff=0"], "decoder.d_ff: must be positive"),
    (TT, ["encoder.d_model=0"], "encoder.d_model: must be positive"),
    (TT, ["decoder.max_len=0"], "decoder.max_len: must be positive"),
    (TT, ["encoder.dropout=1.0"], "encoder.dropout: must be in [0, 1)"),
    (TT, ["decoder.dropout=-0.1"], "decoder.dropout: must be in [0, 1)"),
    (TT, ["encoder.attention_dropout=1.5"], "encoder.attention_dropout: must be in [0, 1)"),
    (TT, ["encoder.norm=mid"], "encoder.norm: 'mid' is not one of pre, post"),
    (TT, ["decoder.positions=rotary"], "decoder.positions: 'rotary' is not one of sinusoidal, learned, relative"),
    (TT, ["encoder.positions=relative", "encoder.relative_buckets=6"], "encoder.relative_buckets: must be a positive multiple of 4"),
    (TT, ["encoder.positions=relative", "encoder.relative_max_distance=8"], "encoder.relative_max_distance: must exceed relative_buckets / 2 = 16"),
    # unknown components and unknown keys
    (TT, ["encoder.name=lstmx"], f"unknown encoder 'lstmx'; registered encoders: {REGISTERED}"),
    (TT, ["decoder.name=gpt"], f"unknown decoder 'gpt'; registered decoders: {REGISTERED}"),
    (TT, ["+trainer.nonsense=1"], "trainer.nonsense: Key 'nonsense' not in 'TrainerConfig'"),
    (TT, ["+encoder.nonsense=1"], "encoder.nonsense: Key 'nonsense' not in 'TransformerConfig'"),
    (TT, ["+nonsense=1"], "nonsense: not a config key; the top level holds only the groups encoder, decoder, model"),
    # recurrent
    (RNN, ["encoder.cell=relu"], "encoder.cell: 'relu' is not one of ['elman', 'gru', 'lstm']"),
    (RNN, ["decoder.cell=tanh"], "decoder.cell: 'tanh' is not one of ['elman', 'gru', 'lstm']"),
    (RNN, ["encoder.hidden_size=0"], "encoder.hidden_size: must be positive"),
    (RNN, ["decoder.hidden_size=-64"], "decoder.hidden_size: must be positive"),
    (RNN, ["encoder.num_layers=0"], "encoder.num_layers: must be positive"),
    (RNN, ["encoder.dropout=1.0"], "encoder.dropout: must be in [0, 1)"),
    (RNN, ["decoder.attention=additive"], "decoder.attention: 'additive' is not one of ['none', 'bahdanau', 'luong', 'multihead']"),
    (RNN, ["decoder.score=cosine"], "decoder.score: 'cosine' is not one of ['dot', 'general']"),
    (RNN, ["decoder.num_heads=0"], "decoder.num_heads: must be positive"),
    (RNN, ["decoder.attention=multihead", "decoder.num_heads=3"], "decoder.num_heads: hidden_size 64 is not divisible by num_heads 3"),
    # convolutional (even kernels are allowed: the encoder's window is then one tap off centre)
    (CNN, ["encoder.kernel_size=0"], "encoder.kernel_size: must be at least 1"),
    (CNN, ["decoder.channels=-4"], "decoder.channels: must be positive"),
    (CNN, ["decoder.num_heads=0"], "decoder.num_heads: must be positive"),
    (CNN, ["decoder.num_heads=3"], "decoder.num_heads: channels 64 is not divisible by num_heads 3"),
    (CNN, ["encoder.max_len=-1"], "encoder.max_len: must be positive"),
    (CNN, ["decoder.dropout=1.0"], "decoder.dropout: must be in [0, 1)"),
    # tokenizer
    (TT, ["tokenizer.byte_fallback=true", "tokenizer.vocab_size=100"], "tokenizer.vocab_size: 100 must exceed the 260 reserved pieces"),
    (TT, ["tokenizer.vocab_size=4"], "tokenizer.vocab_size: 4 must exceed the 4 reserved pieces"),
    (TT, ["tokenizer.model_type=word"], "tokenizer.model_type: 'word' is not one of bpe, unigram"),
    (TT, ["tokenizer.character_coverage=0.5"], "tokenizer.character_coverage: must be in [0.9, 1]"),
    (TT, ["tokenizer.max_sentences=0"], "tokenizer.max_sentences: must be positive"),
    # data
    (TT, ["data.max_source_len=1"], "data.max_source_len: must be at least 2"),
    (TT, ["data.max_target_len=-5"], "data.max_target_len: must be at least 2"),
    (TT, ["data.tokens_per_batch=10"], "data.tokens_per_batch: 10 cannot hold 8 rows of 96 tokens (must be at least 768)"),
    (TT, ["data.max_shapes=0"], "data.max_shapes: must be positive"),
    (TT, ["data.eval_max_shapes=0"], "data.eval_max_shapes: must be null (the training shapes) or positive"),
    (TT, ["data.bucket_width=0"], "data.bucket_width: must be positive"),
    (TT, ["data.num_workers=-1"], "data.num_workers: must be >= 0"),
    (TT, ["data.max_train_examples=0"], "data.max_train_examples: must be null (all) or positive"),
    (TT, ["data.length_policy=drop"], "data.length_policy: 'drop' is not one of filter, truncate"),
    (TT, ["data.task=qa"], "data.task: 'qa' is not one of translation, summarization"),
    (TT, ["data.format=parquet"], "data.format: 'parquet' is not one of jsonl, tsv, moses, tfds"),
    # optimizer
    (TT, ["optim.learning_rate=0"], "optim.learning_rate: must be positive"),
    (TT, ["optim.warmup_steps=-1"], "optim.warmup_steps: must be >= 0"),
    (TT, ["optim.b1=1.0"], "optim.b1: must be in [0, 1)"),
    (TT, ["optim.b2=-0.5"], "optim.b2: must be in [0, 1)"),
    (TT, ["optim.eps=0"], "optim.eps: must be positive"),
    (TT, ["optim.weight_decay=-0.1"], "optim.weight_decay: must be >= 0"),
    (TT, ["optim.min_lr_ratio=1.5"], "optim.min_lr_ratio: must be in [0, 1]"),
    (TT, ["optim.clip_norm=-1"], "optim.clip_norm: must be >= 0"),
    (TT, ["optim.name=sgd"], "optim.name: 'sgd' is not one of adamw"),
    (TT, ["optim.schedule=linear"], "optim.schedule: 'linear' is not one of inverse_sqrt, cosine, constant"),
    # trainer (its checks live with TrainerConfig)
    (TT, ["trainer.max_steps=-5"], "trainer.max_steps: must be positive"),
    (TT, ["trainer.label_smoothing=1.0"], "trainer.label_smoothing: must be in [0, 1)"),
    (TT, ["trainer.precision=fp8"], "trainer.precision: 'fp8' is not one of fp32, bf16"),
    (TT, ["trainer.budget=minutes"], "trainer.budget: 'minutes' is not one of steps, tokens, flops, seconds"),
    (TT, ["trainer.budget=flops"], "trainer.budget_amount: must be positive with trainer.budget=flops"),
    (TT, ["trainer.budget=tokens", "trainer.budget_amount=-3"], "trainer.budget_amount: must be positive with trainer.budget=tokens"),
    (TT, ["trainer.budget_amount=1e9"], "trainer.budget_amount: is not used with trainer.budget=steps"),
    # decoding
    (TT, ["decode.search=nucleus"], "decode.search: 'nucleus' is not one of greedy, beam, sample"),
    (TT, ["decode.beam_size=5"], "decode.beam_size: 5 applies to search=beam only, but search=greedy"),
    (TT, ["decode=beam", "decode.search=greedy"], "decode.beam_size: 5 applies to search=beam only, but search=greedy"),
    (TT, ["decode=sample", "decode.beam_size=2"], "decode.beam_size: 2 applies to search=beam only, but search=sample"),
    (TT, ["decode.temperature=0.7"], "decode.temperature: 0.7 applies to search=sample only, but search=greedy"),
    (TT, ["decode=beam", "decode.top_k=10"], "decode.top_k: 10 applies to search=sample only, but search=beam"),
    (TT, ["decode.top_p=0.9"], "decode.top_p: 0.9 applies to search=sample only, but search=greedy"),
    (TT, ["decode.beam_size=0"], "decode.beam_size: must be at least 1"),
    (TT, ["decode.n_best=0"], "decode.n_best: must be between 1 and beam_size (1)"),
    (TT, ["decode.beam_size=2", "decode.n_best=3"], "decode.n_best: must be between 1 and beam_size (2)"),
    (TT, ["decode.temperature=0"], "decode.temperature: must be positive"),
    (TT, ["decode.top_p=0"], "decode.top_p: must be in (0, 1]"),
    (TT, ["decode.top_p=1.5"], "decode.top_p: must be in (0, 1]"),
    (TT, ["decode.top_k=-1"], "decode.top_k: must be >= 0"),
    (TT, ["decode.length_penalty=-1"], "decode.length_penalty: must be >= 0"),
    (TT, ["decode.max_len_a=-1"], "decode.max_len_a: must be >= 0"),
    (TT, ["decode.max_len_b=-1"], "decode.max_len_b: must be >= 0"),
    (TT, ["decode.max_len_a=0", "decode.max_len_b=0"], "decode.max_len_b: max_len_a and max_len_b allow no output"),
    # devices and processes
    (TT, ["mesh.data=0"], "mesh.data: must be -1 (all devices) or positive"),
    (TT, ["mesh.distributed=maybe"], "mesh.distributed: 'maybe' is not one of auto, on, off"),
    (TT, ["mesh.num_processes=0"], "mesh.num_processes: must be null (detect) or positive"),
    (TT, ["mesh.process_id=-1"], "mesh.process_id: must be null (detect) or >= 0"),
    (TT, ["mesh.num_processes=2", "mesh.process_id=2"], "mesh.process_id: must be below num_processes (2)"),
    (TT, ["mesh.coordinator_address=localhost"], "mesh.coordinator_address: 'localhost' is not null or host:port"),
]


def _compose(pair, overrides):
    return compose_config(tiny_overrides(*pair) + list(overrides))


@pytest.mark.parametrize("pair,overrides,message", IMPOSSIBLE, ids=[" ".join(c[1]) for c in IMPOSSIBLE])
def test_impossible_value_is_refused_naming_the_key_and_the_allowed_values(pair, overrides, message):
    with pytest.raises(ConfigError) as err:
        resolve(_compose(pair, overrides))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("pair", [TT, RNN, CNN])
def test_the_tiny_configs_these_cases_start_from_are_valid(pair):
    run = resolve(_compose(pair, []))
    assert (run.encoder, run.decoder) == pair


# Hydra refuses these while composing, before `resolve` runs; `python -m research.train` prints
# the same text and exits with status 1 (a ConfigError from `resolve` exits with 2).
@pytest.mark.parametrize("override,expected_type", [
    ("encoder.num_layers=three", "Integer"),
    ("decode.beam_size=1.5", "Integer"),
    ("optim.b1=high", "Float"),
    ("trainer.checkpoint=maybe", "bool"),
])
def test_wrong_type_fails_at_composition_naming_the_key(override, expected_type):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException, match=re.escape(f"Error merging override {override}")) as err:
        _compose(TT, [override])
    assert f"full_key: {key}" in str(err.value.__cause__) and expected_type in str(err.value.__cause__)


@pytest.mark.parametrize("pair,override", [(RNN, "encoder.hidden_szie=3"), (TT, "trainer.max_stepz=3")])
def test_misspelled_key_without_plus_fails_at_composition_naming_the_key(pair, override):
    key = override.split("=")[0]
    with pytest.raises(ConfigCompositionException, match=re.escape(f"Could not override '{key}'")) as err:
        _compose(pair, [override])
    assert f"full_key: {key}" in str(err.value.__cause__)


@pytest.mark.parametrize("group", ["encoder", "decoder"])
def test_unknown_component_fails_at_composition_listing_the_registered_ones(group):
    with pytest.raises(MissingConfigException, match=rf"Could not find '{group}/lstmx'") as err:
        compose_config([f"{group}=lstmx"])
    assert all(f"\t{name}\n" in str(err.value) for name in REGISTERED.split(", "))


# ---------------------------------------------------------------- `_target_` cannot smuggle a class in


def _opens(path: Path) -> list[str]:
    """A `_target_` payload that would create `path` if anything instantiated it."""
    return ["_target_=builtins.open", f"_args_=[{path},w]"]


def test_the_payload_would_create_its_file_if_instantiated(tmp_path):
    """Guards the tests below: the payload is live, so its file not appearing means it never ran."""
    f = instantiate({"_target_": "builtins.open", "_args_": [str(tmp_path / "ran"), "w"]})
    f.close()
    assert (tmp_path / "ran").exists()


@pytest.mark.parametrize("where,message", [
    ("encoder.", "encoder._target_: Key '_target_' not in 'TransformerConfig'"),
    ("decoder.", "decoder._target_: Key '_target_' not in 'TransformerConfig'"),
    ("model.", "model._target_: Key '_target_' not in 'ModelConfig'"),
    ("trainer.", "trainer._target_: Key '_target_' not in 'TrainerConfig'"),
    ("", "_target_: not a config key; the top level holds only the groups"),
])
def test_target_override_is_refused_and_never_runs(tmp_path, where, message):
    sentinel = tmp_path / "pwned"
    with pytest.raises(ConfigError) as err:
        resolve(_compose(TT, [f"+{where}{o}" for o in _opens(sentinel)]))
    assert str(err.value).startswith(message)
    assert not sentinel.exists()


@pytest.mark.parametrize("body,key", [
    ("_target_: builtins.open\n_args_: [{path}, w]\n", "_target_"),
    ("encoder:\n  _target_: builtins.open\n  _args_: [{path}, w]\n", "encoder._target_"),
    ("model:\n  _target_: subprocess.Popen\n  _args_: [[touch, {path}]]\n", "model._target_"),
])
def test_target_in_a_config_file_is_refused_at_composition(tmp_path, body, key):
    sentinel = tmp_path / "pwned"
    (tmp_path / "experiment").mkdir()
    (tmp_path / "experiment" / "evil.yaml").write_text("# @package _global_\n" + body.format(path=sentinel))
    with pytest.raises(ConfigCompositionException) as err:
        _compose(TT, [f"hydra.searchpath=[file://{tmp_path}]", "+experiment=evil"])
    assert f"full_key: {key}" in str(err.value)
    assert not sentinel.exists()


def test_the_project_never_instantiates_config_nodes():
    """Components are chosen by registry name; `_target_` paths are left to Hydra's own launcher configs."""
    calls = re.compile(r"\b(instantiate|get_class|get_method|get_object|_locate)\s*\(")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "research").rglob("*.py") if calls.search(p.read_text())]
    assert offenders == []
