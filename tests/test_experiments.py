"""Experiment files compose, their grids and budgets are what they say; launcher and sweeper configs instantiate."""
from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from research.config import REPO, resolve
from research.data.batch import KEYS
from research.models.seq2seq import Architecture, Seq2Seq
from tests.conftest import compose_config

KINDS = ("rnn", "cnn", "transformer")
EXPERIMENTS = sorted(p.stem for p in (REPO / "experiments").glob("*.yaml"))
# experiment -> (budget group, target parameters per pair, tolerance); the targets stated in the files' comments
COMPARE = {
    "compare_translation": ("params8m", 7_500_000, 0.02),
    "compare_summarization": ("params8m", 7_500_000, 0.02),
    "compare_translation_quick": ("params360k", 342_000, 0.015),
    "compare_summarization_quick": ("params360k", 342_000, 0.015),
    "compare_translation_small": ("params1m", 1_180_000, 0.01),
    "compare_summarization_small": ("params1m", 1_180_000, 0.01),
}
DIAGNOSTICS = ("reverse", "addition", "scan_length", "scan_addprim_jump")
SEEDS = ["0", "1", "2"]  # every recorded grid's


def hydra_config(*overrides: str):
    """The composed config with its `hydra` node, as a multirun sees it."""
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose(config_name="config", overrides=list(overrides), return_hydra_config=True)


def sweep_grid(experiment: str) -> tuple[dict[str, list[str]], dict]:
    """(grid, sweep) of a multirun experiment: each sweeper parameter's values as its file writes them, in the
    order hydra's basic sweeper appends them as overrides, and the unresolved `hydra.sweep` node (dir, subdir)."""
    cfg = hydra_config(f"+experiment={experiment}")
    assert cfg.hydra.mode.name == "MULTIRUN", experiment
    grid = {key: str(values).split(",") for key, values in cfg.hydra.sweeper.params.items()}
    return grid, OmegaConf.to_container(cfg.hydra.sweep, resolve=False)


def pair_overrides(experiment: str, encoder: str, decoder: str) -> list[str]:
    budget = COMPARE[experiment][0]
    return [f"+experiment/budget/{budget}/encoder={encoder}", f"+experiment/budget/{budget}/decoder={decoder}"]


def param_count(run, vocab: int | None = None) -> int:
    """Parameters of the run's model, from shapes only (nothing is initialised); `vocab` defaults to
    tokenizer.vocab_size, which SentencePiece gives exactly on these corpora."""
    vocab = vocab or run.tokenizer.vocab_size
    arch = Architecture(run.encoder, run.encoder_config, run.decoder, run.decoder_config, run.model, vocab, vocab)
    return model_params(Seq2Seq(arch))


def model_params(model, keys=KEYS, part: str | None = None) -> int:
    """Parameters of a flax model (or of its top-level `part`) from shapes only, for a 1 x 8 batch of `keys`."""
    batch = {k: np.ones((1, 8), np.int32) for k in keys}
    shapes = jax.eval_shape(lambda: model.init({"params": jax.random.PRNGKey(0)}, batch)["params"])
    return sum(int(np.prod(x.shape)) for x in jax.tree.leaves(shapes[part] if part else shapes))


def test_every_experiment_file_documents_its_command():
    assert {"demo", *COMPARE, "search_translation"} <= set(EXPERIMENTS)
    for name in EXPERIMENTS:
        lines = (REPO / "experiments" / f"{name}.yaml").read_text().splitlines()
        assert lines[0] == "# @package _global_", name
        assert any("python -m research.train +experiment=" + name in l for l in lines[1:6]), name


@pytest.mark.parametrize("name", [e for e in EXPERIMENTS if e not in COMPARE and e != "compare_diagnostics"])
def test_experiment_resolves_with_its_own_settings(name):
    composed = compose_config(experiment=name)
    resolve(composed)  # the strict schema: an unknown key or a value out of range raises, naming it
    own = OmegaConf.to_container(OmegaConf.load(REPO / "experiments" / f"{name}.yaml"), resolve=False)
    settings = {k: v for k, v in flatten({k: v for k, v in own.items() if k not in ("defaults", "hydra")}).items()
                if not (isinstance(v, str) and "${" in v)}
    for key, value in settings.items():  # nothing composed after the file's `_self_` replaced what it sets
        assert OmegaConf.select(composed, key) == value, (name, key)


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a.b": leaf} for a nested mapping."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


@pytest.mark.parametrize("name", sorted(COMPARE))
@pytest.mark.slow  # `make test-slow`: 2026-12-03 durations, 30-380 s each
def test_compare_grid_is_a_3x3_sweep_at_a_matched_budget(name):
    cfg = hydra_config(f"+experiment={name}")
    assert cfg.hydra.mode.name == "MULTIRUN"
    params = cfg.hydra.sweeper.params
    budget, target, tolerance = COMPARE[name]
    assert params[f"+experiment/budget/{budget}/encoder"].split(",") == list(KINDS)
    assert params[f"+experiment/budget/{budget}/decoder"].split(",") == list(KINDS)
    assert len(str(params["trainer.seed"]).split(",")) >= 2
    counts = {}
    for enc, dec in itertools.product(KINDS, KINDS):
        run = resolve(compose_config([f"+experiment={name}", *pair_overrides(name, enc, dec)]))
        assert (run.encoder, run.decoder) == (enc, dec)
        if "summarization" in name:
            assert (run.decode.max_len_a, run.decode.max_len_b) == (0, 48)
            assert run.data.task == "summarization"
        counts[f"{enc}+{dec}"] = param_count(run)
    off = {k: v for k, v in counts.items() if abs(v / target - 1) > tolerance}
    assert not off, f"outside {target:,} ± {tolerance:.1%}: {off} (all: {counts})"


def test_quick_variants_use_the_shipped_samples():
    for name in ("compare_translation_quick", "compare_summarization_quick"):
        run = resolve(compose_config([f"+experiment={name}", *pair_overrides(name, "rnn", "rnn")]))
        assert run.data.name.endswith("_sample") and Path(run.data.dir).is_relative_to(REPO / "research")


def test_joblib_launcher_is_a_switch():
    cfg = hydra_config("+experiment=compare_translation_quick", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "JoblibLauncher" and launcher.joblib["n_jobs"] == 2


def test_slurm_launcher_composes_and_instantiates(tmp_path, monkeypatch):
    cfg = hydra_config("+experiment=compare_translation", "hydra/launcher=slurm", "hydra.launcher.partition=gpu",
                       f"hydra.sweep.dir={tmp_path}")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    p = launcher.params
    assert (p["gpus_per_node"], p["tasks_per_node"], p["partition"]) == (1, 1, "gpu")
    # Hand submitit what SlurmLauncher.launch hands it: it rejects unknown parameters and writes the sbatch
    # script. Only the check that `srun` exists is faked: there is no cluster here.
    import shutil

    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: "/usr/bin/srun" if name == "srun" else which(name, *a, **k))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor = submitit.AutoExecutor(folder=tmp_path / "submitit", cluster="slurm", slurm_max_num_timeout=p["max_num_timeout"])
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in p.items()
                                  if k not in ("submitit_folder", "max_num_timeout")})
    script = executor._executor._make_submission_file_text("python -m research.train", "0")
    assert "#SBATCH --partition=gpu" in script and "#SBATCH --gpus-per-node=1" in script


def test_optuna_search_composes_and_instantiates():
    from hydra_plugins.hydra_optuna_sweeper._impl import create_params_from_overrides

    cfg = hydra_config("+experiment=search_translation")
    sweeper = instantiate(cfg.hydra.sweeper)
    assert type(sweeper).__name__ == "OptunaSweeper"
    assert cfg.hydra.sweeper.direction == "maximize" and cfg.hydra.sweeper.n_trials > 1
    space, fixed = create_params_from_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    assert set(space) == set(cfg.hydra.sweeper.params) and not fixed
    assert space["optim.learning_rate"].low == 0.0003
    # every searched key exists in the run config
    run = resolve(compose_config(experiment="search_translation"))
    for key in space:
        group, field = key.split(".")
        assert hasattr(getattr(run, group + ("_config" if group in ("encoder", "decoder") else "")), field), key


def test_diagnostics_grid_is_four_tasks_at_one_matched_budget():
    cfg = hydra_config("+experiment=compare_diagnostics")
    params = cfg.hydra.sweeper.params
    assert params["+experiment/diagnostics"].split(",") == list(DIAGNOSTICS)  # each task's file picks its data
    assert len(str(params["trainer.seed"]).split(",")) == 3
    subdir = OmegaConf.to_container(cfg.hydra.sweep, resolve=False)["subdir"]
    assert subdir.startswith("${data.name}/")  # one folder, so one report, per task
    vocab, steps = {}, {}
    for data in DIAGNOSTICS:
        # in the sweep's order (its parameters come before the experiment), and in the other order
        run = resolve(compose_config([f"+experiment/diagnostics={data}", "+experiment=compare_diagnostics"]))
        other = resolve(compose_config(["+experiment=compare_diagnostics", f"+experiment/diagnostics={data}"]))
        assert other.trainer == run.trainer and other.data == run.data
        assert (run.data.name, run.data.task, run.tokenizer.model_type, run.data.format) == (
            data, "sequence", "symbols", "generated")
        vocab[data], steps[data] = symbol_vocab(run), run.trainer.max_steps
    # steps per task (addition learns slowest, reverse costs most), the same for every pair
    assert steps == {"reverse": 400, "addition": 900, "scan_length": 600, "scan_addprim_jump": 600}
    assert max(vocab.values()) <= 40, vocab  # so the embedding (64 x vocab) is under 1.2% of any pair
    counts = {}
    for enc, dec in itertools.product(KINDS, KINDS):  # counted on one task: the others differ only in that embedding
        run = resolve(compose_config(["+experiment=compare_diagnostics", "+experiment/diagnostics=scan_length",
                                      f"+experiment/budget/params360k/encoder={enc}",
                                      f"+experiment/budget/params360k/decoder={dec}"]))
        counts[f"{enc}+{dec}"] = param_count(run, vocab["scan_length"])
    # the quick budget's encoder (~100,000) + decoder (~115,000) and the symbol embedding
    off = {k: v for k, v in counts.items() if abs(v / 215_000 - 1) > 0.03}
    assert not off, f"outside 215,000 ± 3%: {off} (all: {counts})"


def symbol_vocab(run) -> int:
    """The symbols of the task's training split (counted here), plus the 4 special ids."""
    from research.data import generated

    splits = generated.generate(run.data.generator)
    return 4 + len({s for pair in splits[run.data.train_split] for text in pair for s in text.split()})


def test_classification_grid_is_the_three_encoders_at_matched_parameters():
    from research.models.classifier import Classifier, architecture  # noqa: PLC0415

    grid, _ = sweep_grid("compare_classification")
    assert grid == {"+experiment/budget/params1m/encoder": list(KINDS), "trainer.seed": SEEDS}
    counts = {}
    for enc in KINDS:
        run = resolve(compose_config(["+experiment=compare_classification", f"+experiment/budget/params1m/encoder={enc}"]))
        assert (run.data.task, run.data.name, run.encoder) == ("classification", "ddtp_sections_en", enc)
        counts[enc] = model_params(Classifier(architecture(run, run.tokenizer.vocab_size, 44, False)))
    # the params1m encoder (397,000) + the 2,000 x 128 embedding + the 44-way layer (128 x 44 + 44) = 658,676
    off = {k: v for k, v in counts.items() if abs(v / 658_676 - 1) > 0.01}
    assert not off, f"outside 658,676 ± 1%: {off} (all: {counts})"


def test_embeddings_grid_is_three_arms_on_two_corpora_with_vectors_that_fit():
    import gzip  # noqa: PLC0415

    grid, _ = sweep_grid("compare_embeddings")
    assert grid == {"data": ["ddtp_de_en_sample", "ddtp_de_en"], "+experiment/budget/params1m/encoder": ["cnn"],
                    "+experiment/budget/params1m/decoder": ["cnn"], "+experiment/embeddings": ["random", "glove", "frozen"],
                    "trainer.seed": SEEDS}
    counts = {}
    for data in ("ddtp_de_en_sample", "ddtp_de_en"):
        for arm, (vectors, freeze) in {"random": (False, False), "glove": (True, False), "frozen": (True, True)}.items():
            run = resolve(compose_config(["+experiment=compare_embeddings", f"data={data}", f"+experiment/embeddings={arm}",
                                          "+experiment/budget/params1m/encoder=cnn", "+experiment/budget/params1m/decoder=cnn"]))
            emb = run.model.embeddings
            assert (emb.pretrained is not None, emb.freeze) == (vectors, freeze), (data, arm)
            counts[data, arm] = param_count(run)
            if vectors:  # the committed vectors exist and are as wide as the model
                assert Path(emb.pretrained).name == f"{data}-bpe2000-d128.txt.gz"
                with gzip.open(emb.pretrained, "rt") as f:
                    rows = [line.split(" ") for line in f]
                assert {len(r) - 1 for r in rows} == {run.model.d_model}
                assert len(rows) == run.tokenizer.vocab_size - 4  # every piece but the 4 special ids
    assert len(set(counts.values())) == 1, counts  # the arms differ in how the embedding starts, not in size


def test_tagging_grid_is_the_three_encoders_at_matched_parameters():
    from research.models.tagger import Tagger, architecture  # noqa: PLC0415

    grid, _ = sweep_grid("compare_tagging")
    assert grid == {"+experiment/budget/params1m/encoder": list(KINDS), "trainer.seed": SEEDS}
    counts = {}
    for enc in KINDS:
        run = resolve(compose_config(["+experiment=compare_tagging", f"+experiment/budget/params1m/encoder={enc}"]))
        assert (run.data.task, run.data.name, run.encoder) == ("tagging", "ddtp_punct_en", enc)
        assert (run.trainer.budget, run.trainer.test) == ("flops", True)
        counts[enc] = model_params(Tagger(architecture(run, run.tokenizer.vocab_size, 7, False)))  # 7 tags: O and the 6 marks
    # the params1m encoder (397,000) + the 2,000 x 128 embedding + the 7-way layer (128 x 7 + 7) = 653,903
    off = {k: v for k, v in counts.items() if abs(v / 653_903 - 1) > 0.01}
    assert not off, f"outside 653,903 ± 1%: {off} (all: {counts})"


def test_lm_grid_is_the_three_decoders_at_matched_parameters():
    from research.models.language_model import LanguageModel, architecture  # noqa: PLC0415

    grid, _ = sweep_grid("compare_lm")
    assert grid == {"+experiment/budget/lm1m/decoder": list(KINDS), "trainer.seed": SEEDS}
    counts = {}
    for dec in KINDS:
        run = resolve(compose_config(["+experiment=compare_lm", f"+experiment/budget/lm1m/decoder={dec}"]))
        assert (run.data.task, run.data.name, run.decoder) == ("lm", "ddtp_summ_en_lm", dec)
        assert (run.trainer.budget, run.trainer.test, run.model.tie_output) == ("flops", True, True)
        counts[dec] = model_params(LanguageModel(architecture(run, run.tokenizer.vocab_size)),
                                   keys=("target_in", "target_out", "target_segments", "target_positions"))
    # the tied 2,000 x 128 embedding (256,000) + a decoder without a memory of budget/lm1m (794,000) = 1,050,000
    off = {k: v for k, v in counts.items() if abs(v / 1_050_000 - 1) > 0.01}
    assert not off, f"outside 1,050,000 ± 1%: {off} (all: {counts})"


def test_summarization_copy_grid_is_each_decoder_plain_copy_and_coverage_behind_one_encoder():
    grid, _ = sweep_grid("compare_summarization_copy")
    variants = grid["+experiment/summary_copy"]
    assert sorted(variants) == sorted(f"{d}{v}" for d in KINDS for v in ("", "_copy", "_copy_coverage"))
    assert grid == {"+experiment/summary_copy": variants, "trainer.seed": SEEDS}
    small = resolve(compose_config(["+experiment=compare_summarization_small", *pair_overrides("compare_summarization_small",
                                                                                               "transformer", "rnn")]))
    counts = {}
    for variant in variants:
        run = resolve(compose_config(["+experiment=compare_summarization_copy", f"+experiment/summary_copy={variant}"]))
        decoder = variant.split("_")[0]
        assert (run.encoder, run.decoder, run.data.name) == ("transformer", decoder, "ddtp_summ_en")
        assert run.model.pointer_generator == ("_copy" in variant)
        assert run.trainer.lambda_coverage == (1.0 if variant.endswith("_coverage") else 0.0)
        assert getattr(run.decoder_config, "coverage", False) == (variant == "rnn_copy_coverage")  # only the RNN has the input
        # Everything else is compare_summarization_small's: the budget, optimizer, data and decoding.
        for part in ("optim", "data", "decode", "tokenizer"):
            assert getattr(run, part) == getattr(small, part), part
        assert dataclasses.replace(run.trainer, lambda_coverage=0.0) == small.trainer
        counts[variant] = param_count(run)
    off = {k: v for k, v in counts.items() if abs(v / 1_180_000 - 1) > 0.01}
    assert not off, f"outside 1,180,000 ± 1%: {off} (all: {counts})"


def test_summarization_copy_budgets_is_the_best_copy_variant_at_two_and_four_times_the_flops():
    grid, sweep = sweep_grid("compare_summarization_copy_budgets")
    assert grid == {"+experiment/summary_copy": ["cnn_copy_coverage"], "trainer.budget_amount": ["8.2e12", "1.64e13"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_summarization_copy_budgets/")
    assert sweep["subdir"].startswith("flops_${trainer.budget_amount}/")  # one folder, so one report, per budget
    copy = resolve(compose_config(["+experiment=compare_summarization_copy", "+experiment/summary_copy=cnn_copy_coverage"]))
    for amount in (8.2e12, 1.64e13):
        run = resolve(compose_config(["+experiment=compare_summarization_copy_budgets",
                                      "+experiment/summary_copy=cnn_copy_coverage", f"trainer.budget_amount={amount}"]))
        assert run.trainer.budget_amount == amount and copy.trainer.budget_amount == 4.1e12
        assert run == dataclasses.replace(copy, trainer=dataclasses.replace(copy.trainer, budget_amount=amount))


def test_summarization_copy_lr_grid_is_the_three_copy_coverage_variants_at_three_rates():
    grid, sweep = sweep_grid("compare_summarization_copy_lr")
    variants = ["rnn_copy_coverage", "cnn_copy_coverage", "transformer_copy_coverage"]
    assert grid == {"+experiment/summary_copy": variants, "optim.learning_rate": ["0.003", "0.006", "0.012"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_summarization_copy_lr/")
    for variant in variants:
        copy = resolve(compose_config(["+experiment=compare_summarization_copy", f"+experiment/summary_copy={variant}"]))
        assert copy.optim.learning_rate == 0.003
        for lr in (0.003, 0.006, 0.012):  # compare_summarization_copy's run of the variant but for the rate
            run = resolve(compose_config(["+experiment=compare_summarization_copy_lr",
                                          f"+experiment/summary_copy={variant}", f"optim.learning_rate={lr}"]))
            assert run == dataclasses.replace(copy, optim=dataclasses.replace(copy.optim, learning_rate=lr))


def test_summarization_copy_lr_wide_grid_is_the_same_variants_one_step_beyond_each_end():
    grid, sweep = sweep_grid("compare_summarization_copy_lr_wide")
    narrow, _ = sweep_grid("compare_summarization_copy_lr")
    assert grid == {**narrow, "optim.learning_rate": ["0.0015", "0.024"]}
    assert sweep["dir"].startswith("multirun/compare_summarization_copy_lr_wide/")
    for variant in narrow["+experiment/summary_copy"]:
        for lr in (0.0015, 0.024):  # compare_summarization_copy_lr's run of the variant but for the rate
            chosen = [f"+experiment/summary_copy={variant}", f"optim.learning_rate={lr}"]
            run = resolve(compose_config(["+experiment=compare_summarization_copy_lr_wide", *chosen]))
            assert run == resolve(compose_config(["+experiment=compare_summarization_copy_lr", *chosen]))


def test_summarization_copy_lr_low_grid_is_the_transformer_variant_one_step_below_the_wide_grid():
    grid, sweep = sweep_grid("compare_summarization_copy_lr_low")
    narrow, _ = sweep_grid("compare_summarization_copy_lr")
    assert grid == {**narrow, "+experiment/summary_copy": ["transformer_copy_coverage"], "optim.learning_rate": ["0.00075"]}
    assert sweep["dir"].startswith("multirun/compare_summarization_copy_lr_low/")
    chosen = ["+experiment/summary_copy=transformer_copy_coverage", "optim.learning_rate=0.00075"]
    run = resolve(compose_config(["+experiment=compare_summarization_copy_lr_low", *chosen]))
    assert run == resolve(compose_config(["+experiment=compare_summarization_copy_lr", *chosen]))
    assert run.optim.learning_rate == 0.00075


def test_summarization_top_two_grid_adds_two_seeds_to_each_of_the_two_best_summarizers_at_its_chosen_rate():
    grid, sweep = sweep_grid("compare_summarization_top_two")
    assert grid == {"+experiment/summary_copy": ["cnn_copy_coverage"], "optim.learning_rate": ["0.003"],
                    "trainer.seed": ["3", "4"]}
    assert sweep["dir"].startswith("multirun/compare_summarization_top_two/")
    for variant, lr in (("cnn_copy_coverage", 0.003), ("rnn_copy_coverage", 0.012)):  # the two launches
        chosen = [f"+experiment/summary_copy={variant}", f"optim.learning_rate={lr}", "trainer.seed=3"]
        run = resolve(compose_config(["+experiment=compare_summarization_top_two", *chosen]))
        assert run == resolve(compose_config(["+experiment=compare_summarization_copy_lr", *chosen]))
        assert (run.optim.learning_rate, run.trainer.seed) == (lr, 3)


def test_summarization_third_seeds_grid_gives_the_transformer_decoder_seeds_three_and_four_at_its_chosen_rate():
    grid, sweep = sweep_grid("compare_summarization_third_seeds")
    assert grid == {"+experiment/summary_copy": ["transformer_copy_coverage"], "optim.learning_rate": ["0.0015"],
                    "trainer.seed": ["3", "4"]}
    assert sweep["dir"].startswith("multirun/compare_summarization_third_seeds/")
    chosen = ["+experiment/summary_copy=transformer_copy_coverage", "optim.learning_rate=0.0015", "trainer.seed=3"]
    run = resolve(compose_config(["+experiment=compare_summarization_third_seeds", *chosen]))
    assert run == resolve(compose_config(["+experiment=compare_summarization_copy_lr_wide", *chosen]))
    assert (run.optim.learning_rate, run.trainer.seed) == (0.0015, 3)


def test_longer_translation_grid_is_the_small_one_at_twice_the_flops():
    grid, sweep = sweep_grid("compare_translation_longer")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn", "transformer"],
                    "+experiment/budget/params1m/decoder": ["cnn", "transformer"], "trainer.seed": SEEDS}
    # Its own folder: runs filed under compare_translation_small's would mix the two sweeps in one report.
    assert sweep["dir"].startswith("multirun/compare_translation_longer/")
    for enc, dec in itertools.product(("cnn", "transformer"), repeat=2):
        pair = pair_overrides("compare_translation_small", enc, dec)
        run = resolve(compose_config(["+experiment=compare_translation_longer", *pair]))
        small = resolve(compose_config(["+experiment=compare_translation_small", *pair]))
        assert run.trainer.budget_amount == 2 * small.trainer.budget_amount == 1.64e13
        assert run == dataclasses.replace(small, trainer=dataclasses.replace(small.trainer, budget_amount=1.64e13))


def test_translation_positions_grid_is_the_longer_transformer_encoder_with_relative_positions_against_sinusoidal():
    grid, sweep = sweep_grid("compare_translation_positions")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"],
                    "+experiment/budget/params1m/decoder": ["cnn", "transformer"],
                    "encoder.positions": ["sinusoidal", "relative"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_positions/")
    for dec in ("cnn", "transformer"):
        pair = pair_overrides("compare_translation_small", "transformer", dec)
        longer = resolve(compose_config(["+experiment=compare_translation_longer", *pair]))
        counts = {}
        for positions in ("sinusoidal", "relative"):
            run = resolve(compose_config(["+experiment=compare_translation_positions", *pair, f"encoder.positions={positions}"]))
            # compare_translation_longer's run but for the encoder's positions; sinusoidal is that run
            assert run == dataclasses.replace(longer, encoder_config=dataclasses.replace(longer.encoder_config, positions=positions))
            assert getattr(run.decoder_config, "positions", "sinusoidal") == "sinusoidal"  # the cnn decoder has learned ones
            counts[positions] = param_count(run)
        assert counts["relative"] - counts["sinusoidal"] == 4 * 32  # one bias per head and distance bucket


def test_translation_positions_t5_grid_crosses_the_encoders_and_the_decoders_positions_of_the_longer_transformer_pair():
    grid, sweep = sweep_grid("compare_translation_positions_t5")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"],
                    "+experiment/budget/params1m/decoder": ["transformer"],
                    "encoder.positions": ["sinusoidal", "relative"], "decoder.positions": ["sinusoidal", "relative"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_positions_t5/")
    pair = pair_overrides("compare_translation_small", "transformer", "transformer")
    longer = resolve(compose_config(["+experiment=compare_translation_longer", *pair]))
    counts = {}
    for enc, dec in itertools.product(("sinusoidal", "relative"), repeat=2):
        run = resolve(compose_config(["+experiment=compare_translation_positions_t5", *pair,
                                      f"encoder.positions={enc}", f"decoder.positions={dec}"]))
        # compare_translation_longer's transformer pair but for the two sides' positions
        assert run == dataclasses.replace(longer, encoder_config=dataclasses.replace(longer.encoder_config, positions=enc),
                                          decoder_config=dataclasses.replace(longer.decoder_config, positions=dec))
        counts[enc, dec] = param_count(run)
    base = counts["sinusoidal", "sinusoidal"]
    # one bias per head and distance bucket for each relative side
    assert {k: v - base for k, v in counts.items()} == {("sinusoidal", "sinusoidal"): 0, ("relative", "sinusoidal"): 128,
                                                      ("sinusoidal", "relative"): 128, ("relative", "relative"): 256}


def test_translation_positions_lr_grid_is_the_transformer_cnn_pair_of_both_positions_at_two_higher_rates():
    grid, sweep = sweep_grid("compare_translation_positions_lr")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"], "+experiment/budget/params1m/decoder": ["cnn"],
                    "encoder.positions": ["sinusoidal", "relative"], "optim.learning_rate": ["0.006", "0.01"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_positions_lr/")
    for positions in ("sinusoidal", "relative"):
        chosen = [*pair_overrides("compare_translation_small", "transformer", "cnn"), f"encoder.positions={positions}"]
        at_003 = resolve(compose_config(["+experiment=compare_translation_positions", *chosen]))
        assert at_003.optim.learning_rate == 0.003
        for lr in (0.006, 0.01):  # compare_translation_positions' transformer+cnn run but for the rate
            run = resolve(compose_config(["+experiment=compare_translation_positions_lr", *chosen, f"optim.learning_rate={lr}"]))
            assert run == dataclasses.replace(at_003, optim=dataclasses.replace(at_003.optim, learning_rate=lr))


def test_translation_positions_lr_low_grid_is_the_relative_cnn_arm_at_the_positions_sweeps_rate():
    grid, sweep = sweep_grid("compare_translation_positions_lr_low")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"], "+experiment/budget/params1m/decoder": ["cnn"],
                    "encoder.positions": ["relative"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_positions_lr_low/")
    chosen = [*pair_overrides("compare_translation_small", "transformer", "cnn"), "encoder.positions=relative"]
    positions = resolve(compose_config(["+experiment=compare_translation_positions", *chosen]))
    run = resolve(compose_config(["+experiment=compare_translation_positions_lr_low", *chosen]))
    assert run == positions and run.optim.learning_rate == 0.003  # the same run as compare_translation_positions'
    at_006 = resolve(compose_config(["+experiment=compare_translation_positions_lr", *chosen, "optim.learning_rate=0.006"]))
    assert run == dataclasses.replace(at_006, optim=dataclasses.replace(at_006.optim, learning_rate=0.003))


def test_translation_top_two_grid_adds_two_seeds_to_each_of_the_two_best_pairs_at_its_chosen_rate():
    grid, sweep = sweep_grid("compare_translation_top_two")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn"], "+experiment/budget/params1m/decoder": ["cnn"],
                    "optim.learning_rate": ["0.003"], "trainer.seed": ["3", "4"]}
    assert sweep["dir"].startswith("multirun/compare_translation_top_two/")
    cnn = pair_overrides("compare_translation_small", "cnn", "cnn")
    longer = resolve(compose_config(["+experiment=compare_translation_longer", *cnn, "trainer.seed=3"]))
    run = resolve(compose_config(["+experiment=compare_translation_top_two", *cnn, "optim.learning_rate=0.003",
                                  "trainer.seed=3"]))
    assert run == longer  # the first launch: compare_translation_longer's cnn+cnn run at its own rate, another seed
    relative = [*pair_overrides("compare_translation_small", "transformer", "cnn"), "encoder.positions=relative",
                "optim.learning_rate=0.006", "trainer.seed=3"]
    positions_lr = resolve(compose_config(["+experiment=compare_translation_positions_lr", *relative]))
    run = resolve(compose_config(["+experiment=compare_translation_top_two", *relative]))
    assert run == positions_lr  # the second launch: compare_translation_positions_lr's relative arm, another seed


def test_translation_longer_lr_grid_is_the_longer_sweeps_four_pairs_at_twice_its_rate():
    grid, sweep = sweep_grid("compare_translation_longer_lr")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn", "transformer"],
                    "+experiment/budget/params1m/decoder": ["cnn", "transformer"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_longer_lr/")
    for enc, dec in itertools.product(("cnn", "transformer"), repeat=2):
        pair = pair_overrides("compare_translation_small", enc, dec)
        longer = resolve(compose_config(["+experiment=compare_translation_longer", *pair]))
        assert longer.optim.learning_rate == 0.003
        run = resolve(compose_config(["+experiment=compare_translation_longer_lr", *pair]))
        # compare_translation_longer's run of the pair but for the rate
        assert run == dataclasses.replace(longer, optim=dataclasses.replace(longer.optim, learning_rate=0.006))


def test_translation_longer_lr_low_grid_is_the_longer_sweeps_four_pairs_at_half_its_rate():
    longer_grid, _ = sweep_grid("compare_translation_longer_lr")
    grid, sweep = sweep_grid("compare_translation_longer_lr_low")
    assert grid == longer_grid
    assert sweep["dir"].startswith("multirun/compare_translation_longer_lr_low/")
    for enc, dec in itertools.product(("cnn", "transformer"), repeat=2):
        pair = pair_overrides("compare_translation_small", enc, dec)
        longer = resolve(compose_config(["+experiment=compare_translation_longer", *pair]))
        run = resolve(compose_config(["+experiment=compare_translation_longer_lr_low", *pair]))
        # compare_translation_longer's run of the pair but for the rate
        assert run == dataclasses.replace(longer, optim=dataclasses.replace(longer.optim, learning_rate=0.0015))


def test_translation_positions_t5_lr_grid_is_the_t5_sweeps_two_by_two_at_twice_its_rate():
    t5_grid, _ = sweep_grid("compare_translation_positions_t5")
    grid, sweep = sweep_grid("compare_translation_positions_t5_lr")
    assert grid == t5_grid
    assert sweep["dir"].startswith("multirun/compare_translation_positions_t5_lr/")
    pair = pair_overrides("compare_translation_small", "transformer", "transformer")
    for enc, dec in itertools.product(("sinusoidal", "relative"), repeat=2):
        chosen = [*pair, f"encoder.positions={enc}", f"decoder.positions={dec}"]
        t5 = resolve(compose_config(["+experiment=compare_translation_positions_t5", *chosen]))
        assert t5.optim.learning_rate == 0.003
        run = resolve(compose_config(["+experiment=compare_translation_positions_t5_lr", *chosen]))
        # compare_translation_positions_t5's run but for the rate
        assert run == dataclasses.replace(t5, optim=dataclasses.replace(t5.optim, learning_rate=0.006))
    # its sinusoidal arm is compare_translation_longer_lr's transformer pair
    longer = resolve(compose_config(["+experiment=compare_translation_longer_lr", *pair]))
    sinusoidal = resolve(compose_config(["+experiment=compare_translation_positions_t5_lr", *pair,
                                         "encoder.positions=sinusoidal", "decoder.positions=sinusoidal"]))
    assert sinusoidal == longer


def test_translation_positions_t5_lr_high_grid_is_the_relative_encoder_arms_at_the_next_rate_up():
    grid, sweep = sweep_grid("compare_translation_positions_t5_lr_high")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"],
                    "+experiment/budget/params1m/decoder": ["transformer"], "encoder.positions": ["relative"],
                    "decoder.positions": ["sinusoidal", "relative"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_positions_t5_lr_high/")
    pair = pair_overrides("compare_translation_small", "transformer", "transformer")
    for dec in ("sinusoidal", "relative"):
        chosen = [*pair, "encoder.positions=relative", f"decoder.positions={dec}"]
        t5 = resolve(compose_config(["+experiment=compare_translation_positions_t5", *chosen]))
        run = resolve(compose_config(["+experiment=compare_translation_positions_t5_lr_high", *chosen]))
        # compare_translation_positions_t5's run of the arm but for the rate
        assert run == dataclasses.replace(t5, optim=dataclasses.replace(t5.optim, learning_rate=0.01))


def test_lm_positions_grid_is_the_transformer_lm_with_relative_positions_against_sinusoidal():
    from research.models.language_model import LanguageModel, architecture  # noqa: PLC0415

    grid, sweep = sweep_grid("compare_lm_positions")
    assert grid == {"+experiment/budget/lm1m/decoder": ["transformer"], "decoder.positions": ["sinusoidal", "relative"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_lm_positions/")
    chosen = ["+experiment/budget/lm1m/decoder=transformer"]
    lm = resolve(compose_config(["+experiment=compare_lm", *chosen]))
    counts = {}
    for positions in ("sinusoidal", "relative"):
        run = resolve(compose_config(["+experiment=compare_lm_positions", *chosen, f"decoder.positions={positions}"]))
        assert run == dataclasses.replace(lm, decoder_config=dataclasses.replace(lm.decoder_config, positions=positions))
        counts[positions] = model_params(LanguageModel(architecture(run, run.tokenizer.vocab_size)),
                                         keys=("target_in", "target_out", "target_segments", "target_positions"))
    assert counts["relative"] - counts["sinusoidal"] == 4 * 32


def test_x4_translation_grid_is_the_small_ones_cnn_encoder_at_four_times_the_flops():
    grid, sweep = sweep_grid("compare_translation_x4")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn"],
                    "+experiment/budget/params1m/decoder": ["cnn", "transformer"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_translation_x4/")
    for dec in ("cnn", "transformer"):
        pair = pair_overrides("compare_translation_small", "cnn", dec)
        run = resolve(compose_config(["+experiment=compare_translation_x4", *pair]))
        small = resolve(compose_config(["+experiment=compare_translation_small", *pair]))
        assert run.trainer.budget_amount == 4 * small.trainer.budget_amount == 3.28e13
        assert run == dataclasses.replace(small, trainer=dataclasses.replace(small.trainer, budget_amount=3.28e13))


@pytest.mark.parametrize("experiment, base, times", [("compare_tagging_x2", "compare_tagging", 2),
                                                     ("compare_classification_x4", "compare_classification", 4)])
def test_an_encoder_grid_at_more_flops_is_its_base_grid_but_for_the_budget(experiment, base, times):
    grid, sweep = sweep_grid(experiment)
    assert grid == {"+experiment/budget/params1m/encoder": list(KINDS), "trainer.seed": SEEDS}
    # Its own folder: runs filed under the base grid's would mix the two budgets in one report.
    assert sweep["dir"].startswith(f"multirun/{experiment}/")
    for enc in KINDS:
        encoder = f"+experiment/budget/params1m/encoder={enc}"
        run = resolve(compose_config([f"+experiment={experiment}", encoder]))
        small = resolve(compose_config([f"+experiment={base}", encoder]))
        amount = times * small.trainer.budget_amount
        assert run.trainer.budget_amount == amount and amount in (8e12, 1.2e13)
        assert run == dataclasses.replace(small, trainer=dataclasses.replace(small.trainer, budget_amount=amount))


def test_rnn_pooling_grid_is_the_classification_rnn_with_each_summary():
    grid, sweep = sweep_grid("compare_classification_rnn_pooling")
    assert grid == {"+experiment/budget/params1m/encoder": ["rnn"], "model.pooling": ["mean", "max", "first", "attention"],
                    "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_classification_rnn_pooling/")
    base = resolve(compose_config(["+experiment=compare_classification", "+experiment/budget/params1m/encoder=rnn"]))
    assert base.model.pooling == "mean"
    for pooling in ("mean", "max", "first", "attention"):
        run = resolve(compose_config(["+experiment=compare_classification_rnn_pooling",
                                      "+experiment/budget/params1m/encoder=rnn", f"model.pooling={pooling}"]))
        assert run == dataclasses.replace(base, model=dataclasses.replace(base.model, pooling=pooling))


def test_rnn_depth_grid_is_the_classification_rnn_at_three_shapes_of_its_parameters_and_three_learning_rates():
    from research.models.classifier import Classifier, architecture  # noqa: PLC0415

    grid, sweep = sweep_grid("compare_classification_rnn_depth")
    assert grid == {"+experiment/budget/params1m/encoder": ["rnn"], "+experiment/rnn_depth": ["4x64", "2x96", "1x167"],
                    "optim.learning_rate": ["0.001", "0.003", "0.01"], "trainer.seed": SEEDS}
    # The budget's rnn, then its reshaping: hydra's basic sweeper appends the overrides in the order of this mapping
    # (compare_classification's keys first), and the later file wins.
    assert list(grid).index("+experiment/budget/params1m/encoder") < list(grid).index("+experiment/rnn_depth")
    assert sweep["dir"].startswith("multirun/compare_classification_rnn_depth/")
    base = resolve(compose_config(["+experiment=compare_classification", "+experiment/budget/params1m/encoder=rnn"]))
    assert base.optim.learning_rate == 0.003
    for shape, (layers, units) in {"4x64": (4, 64), "2x96": (2, 96), "1x167": (1, 167)}.items():
        run = resolve(compose_config(["+experiment=compare_classification_rnn_depth",
                                      "+experiment/budget/params1m/encoder=rnn", f"+experiment/rnn_depth={shape}",
                                      "optim.learning_rate=0.003"]))
        # Only the stack's shape differs from compare_classification's rnn: at 0.003, 4x64 is that run exactly.
        shaped = dataclasses.replace(base.encoder_config, num_layers=layers, hidden_size=units)
        assert run == dataclasses.replace(base, encoder_config=shaped)
        counted = model_params(Classifier(architecture(run, run.tokenizer.vocab_size, 44, False)), part="encoder")
        # By hand: per layer and direction, 4 gates of (input + units) x units weights and two biases of 4 x units;
        # the first layer reads the 128-wide embedding, the others both directions of the layer below.
        by_hand = sum(2 * 4 * units * ((128 if i == 0 else 2 * units) + units + 2) for i in range(layers))
        assert counted == by_hand, shape
        assert abs(counted / 397_312 - 1) < 0.01, (shape, counted)


def test_classification_lr_grid_is_the_classification_grid_at_four_peak_learning_rates_with_the_one_layer_rnn():
    grid, sweep = sweep_grid("compare_classification_lr")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn", "transformer", "rnn_1x167"],
                    "optim.learning_rate": ["0.001", "0.003", "0.01", "0.03"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_classification_lr/")
    depth = ["+experiment=compare_classification_rnn_depth", "+experiment/budget/params1m/encoder=rnn",
             "+experiment/rnn_depth=1x167"]
    for enc, base in [("cnn", ["+experiment=compare_classification", "+experiment/budget/params1m/encoder=cnn"]),
                      ("transformer", ["+experiment=compare_classification",
                                       "+experiment/budget/params1m/encoder=transformer"]),
                      ("rnn_1x167", depth)]:
        for lr in (0.001, 0.003, 0.01, 0.03):
            run = resolve(compose_config(["+experiment=compare_classification_lr",
                                          f"+experiment/budget/params1m/encoder={enc}", f"optim.learning_rate={lr}"]))
            # cnn and transformer: compare_classification's but for the rate; the rnn: rnn_depth's 1x167 run
            assert run == resolve(compose_config([*base, f"optim.learning_rate={lr}"])), (enc, lr)


def test_tagging_rnn_lr_grid_is_compare_tagging_with_both_rnn_shapes_at_three_learning_rates():
    grid, sweep = sweep_grid("compare_tagging_rnn_lr")
    assert grid == {"+experiment/budget/params1m/encoder": ["rnn", "rnn_1x167"],
                    "optim.learning_rate": ["0.003", "0.01", "0.03"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_tagging_rnn_lr/")
    base = resolve(compose_config(["+experiment=compare_tagging", "+experiment/budget/params1m/encoder=rnn"]))
    for shape, (layers, units) in {"rnn": (4, 64), "rnn_1x167": (1, 167)}.items():
        for lr in (0.003, 0.01, 0.03):
            run = resolve(compose_config(["+experiment=compare_tagging_rnn_lr", f"+experiment/budget/params1m/encoder={shape}",
                                          f"optim.learning_rate={lr}"]))
            shaped = dataclasses.replace(base.encoder_config, num_layers=layers, hidden_size=units)
            assert run == dataclasses.replace(base, encoder_config=shaped,
                                              optim=dataclasses.replace(base.optim, learning_rate=lr)), (shape, lr)


def test_tagging_lr_grid_is_compare_tagging_with_three_encoders_at_four_learning_rates():
    grid, sweep = sweep_grid("compare_tagging_lr")
    assert grid == {"+experiment/budget/params1m/encoder": ["cnn", "transformer", "rnn_1x167"],
                    "optim.learning_rate": ["0.001", "0.003", "0.01", "0.03"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_tagging_lr/")
    for enc in ("cnn", "transformer", "rnn_1x167"):
        for lr in (0.001, 0.003, 0.01, 0.03):
            run = resolve(compose_config(["+experiment=compare_tagging_lr", f"+experiment/budget/params1m/encoder={enc}",
                                          f"optim.learning_rate={lr}"]))
            # compare_tagging's run of that encoder (rnn_1x167: compare_tagging_rnn_lr's) but for the rate
            base = "compare_tagging_rnn_lr" if enc == "rnn_1x167" else "compare_tagging"
            assert run == resolve(compose_config([f"+experiment={base}", f"+experiment/budget/params1m/encoder={enc}",
                                                  f"optim.learning_rate={lr}"])), (enc, lr)



def test_transformer_dropout_grid_is_the_tagging_lr_transformer_but_for_dropout():
    grid, sweep = sweep_grid("compare_tagging_transformer_dropout")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"], "encoder.dropout": ["0.1", "0.0"],
                    "optim.learning_rate": ["0.003", "0.01"], "trainer.seed": SEEDS}
    assert sweep["dir"].startswith("multirun/compare_tagging_transformer_dropout/")
    for dropout in (0.1, 0.0):
        for lr in (0.003, 0.01):
            chosen = ["+experiment/budget/params1m/encoder=transformer", f"optim.learning_rate={lr}"]
            run = resolve(compose_config(["+experiment=compare_tagging_transformer_dropout", *chosen,
                                          f"encoder.dropout={dropout}"]))
            tuned = resolve(compose_config(["+experiment=compare_tagging_lr", *chosen]))
            # compare_tagging_lr's transformer run at that rate but for the encoder's dropout
            assert tuned.encoder_config.dropout == 0.1
            assert run == dataclasses.replace(tuned, encoder_config=dataclasses.replace(tuned.encoder_config, dropout=dropout))

def test_transformer_depth_grid_is_the_dropout_free_tagger_at_three_shapes_of_its_parameters():
    from research.models.tagger import Tagger, architecture  # noqa: PLC0415

    grid, sweep = sweep_grid("compare_tagging_transformer_depth")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"], "trainer.seed": SEEDS,
                    "+experiment/transformer_depth": ["1x1280", "2x512", "4x128"], "encoder.dropout": ["0.0"],
                    "optim.learning_rate": ["0.003", "0.01"]}
    # The budget's transformer, then its reshaping: the later file wins.
    assert list(grid).index("+experiment/budget/params1m/encoder") < list(grid).index("+experiment/transformer_depth")
    assert sweep["dir"].startswith("multirun/compare_tagging_transformer_depth/")
    for shape, (layers, d_ff) in {"1x1280": (1, 1280), "2x512": (2, 512), "4x128": (4, 128)}.items():
        for lr in (0.003, 0.01):
            chosen = ["+experiment/budget/params1m/encoder=transformer", f"optim.learning_rate={lr}"]
            run = resolve(compose_config(["+experiment=compare_tagging_transformer_depth", *chosen,
                                          f"+experiment/transformer_depth={shape}", "encoder.dropout=0.0"]))
            dropout = resolve(compose_config(["+experiment=compare_tagging_transformer_dropout", *chosen,
                                              "encoder.dropout=0.0"]))
            # compare_tagging_transformer_dropout's run without dropout but for the shape; 2 x 512 is that run
            shaped = dataclasses.replace(dropout.encoder_config, num_layers=layers, d_ff=d_ff)
            assert run == dataclasses.replace(dropout, encoder_config=shaped)
        counted = model_params(Tagger(architecture(run, run.tokenizer.vocab_size, 7, False)), part="encoder")
        # By hand, at width 128: per layer the 4 attention projections (128 x 128 + 128 each), the feed-forward
        # block (128 x d_ff + d_ff + d_ff x 128 + 128) and two layer norms (2 x 128 each); one final layer norm.
        by_hand = layers * (4 * (128 * 128 + 128) + 257 * d_ff + 128 + 2 * 256) + 256
        assert counted == by_hand, shape
        assert abs(counted / 396_800 - 1) < 0.01, (shape, counted)


def test_transformer_positions_grid_is_the_dropout_free_tagger_with_relative_positions_against_sinusoidal():
    from research.models.tagger import Tagger, architecture  # noqa: PLC0415

    grid, sweep = sweep_grid("compare_tagging_transformer_positions")
    assert grid == {"+experiment/budget/params1m/encoder": ["transformer"], "trainer.seed": SEEDS,
                    "encoder.dropout": ["0.0"], "encoder.positions": ["sinusoidal", "relative"],
                    "optim.learning_rate": ["0.003", "0.01"]}
    assert sweep["dir"].startswith("multirun/compare_tagging_transformer_positions/")
    counts = {}
    for positions in ("sinusoidal", "relative"):
        for lr in (0.003, 0.01):
            chosen = ["+experiment/budget/params1m/encoder=transformer", f"optim.learning_rate={lr}", "encoder.dropout=0.0"]
            run = resolve(compose_config(["+experiment=compare_tagging_transformer_positions", *chosen,
                                          f"encoder.positions={positions}"]))
            depth = resolve(compose_config(["+experiment=compare_tagging_transformer_depth", *chosen,
                                            "+experiment/transformer_depth=2x512"]))
            # compare_tagging_transformer_depth's 2 x 512 run but for the positions; sinusoidal is that run
            assert depth.encoder_config.positions == "sinusoidal"
            assert run == dataclasses.replace(depth, encoder_config=dataclasses.replace(depth.encoder_config, positions=positions))
        counts[positions] = model_params(Tagger(architecture(run, run.tokenizer.vocab_size, 7, False)))
    # relative positions add one bias per head (4) and distance bucket (32)
    assert counts["relative"] - counts["sinusoidal"] == 4 * 32


def test_transformer_relative_lr_grid_is_the_relative_tagger_at_three_peak_learning_rates():
    grid, sweep = sweep_grid("compare_tagging_transformer_relative_lr")
    positions, _ = sweep_grid("compare_tagging_transformer_positions")
    # compare_tagging_transformer_positions' grid, in its order, with relative positions only and one more rate
    assert grid == {**positions, "encoder.positions": ["relative"], "optim.learning_rate": ["0.003", "0.01", "0.03"]}
    assert list(grid) == list(positions)
    assert sweep["dir"].startswith("multirun/compare_tagging_transformer_relative_lr/")
    chosen = ["+experiment/budget/params1m/encoder=transformer", "encoder.dropout=0.0", "encoder.positions=relative"]
    for lr in (0.003, 0.01):  # the runs both sweeps make are the same runs
        assert (resolve(compose_config(["+experiment=compare_tagging_transformer_relative_lr", *chosen, f"optim.learning_rate={lr}"]))
                == resolve(compose_config(["+experiment=compare_tagging_transformer_positions", *chosen, f"optim.learning_rate={lr}"])))


def test_rnn_residual_grid_is_the_rnn_depth_grid_with_residual_connections():
    grid, sweep = sweep_grid("compare_classification_rnn_residual")
    depth, _ = sweep_grid("compare_classification_rnn_depth")
    # rnn_depth's grid, in its order, at three other rates, then the residual switch
    assert list(grid) == [*depth, "encoder.residual"]
    assert grid == {**depth, "optim.learning_rate": ["0.003", "0.01", "0.03"], "encoder.residual": ["true"]}
    assert sweep["dir"].startswith("multirun/compare_classification_rnn_residual/")
    for shape in ("4x64", "2x96", "1x167"):
        for lr in (0.003, 0.01, 0.03):
            shaped = ["+experiment/budget/params1m/encoder=rnn", f"+experiment/rnn_depth={shape}", f"optim.learning_rate={lr}"]
            run = resolve(compose_config(["+experiment=compare_classification_rnn_residual", *shaped,
                                          "encoder.residual=true"]))
            depth = resolve(compose_config(["+experiment=compare_classification_rnn_depth", *shaped]))
            # rnn_depth's run (the same shape after the budget's rnn) but for the residual connections
            assert not depth.encoder_config.residual
            assert run == dataclasses.replace(depth, encoder_config=dataclasses.replace(depth.encoder_config, residual=True))
