"""Tagged-sentence readers (research/data/tagged.py, research/data/conll.py) on crafted files, and the errors bad
input gets: each names its file and line."""
from __future__ import annotations

import json
import socket

import pytest
import tensorflow_datasets as tfds

from research.data import conll, corpus, tagged, tags
from research.data.errors import DataError
from research.registry import ConfigError
from tests.helpers.tagging import crafted_config, run_config, write_jsonl, write_text

WORDS = ["Debian", "ships", "tools", "libraries", "and", "documentation"]


def _rows(n: int = 6, tag_sets=(("O", "O", "COMMA", "O", "O", "PERIOD"),)) -> list[dict]:
    return [{"tokens": WORDS, "tags": list(tag_sets[i % len(tag_sets)])} for i in range(n)]


def _jsonl(tmp_path, train, validation, **kw):
    folder = tmp_path / "corpus"
    for split, rows in (("train", train), ("validation", validation), ("test", validation)):
        write_jsonl(folder, split, rows)
    return crafted_config(tmp_path, folder, **kw)


def _prepare(cfg):
    return corpus.prepare(cfg.data, cfg.tokenizer)


# ---------------------------------------------------------------- JSONL


def test_jsonl_sentences_become_examples_with_their_lines(tmp_path):
    rows = _rows(4, (("O", "O", "COMMA", "O", "O", "PERIOD"), ("O",) * 5 + ("COLON",)))
    texts = _prepare(_jsonl(tmp_path, ["", *rows], rows[:2]))  # a blank first line holds no sentence
    assert len(texts.train) == 4
    assert texts.train[1] == {"source": json.dumps(WORDS), "target": "O O O O O COLON", "line": 3}
    vocab = texts.tokenizer.tags
    assert vocab.names == ("COLON", "COMMA", "O", "PERIOD") and vocab.scheme == "plain" and not vocab.predicate
    assert texts.tokenizer.encode_target("O COMMA") == [tags.OFFSET + 2, tags.OFFSET + 1]
    assert texts.tokenizer.decode_target([tags.OFFSET + 3, tags.OFFSET, 3, tags.OFFSET]) == "PERIOD COLON"  # to EOS


@pytest.mark.parametrize("row,message", [
    ({"tokens": WORDS, "tags": ["O"] * 5}, r"train\.jsonl\.gz:2: 6 words but 5 tags"),
    ({"tokens": [], "tags": []}, r"train\.jsonl\.gz:2: empty sentence"),
    ({"tokens": WORDS[:2], "tags": ["O", "A B"]}, r"train\.jsonl\.gz:2: tag 2 is \"A B\": a tag must be a non-empty"),
    ({"tokens": ["a", " "], "tags": ["O", "O"]}, r"train\.jsonl\.gz:2: word 2 is \" \", not a non-empty string"),
    ({"tokens": "a b", "tags": ["O", "O"]}, r"train\.jsonl\.gz:2: field 'tokens' is str, not a list"),
    ('{"tokens": ["a"], ', r"train\.jsonl\.gz:2: invalid JSON"),
])
def test_bad_jsonl_sentences_are_errors_naming_file_and_line(tmp_path, row, message):
    with pytest.raises(DataError, match=message):
        _prepare(_jsonl(tmp_path, [_rows(1)[0], row], _rows(1)))


def test_an_unseen_validation_tag_is_an_error_naming_it_its_count_and_line(tmp_path):
    validation = _rows(1) + [{"tokens": WORDS, "tags": ["O", "QUESTION", "O", "O", "EXCLAMATION", "QUESTION"]}]
    with pytest.raises(DataError) as e:
        _prepare(_jsonl(tmp_path, _rows(), validation))
    msg = str(e.value)
    assert msg.startswith("validation split (") and "validation.jsonl.gz" in msg
    assert "3 tag(s) that the training split never had" in msg
    assert "'QUESTION' (2x, first at line 2)" in msg and "'EXCLAMATION' (1x, first at line 2)" in msg
    assert "'COMMA'" not in msg


def test_span_tagging_refuses_tags_that_are_no_span_scheme(tmp_path):
    with pytest.raises(DataError, match=r"task=span_tagging scores the spans .* 'COMMA', 'PERIOD'; .*data.task=tagging"):
        _prepare(_jsonl(tmp_path, _rows(), _rows(1), task="span_tagging"))


def test_span_schemes_are_detected_from_the_tags():
    assert tags.span_scheme(["O", "B-PER", "I-PER", "B-AM-TMP"]) == "bio"
    assert tags.span_scheme(["O", "I-LOC"]) == "bio"  # IOB1 (CoNLL-2003's original files) reads as BIO
    assert tags.span_scheme(["O", "B-X", "E-X", "S-Y", "I-X"]) == "bioes"
    assert tags.span_scheme(["O", "COMMA"]) is None and tags.span_scheme(["B-"]) is None and tags.span_scheme(["X-A"]) is None


# ---------------------------------------------------------------- CoNLL-2003 columns

CONLL03 = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O


Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O
BRUSSELS NNP B-NP B-LOC
"""


def test_conll2003_columns_docstart_and_blank_lines(tmp_path):
    path = write_text(tmp_path, "train.conll", CONLL03)
    got = list(conll.read_columns(str(path), 0, -1))
    assert [(line, json.loads(s), t) for line, s, t in got] == [
        (3, ["EU", "rejects", "German", "call"], "B-ORG O B-MISC O"),
        (9, ["Peter", "Blackburn"], "B-PER I-PER"),
        (12, ["BRUSSELS"], "B-LOC"),  # -DOCSTART- without a blank line after it still separates
    ]
    chunks = list(conll.read_columns(str(path), 0, 2))
    assert chunks[0][2] == "B-NP B-VP B-NP I-NP"


def test_conll_columns_through_a_run_config(tmp_path):
    folder = tmp_path / "corpus"
    for split in ("train", "validation", "test"):
        write_text(folder, f"{split}.conll", CONLL03)
    cfg = crafted_config(tmp_path, folder, task="span_tagging", fmt="tsv", source="0", target="-1")
    texts = _prepare(cfg)
    assert len(texts.train) == 3 and texts.train[1]["target"] == "B-PER I-PER" and texts.train[1]["line"] == 9
    assert texts.tokenizer.tags.scheme == "bio" and "B-ORG" in texts.tokenizer.tags.names


@pytest.mark.parametrize("text,message", [
    ("EU NNP B-NP B-ORG\nrejects VBZ O\n", r"train\.conll:2: malformed line: 3 columns, but the sentence's first "
                                          r"line \(line 1\) has 4"),
    ("EU\nrejects\n", r"train\.conll:1: malformed line: 1 columns, but at least 2 are needed"),
])
def test_malformed_conll_lines_name_file_and_line(tmp_path, text, message):
    path = write_text(tmp_path, "train.conll", text)
    with pytest.raises(DataError, match=message):
        list(conll.read_columns(str(path), 0, -1))


def test_layouts_are_chosen_by_the_columns_and_bad_keys_named():
    assert conll.layout("0", "-1") == "columns" and conll.layout("FORM", "UPOS") == "conllu"
    assert conll.layout("0", "props") == "props"
    with pytest.raises(ConfigError, match=r"data.target: 'ner' is neither a column index \(CoNLL-2003: source=0 "):
        conll.layout("0", "ner")
    with pytest.raises(ConfigError, match="data.source: 'words' is not a CoNLL-U column"):
        conll.layout("words", "UPOS")


# ---------------------------------------------------------------- CoNLL-U

CONLLU = "\n".join([
    "# sent_id = 1",
    "# text = Vámonos al mar.",
    "1-2\tVámonos\t_\t_\t_\t_\t_\t_\t_\t_",
    "1\tVamos\tir\tVERB\t_\t_\t0\troot\t_\t_",
    "2\tnos\tnosotros\tPRON\t_\t_\t1\tobj\t_\t_",
    "3-4\tal\t_\t_\t_\t_\t_\t_\t_\t_",
    "3\ta\ta\tADP\t_\t_\t5\tcase\t_\t_",
    "4\tel\tel\tDET\t_\t_\t5\tdet\t_\t_",
    "5\tmar\tmar\tNOUN\t_\t_\t1\tobl\t_\t_",
    "5.1\tva\tir\tVERB\t_\t_\t_\t_\t1:conj\t_",
    "6\t.\t.\tPUNCT\t_\t_\t1\tpunct\t_\t_",
    "",
    "1\tSí\tsí\tINTJ\t_\t_\t0\troot\t_\t_",
    "",
])


def test_conllu_keeps_syntactic_words_and_the_chosen_column(tmp_path):
    path = write_text(tmp_path, "train.conllu", CONLLU)
    got = list(conll.read_conllu(str(path), "FORM", "UPOS"))
    assert [(line, json.loads(s), t) for line, s, t in got] == [
        # From its first line after the comments (a range); neither the range nor the empty node is a word.
        (3, ["Vamos", "nos", "a", "el", "mar", "."], "VERB PRON ADP DET NOUN PUNCT"),
        (13, ["Sí"], "INTJ"),
    ]
    assert list(conll.read_conllu(str(path), "FORM", "DEPREL"))[0][2] == "root obj case det obl punct"


@pytest.mark.parametrize("text,message", [
    ("1\tVamos\tir\tVERB\t_\t_\t0\troot\t_\n", r"train\.conllu:1: malformed CoNLL-U line: 9 tab-separated fields"),
    ("# sent_id = 1\n# text = nothing\n\n1\ta\ta\tX\t_\t_\t0\troot\t_\t_\n", r"train\.conllu:1: empty sentence"),
    ("x\ta\ta\tX\t_\t_\t0\troot\t_\t_\n", r"train\.conllu:1: malformed CoNLL-U line: ID 'x'"),
])
def test_bad_conllu_is_an_error_naming_file_and_line(tmp_path, text, message):
    path = write_text(tmp_path, "train.conllu", text)
    with pytest.raises(DataError, match=message):
        list(conll.read_conllu(str(path), "FORM", "UPOS"))


# ---------------------------------------------------------------- SRL props (CoNLL-2005)

PROPS = """The     -     (A0*   (A0*
cat     -     *)     *)
sat     sit   (V*)   *
and     -     *      *
purred  purr  *      (V*)
loudly  -     *      (AM-MNR*)
.       -     *      *

Rain    -
.       -

It      -     (A1*)
rained  rain  (V*)
"""


def test_srl_props_become_one_instance_per_predicate_with_bio_spans(tmp_path):
    path = write_text(tmp_path, "train.conll", PROPS)
    got = [(line, tagged.parse_source(s), t) for line, s, t in conll.read_props(str(path), 0)]
    words = ["The", "cat", "sat", "and", "purred", "loudly", "."]
    assert got == [
        (1, (words, 2), "B-A0 I-A0 B-V O O O O"),
        (1, (words, 4), "B-A0 I-A0 O O B-V B-AM-MNR O"),
        (12, (["It", "rained"], 1), "B-A1 B-V"),  # the sentence without a predicate gives no instance
    ]


@pytest.mark.parametrize("text,message", [
    ("The - (A0*\ncat sit (V*)\n", r"train\.conll:2: props cell '\(V\*\)' opens V inside the open A0"),
    ("The - (A0*\ncat sit (V*\n", r"train\.conll:2: props cell '\(V\*' opens V inside the open A0"),
    ("The - *)\ncat sit (V*)\n", r"train\.conll:1: props cell '\*\)' closes an argument that was never opened"),
    ("The - (A0*\ncat sit *\nsat - (V*)\n", r"train\.conll:3: props cell '\(V\*\)' opens V inside"),
    ("The sit *\ncat - (V*)\n", r"train\.conll:2: props column 1 has its \(V\*\) on this line, but its target verb "
                                r"is on line 1"),
    ("The sit (V*)\ncat eat *\n", r"train\.conll:1: 2 target verbs in column 2 but 1 props columns"),
    ("The sit (V*) *\ncat -\n", r"train\.conll:2: malformed line: 2 columns, but the sentence's first line"),
    ("The sit [V]\n", r"train\.conll:1: malformed props cell '\[V\]'"),
    ("The - (A1*\ncat sit (V*)\n", r"train\.conll:2: props cell .* opens V inside the open A1"),
    ("The - (A1*)\ncat - *\nsat sit *\n", r"train\.conll:1: a props column without its predicate"),
])
def test_bad_props_are_errors_naming_file_and_line(tmp_path, text, message):
    path = write_text(tmp_path, "train.conll", text)
    with pytest.raises(DataError, match=message):
        list(conll.read_props(str(path), 0))


def test_an_argument_left_open_names_the_last_line(tmp_path):
    path = write_text(tmp_path, "train.conll", "The sit (V*)\ncat - (A1*\n")
    with pytest.raises(DataError, match=r"train\.conll:2: the argument A1 is still open at the end of the sentence"):
        list(conll.read_props(str(path), 0))


def test_a_validation_split_without_predicates_is_refused_for_an_srl_run(tmp_path):
    folder = tmp_path / "corpus"
    write_text(folder, "train.conll", PROPS)
    write_text(folder, "validation.conll", "It rain (V*)\n")
    write_text(folder, "test.conll", "It rain (V*)\n")
    cfg = crafted_config(tmp_path, folder, task="span_tagging", fmt="tsv", source="0", target="props")
    texts = _prepare(cfg)
    assert texts.tokenizer.tags.predicate and texts.tokenizer.tags.scheme == "bio"
    plain = {"source": tagged.source_text(["It"]), "target": "B-V", "line": 7}
    with pytest.raises(DataError, match=r"test split \(x\), line 7: no predicate, but the training sentences have one"):
        texts.tokenizer.tags.check(_Listed([plain], "x"), "test")


class _Listed(list):
    """A list of examples with the `where` a split's reader gives."""

    def __init__(self, rows, where):
        super().__init__(rows)
        self.where = where


# ---------------------------------------------------------------- the conll2003 catalog dataset


def test_conll2003_offline_stops_at_once_with_the_catalog_message(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket, "create_connection", refuse)
    cfg = run_config("cnn", tmp_path, "data=conll2003")
    assert (cfg.data.task, cfg.data.tfds_name, cfg.data.valid_split) == ("span_tagging", "conll2003", "dev")
    with pytest.raises(DataError, match=r"tfds dataset 'conll2003' is not prepared in data.tfds_dir=.*"
                                        r"tfds build conll2003 --data_dir=DIR --file_format=array_record"):
        _prepare(cfg)


NER = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC")  # tfds conll2003's order


class Conll2003(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Stands in for the catalog's conll2003 as `tfds build` leaves it: word sequences and ClassLabel tags."""

    VERSION = tfds.core.Version("1.0.0")

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> None:
        return None

    def _info(self):
        labels = lambda names: tfds.features.Sequence(tfds.features.ClassLabel(names=names))
        return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict(
            {"tokens": tfds.features.Sequence(tfds.features.Text()), "pos": labels(["NN", "VB"]), "ner": labels(NER)}),
            disable_shuffling=True)

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples() for split in ("train", "dev", "test")}

    def _generate_examples(self):
        yield 0, {"tokens": ["Peter", "Blackburn", "visits", "Brüssel"], "pos": [0, 0, 1, 0], "ner": [1, 2, 0, 5]}
        yield 1, {"tokens": ["EU"], "pos": [0], "ner": [3]}


def test_prepared_conll2003_is_read_with_its_tag_names(tmp_path):
    Conll2003(data_dir=str(tmp_path / "tfds"), file_format="array_record").download_and_prepare(
        download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    cfg = run_config("cnn", tmp_path, "data=conll2003", "tokenizer.vocab_size=30")
    texts = _prepare(cfg)
    assert texts.valid[0] == {"source": json.dumps(["Peter", "Blackburn", "visits", "Brüssel"], ensure_ascii=False),
                              "target": "B-PER I-PER O B-LOC", "line": 1}
    assert texts.tokenizer.tags.names == ("B-LOC", "B-ORG", "B-PER", "I-PER", "O")
    with pytest.raises(DataError, match="tfds dataset 'conll2003' has no feature 'chunk'"):
        tagged.load_catalog("conll2003", "tokens", "chunk", ("train",), str(tmp_path / "tfds"))
