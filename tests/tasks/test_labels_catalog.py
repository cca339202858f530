"""Catalog classification data (conf/data/imdb_reviews.yaml, glue_sst2.yaml) read from prepared tfds data:
ClassLabel ids become names, sliced splits hold what tfds slices, unlabelled records are refused by name."""
from __future__ import annotations

import socket

import numpy as np
import pytest
import tensorflow_datasets as tfds

from research.data import corpus
from research.data.errors import DataError
from tests.helpers.classification import run_config

REVIEWS = [(f"review number {i}: {'a fine film' if i % 3 else 'a dull film'}", int(i % 3 > 0)) for i in range(20)]


class ImdbReviews(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Stands in for the catalog's imdb_reviews as `tfds build` leaves it: text and a ClassLabel."""

    VERSION = tfds.core.Version("1.0.0")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        return None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"text": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["neg", "pos"])}),
            disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(REVIEWS), "test": self._generate_examples(REVIEWS[:4])}

    def _generate_examples(self, rows):
        for i, (text, label) in enumerate(rows):
            yield i, {"text": text, "label": label}


class Glue(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Stands in for glue/sst2: a sentence and a ClassLabel, whose test split holds -1 (unlabelled)."""

    VERSION = tfds.core.Version("2.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="sst2")]

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        return None

    def _info(self):
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"sentence": tfds.features.Text(), "label": tfds.features.ClassLabel(names=["negative", "positive"]),
             "idx": tfds.features.Scalar(np.int32)}), disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(REVIEWS, False), "validation": self._generate_examples(REVIEWS[:5], False),
                "test": self._generate_examples(REVIEWS[:3], True)}

    def _generate_examples(self, rows, unlabelled):
        for i, (text, label) in enumerate(rows):
            yield i, {"sentence": text, "label": -1 if unlabelled else label, "idx": i}


def _build(builder, tmp_path):
    builder(data_dir=str(tmp_path / "tfds"), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))


def test_imdb_reviews_is_read_with_its_label_names_and_a_validation_tenth_of_train(tmp_path):
    _build(ImdbReviews, tmp_path)
    cfg = run_config("cnn", tmp_path, "data=imdb_reviews", "tokenizer.vocab_size=40")
    assert (cfg.data.task, cfg.data.train_split, cfg.data.valid_split) == ("classification", "train[:90%]", "train[90%:]")
    texts = corpus.prepare(cfg.data, cfg.tokenizer)
    assert (len(texts.train), len(texts.valid)) == (18, 2)  # 90% / 10% of 20 records, in order
    names = ["neg", "pos"]
    assert [texts.valid[i] for i in range(2)] == [{"source": REVIEWS[18 + i][0], "target": names[REVIEWS[18 + i][1]],
                                                   "line": i + 1} for i in range(2)]
    assert texts.tokenizer.labels.names == tuple(names)
    test = corpus.load(cfg.data, ("test",))["test"]
    assert [test[i]["target"] for i in range(4)] == [names[label] for _, label in REVIEWS[:4]]


def test_glue_sst2_tests_on_validation_and_refuses_the_unlabelled_test_split(tmp_path):
    _build(Glue, tmp_path)
    cfg = run_config("cnn", tmp_path, "data=glue_sst2", "tokenizer.vocab_size=40")
    assert (cfg.data.tfds_name, cfg.data.train_split, cfg.data.valid_split, cfg.data.test_split) == (
        "glue/sst2", "train[872:]", "train[:872]", "validation")
    sliced = run_config("cnn", tmp_path, "data=glue_sst2", "tokenizer.vocab_size=40", "data.train_split='train[5:]'",
                        "data.valid_split='train[:5]'")
    texts = corpus.prepare(sliced.data, sliced.tokenizer)
    assert (len(texts.train), len(texts.valid)) == (15, 5)
    assert texts.valid[0]["target"] == "negative" and texts.train[0]["source"] == REVIEWS[5][0]
    assert len(corpus.load(cfg.data, ("validation",))["validation"]) == 5
    unlabelled = corpus.load(cfg.data, ("test",))["test"]
    with pytest.raises(DataError, match=r"tfds glue/sst2 test: record 1: label id -1 is none of the 2 names"):
        unlabelled[0]


def test_a_missing_feature_and_an_unprepared_catalog_are_named(tmp_path, monkeypatch):
    _build(ImdbReviews, tmp_path)
    cfg = run_config("cnn", tmp_path, "data=imdb_reviews", "data.source=review")
    with pytest.raises(DataError, match="tfds dataset 'imdb_reviews' has no feature 'review'"):
        corpus.prepare(cfg.data, cfg.tokenizer)

    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    cfg = run_config("cnn", tmp_path / "elsewhere", "data=glue_sst2")
    with pytest.raises(DataError, match=r"tfds dataset 'glue/sst2' is not prepared .*tfds build glue/sst2"):
        corpus.prepare(cfg.data, cfg.tokenizer)
