"""The `data` group: every dataset composes to the values its file gave before the shared base.

The ten `conf/data/<name>.yaml` files once spelled out every key; the keys they
all shared now come from `conf/data/_shared/base.yaml` through each file's
defaults list. The values below were recorded from the composed configs before
that change (`OmegaConf.to_container(compose_config([f"data={name}"]).data)`,
unresolved), so a base or a file that drifts fails here.
"""
from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from research.config import REPO
from research.data.config import DataConfig
from research.registry import build_dataclass
from tests.conftest import compose_config

# Keys whose value was the same in all ten files.
EVERY_DATASET = {
    "tfds_dir": "~/.cache/research/tfds", "train_split": "train", "valid_split": "validation", "test_split": "test",
    "length_policy": "filter", "bucket_width": 1, "pack": False, "num_workers": 0, "max_train_examples": None,
    "generator": None, "length_bucket": 4, "eval_max_shapes": None,  # keys added after the record, with the values every file then had
}
COLUMNS = ("name", "task", "format", "dir", "tfds_name", "source", "target",
           "max_source_len", "max_target_len", "tokens_per_batch", "max_shapes")
ROWS = [
    ("cnn_dailymail", "summarization", "tfds", None, "cnn_dailymail", "article", "highlights", 512, 128, 16384, 10),
    ("ddtp_de_en", "translation", "jsonl", "${repo:}/../shared/data/ddtp_de_en", None, "de", "en", 128, 128, 4096, 14),
    ("ddtp_de_en_sample", "translation", "jsonl", "${repo:}/research/data/samples/ddtp_de_en", None, "de", "en",
     96, 96, 3072, 10),
    ("ddtp_summ_en", "summarization", "jsonl", "${repo:}/../shared/data/ddtp_summ_en", None, "document", "summary",
     256, 48, 8192, 10),
    ("ddtp_summ_en_sample", "summarization", "jsonl", "${repo:}/research/data/samples/ddtp_summ_en", None,
     "document", "summary", 256, 48, 4096, 10),
    ("gigaword", "summarization", "tfds", None, "gigaword", "document", "summary", 128, 48, 8192, 10),
    ("ted_pt_en", "translation", "tfds", None, "ted_hrlr_translate/pt_to_en", "pt", "en", 128, 128, 4096, 10),
    ("wmt14_de_en", "translation", "tfds", None, "wmt14_translate/de-en", "de", "en", 128, 128, 8192, 10),
    ("wmt_t2t_de_en", "translation", "tfds", None, "wmt_t2t_translate/de-en", "de", "en", 128, 128, 8192, 10),
    ("xsum", "summarization", "tfds", None, "xsum", "document", "summary", 512, 64, 16384, 10),
]
RECORDED = {row[0]: {**dict(zip(COLUMNS, row)), **EVERY_DATASET} for row in ROWS}
# The generated diagnostic datasets (research/data/generated.py), added after the record.
GENERATED = ("addition", "copy", "reverse", "scan", "scan_addprim_jump", "scan_length", "sort")
# The labelled corpora of the classification tasks (research/tasks/classification.py), added after the record.
CLASSIFICATION = ("ddtp_sections_en", "ddtp_sections_en_sample", "ddtp_sections_en_tags", "ddtp_sections_en_tags_sample",
                  "imdb_reviews", "glue_sst2")  # the last two: tfds catalog sentiment sets
# The tagged corpora (research/tasks/tagging.py) and the language-model texts (research/tasks/lm.py), added after it.
TAGGING = ("conll2003", "ddtp_punct_en", "ddtp_punct_en_sample")
LM = ("ddtp_summ_en_lm", "ddtp_summ_en_lm_sample")


def test_the_data_options_are_the_recorded_generated_and_task_datasets():
    """The shared base lives in a subfolder, so neither Hydra nor `research.evaluate data=NAME` offers it."""
    assert sorted(p.stem for p in (REPO / "conf" / "data").glob("*.yaml")) == sorted([*RECORDED, *GENERATED,
                                                                                       *CLASSIFICATION, *TAGGING, *LM])


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_composed_data_config_is_unchanged(name):
    composed = OmegaConf.to_container(compose_config([f"data={name}"]).data, resolve=False)
    assert composed == RECORDED[name]


@pytest.mark.parametrize("name", sorted([*RECORDED, *CLASSIFICATION, *TAGGING, *LM]))
def test_a_data_file_read_alone_gives_the_composed_config(name):
    """The keys a corpus file lacks take DataConfig's defaults, which must be the base's values."""
    alone = OmegaConf.load(REPO / "conf" / "data" / f"{name}.yaml")
    alone.pop("defaults", None)
    composed = compose_config([f"data={name}"]).data
    as_dataclass = lambda node: build_dataclass(DataConfig, OmegaConf.to_container(node, resolve=True), prefix="data")
    assert as_dataclass(alone) == as_dataclass(composed)


@pytest.mark.parametrize("name", ["ddtp_de_en", *GENERATED])
def test_data_swapped_after_training_is_the_composed_file(name):
    """`research.evaluate run_dir=... data=NAME` takes the file with its defaults list (a shared base, scan.yaml)."""
    from research.run_dir import group_config

    assert group_config("data", name) == compose_config([f"data={name}"]).data


def test_data_and_pipeline_configs_agree():
    """DataConfig checks its batching keys through PipelineConfig: one set of defaults, one message."""
    import dataclasses

    from research.data.config import DataConfig
    from research.data.pipeline import PipelineConfig
    from research.registry import ConfigError

    data, pipe = DataConfig(dir="x", source="de", target="en"), PipelineConfig()
    shared = {f.name for f in dataclasses.fields(PipelineConfig)} & {f.name for f in dataclasses.fields(DataConfig)}
    assert shared >= {"tokens_per_batch", "num_workers", "max_shapes", "bucket_width", "pack", "length_policy"}
    assert {k: getattr(data, k) for k in shared} == {k: getattr(pipe, k) for k in shared}
    for bad in ({"tokens_per_batch": 1000}, {"num_workers": -1}, {"length_policy": "drop"}):
        with pytest.raises(ConfigError) as from_data:
            DataConfig(dir="x", source="de", target="en", **bad)
        with pytest.raises(ConfigError) as from_pipeline:
            PipelineConfig(**bad)
        assert str(from_data.value) == str(from_pipeline.value)
