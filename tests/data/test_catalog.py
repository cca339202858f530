"""Catalog datasets: read when prepared, else one fast DataError that says what to do."""
import json
import socket
import time

import pytest
import tensorflow_datasets as tfds

from research.data import catalog
from research.data.builders import load_splits
from research.data.errors import DataError

tfds.disable_progress_bar()


@pytest.fixture
def no_network(monkeypatch):
    """Every connection attempt is recorded and refused."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("name", sorted(catalog.CATALOG))
def test_missing_catalog_dataset_fails_fast_with_instructions(tmp_path, no_network, name):
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_splits("tfds", name, None, None, ("train", "validation"), str(tmp_path))
    assert time.perf_counter() - start < 3
    message = str(err.value)
    assert f"tfds build {name} --data_dir=DIR --file_format=array_record" in message
    assert str(tmp_path) in message and "data.tfds_dir" in message
    assert "TensorFlow" in message or "network" in message
    assert len(no_network) <= 1  # at most the connect probe, never a download


def test_fields_come_from_the_catalog_or_the_config():
    assert catalog.fields("cnn_dailymail", None, None) == ("article", "highlights")
    assert catalog.fields("ted_hrlr_translate/pt_to_en", None, None) == ("pt", "en")
    assert catalog.fields("my_dataset", "q", "a") == ("q", "a")
    with pytest.raises(DataError, match="not in the catalog"):
        catalog.fields("my_dataset", None, None)


class Xsum(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Stands in for the catalog's xsum as `tfds build` would leave it (array_record)."""

    VERSION = tfds.core.Version("1.2.0")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        """No checksums beside this module (in a package, tfds's lookup would need importlib_resources)."""
        return None

    def _info(self):
        text = tfds.features.Text()
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"document": text, "summary": text, "id": text}), disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(3), "validation": self._generate_examples(1)}

    def _generate_examples(self, n):
        for i in range(n):
            yield i, {"document": f"document {i} ü", "summary": f"summary {i}", "id": str(i)}


def test_prepared_catalog_data_is_read_without_tensorflow(tmp_path, no_network):
    Xsum(data_dir=str(tmp_path), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    splits = load_splits("tfds", "xsum", None, None, ("train", "validation"), str(tmp_path))
    assert len(splits["train"]) == 3
    assert splits["train"][2] == {"source": "document 2 ü", "target": "summary 2"}
    assert not no_network
    with pytest.raises(DataError, match=r"no split \['test'\]"):
        load_splits("tfds", "xsum", None, None, ("test",), str(tmp_path))


def test_prepared_tfrecord_data_asks_for_array_record(tmp_path):
    Xsum(data_dir=str(tmp_path), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    info_path = tmp_path / "xsum" / "1.2.0" / "dataset_info.json"
    info = json.loads(info_path.read_text())
    info["fileFormat"] = "tfrecord"
    info_path.write_text(json.dumps(info))
    with pytest.raises(DataError, match="--file_format=array_record"):
        load_splits("tfds", "xsum", None, None, ("train",), str(tmp_path))
