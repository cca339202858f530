"""Local corpus builders: each format round-trips, is prepared once, and bad input says where."""
import gzip
import json
import logging
import os

import pytest
import tensorflow_datasets as tfds

from research.data import builders
from research.data.builders import load_splits
from research.data.errors import DataError
from tests.helpers.corpus import shared_corpus

tfds.disable_progress_bar()

PAIRS = [("Guten Morgen", "Good morning"), ("ein \"Zitat\"\tnicht", "a quote"), ("Straße ä", "street"),
         ("zwei  Leerzeichen", "two spaces")]


def write(path, lines, mode="w"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(lines if isinstance(lines, bytes) else "".join(line + "\n" for line in lines).encode())


def jsonl(pairs):
    return [json.dumps({"de": s, "en": t, "id": i}, ensure_ascii=False) for i, (s, t) in enumerate(pairs)]


def read_all(source):
    return [(source[i]["source"], source[i]["target"]) for i in range(len(source))]


def test_jsonl_gz_round_trip_in_order(tmp_path):
    write(tmp_path / "c/train.jsonl.gz", jsonl(PAIRS))
    write(tmp_path / "c/validation.jsonl", jsonl(PAIRS[:2]))
    splits = load_splits("jsonl", str(tmp_path / "c"), "de", "en", ("train", "validation"), str(tmp_path / "tfds"))
    assert read_all(splits["train"]) == PAIRS
    assert read_all(splits["validation"]) == PAIRS[:2]
    assert splits["train"].__getitems__([2, 0]) == [{"source": s, "target": t} for s, t in (PAIRS[2], PAIRS[0])]


def test_tsv_by_header_name_and_by_index(tmp_path):
    rows = [f"{i}\t{t}\t{s}" for i, (s, t) in enumerate(PAIRS) if "\t" not in s]
    write(tmp_path / "h/train.tsv", ["id\ten\tde"] + rows)
    write(tmp_path / "n/train.tsv", rows)
    expected = [p for p in PAIRS if "\t" not in p[0]]
    by_name = load_splits("tsv", str(tmp_path / "h"), "de", "en", ("train",), str(tmp_path / "tfds"))
    by_index = load_splits("tsv", str(tmp_path / "n"), 2, 1, ("train",), str(tmp_path / "tfds"))
    assert read_all(by_name["train"]) == expected
    assert read_all(by_index["train"]) == expected


def test_moses_round_trip(tmp_path):
    write(tmp_path / "m/test.de", [s.replace("\t", " ") for s, _ in PAIRS])
    write(tmp_path / "m/test.en.gz", [t for _, t in PAIRS])
    splits = load_splits("moses", str(tmp_path / "m"), "de", "en", ("test",), str(tmp_path / "tfds"))
    assert read_all(splits["test"]) == [(s.replace("\t", " "), t) for s, t in PAIRS]


def test_prepared_once_and_again_when_the_corpus_changes(tmp_path, monkeypatch):
    corpus, tfds_dir = tmp_path / "c", str(tmp_path / "tfds")
    write(corpus / "train.jsonl", jsonl(PAIRS))
    first = builders.prepare("jsonl", str(corpus), "de", "en", ("train",), tfds_dir)

    def must_not_read(self, files):
        raise AssertionError("prepared data should have been reused")

    with monkeypatch.context() as m:
        m.setattr(builders.JsonlCorpus, "_read", must_not_read)
        again = builders.prepare("jsonl", str(corpus), "de", "en", ("train",), tfds_dir)
    assert again.data_dir == first.data_dir
    write(corpus / "train.jsonl", jsonl(PAIRS[:3]))
    os.utime(corpus / "train.jsonl", ns=(1, 1))  # a changed corpus, even within one mtime tick
    changed = load_splits("jsonl", str(corpus), "de", "en", ("train",), tfds_dir)
    assert len(changed["train"]) == 3


def test_empty_sides_are_counted_skipped_and_logged(tmp_path, caplog):
    pairs = PAIRS[:2] + [("", "nothing"), ("nichts", "   ")]
    write(tmp_path / "c/train.jsonl", jsonl(pairs) + [""])  # a blank last line is no example
    with caplog.at_level(logging.WARNING, logger="research.data.readers"):
        splits = load_splits("jsonl", str(tmp_path / "c"), "de", "en", ("train",), str(tmp_path / "tfds"))
    assert read_all(splits["train"]) == PAIRS[:2]
    assert "skipped 2 of 4 examples with an empty source or target" in caplog.text


BAD = {
    "invalid UTF-8": ("jsonl", {"train.jsonl": b'{"de": "a", "en": "b"}\n{"de": "\xff", "en": "b"}\n'},
                      "train.jsonl:2: invalid UTF-8"),
    "missing field": ("jsonl", {"train.jsonl": b'{"de": "a", "en": "b"}\n{"de": "a"}\n'},
                      "train.jsonl:2: missing field 'en'"),
    "not a string": ("jsonl", {"train.jsonl": b'{"de": "a", "en": 3}\n'}, "train.jsonl:1: field 'en' is int"),
    "missing column name": ("tsv", {"train.tsv": b"de\tfr\na\tb\n"}, "train.tsv:1: missing column 'en'"),
    "missing column cell": ("tsv", {"train.tsv": b"de\ten\na\tb\nc\n"}, "train.tsv:3: missing column"),
    "line counts differ": ("moses", {"train.de": b"a\nb\nc\n", "train.en": b"x\ny\n"},
                           "train.de has 3 lines but"),
    "invalid UTF-8, Moses": ("moses", {"train.de": b"a\nb\n", "train.en": b"x\n\xc3(\n"}, "train.en:2: invalid UTF-8"),
    "empty corpus": ("jsonl", {"train.jsonl": b""}, "train.jsonl: empty corpus"),
    "only empty sides": ("moses", {"train.de": b"\n \n", "train.en": b"x\ny\n"}, "empty corpus"),
    "missing split file": ("jsonl", {"validation.jsonl": b'{"de": "a", "en": "b"}\n'}, "no file train.jsonl"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_and_line(tmp_path, case):
    fmt, files, message = BAD[case]
    for name, content in files.items():
        write(tmp_path / "c" / name, content)
    with pytest.raises(DataError) as err:
        load_splits(fmt, str(tmp_path / "c"), "de", "en", ("train",), str(tmp_path / "tfds"))
    assert message in str(err.value)
    assert str(tmp_path / "c") in str(err.value)
    assert not list((tmp_path / "tfds").glob("*/*/1.0.0"))  # nothing half-prepared is left to be reused


def test_ddtp_validation_split(tmp_path):
    ddtp = shared_corpus("ddtp_de_en")
    splits = load_splits("jsonl", str(ddtp), "de", "en", ("validation",), str(tmp_path / "tfds"))
    with gzip.open(ddtp / "validation.jsonl.gz", "rt", encoding="utf-8") as f:
        first, last = json.loads(next(f)), [json.loads(line) for line in f][-1]
    assert len(splits["validation"]) == 2102
    assert splits["validation"][0] == {"source": first["de"], "target": first["en"]}
    assert splits["validation"][2101] == {"source": last["de"], "target": last["en"]}


def _prepare_and_count(args):
    corpus, tfds_dir = args
    splits = load_splits("jsonl", corpus, "de", "en", ("train",), tfds_dir)
    return read_all(splits["train"])[-1], len(splits["train"])


def test_jobs_preparing_one_corpus_at_once_all_succeed(tmp_path):
    """Sweep jobs starting together on a fresh cache: without the lock all but the
    first failed ("Destination ... already exists"), as a fresh-clone test run showed."""
    import multiprocessing

    many = [(f"Satz {i}", f"sentence {i}") for i in range(3000)]
    write(tmp_path / "c/train.jsonl", jsonl(many))
    args = (str(tmp_path / "c"), str(tmp_path / "tfds"))
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        results = pool.map(_prepare_and_count, [args] * 3)
    assert results == [(many[-1], 3000)] * 3
