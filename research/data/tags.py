"""The tag vocabulary and the tokenizer of `data.task=tagging|span_tagging` (sentences: research/data/tagged.py).

The tokenizer (`TagTokenizer`) encodes each word by itself with the text
model (SentencePiece), so the pieces of word j are exactly the ones it is
given and the piece -> word map is exact (a word that encodes to no piece at
all becomes one <unk>, so every word has a first piece). Beside the pieces it
gives the batch `source_words` [B, S] (research/data/batch.py): at the first
piece of word j its number j + 1, 0 at every other piece, EOS and pads; and,
for SRL data only, `source_predicate` [B, S]: 1 at each piece of the
predicate word. The target side is the tag vocabulary: tag k is id k +
OFFSET (the four special ids keep 0..3), so `target_out` is one tag id per
word, then EOS. The vocabulary is the training split's tags, sorted, saved
in the run's tokenizer/ (tags.json) with its span scheme; a validation or
test tag outside it is an error naming the tag, its count, the split and the
first line (`Tags.check`), never mapped to another tag in silence.
"""
from __future__ import annotations

import collections
import logging
from pathlib import Path
from typing import Any, Sequence

from research.data import closed_vocab
from research.data.batch import EOS, UNK
from research.data.errors import DataError
from research.data.tagged import parse_source, tags_of

log = logging.getLogger(__name__)

OFFSET = 4  # tag k is id k + OFFSET: PAD, UNK, BOS and EOS keep 0..3
FILE = "tags.json"  # in a run's tokenizer/ folder, beside the text model
OUTSIDE = "O"  # the tag of words outside every span (span schemes; ddtp_punct_en's "no mark")


# ---------------------------------------------------------------- the tag vocabulary


def span_scheme(names: Sequence[str]) -> str | None:
    """"bio" or "bioes" when every tag is O or B-/I- (BIO, also IOB1) or also E-/S- (BIOES) and a type;
    None for any other tag set (a plain one: punctuation marks, parts of speech)."""
    prefixes = set()
    for name in names:
        if name == OUTSIDE:
            continue
        prefix, dash, kind = name.partition("-")
        if not dash or prefix not in ("B", "I", "E", "S") or not kind:
            return None
        prefixes.add(prefix)
    return "bioes" if prefixes & {"E", "S"} else "bio"


class Tags:
    """The tag vocabulary: names sorted, tag k <-> id k + OFFSET; its span scheme ("plain", "bio", "bioes");
    whether the sentences carry a predicate (SRL); and the fallback, the tag given to a word the model never
    sees (its first piece past the model's learned positions): O when it is a tag, else the most frequent."""

    def __init__(self, names: Sequence[str], scheme: str, predicate: bool, fallback: str):
        self.names, self.scheme, self.predicate, self.fallback = tuple(names), scheme, bool(predicate), fallback
        self.index = {n: k for k, n in enumerate(self.names)}

    @classmethod
    def from_examples(cls, rows: Sequence[tuple[str, str]], spans: bool) -> Tags:
        """The vocabulary of training (source, target) rows; `spans`: the task scores spans, so the tags must
        be a span scheme (a DataError names the first tags that are not)."""
        counts = collections.Counter(tag for _, target in rows for tag in tags_of(target))
        if not counts:
            raise DataError("the training split has no tagged word at all: nothing to train on")
        names = sorted(counts)
        scheme = span_scheme(names)
        if spans and scheme is None:
            bad = [n for n in names if span_scheme([n]) is None][:5]
            raise DataError(f"task=span_tagging scores the spans of BIO or BIOES tags (O, B-<type>, I-<type>, E-, S-), "
                            f"but the training split has {', '.join(map(repr, bad))}; score tags one by one with "
                            "data.task=tagging")
        if not spans and scheme is not None and any(n != OUTSIDE for n in names):
            log.warning("the training tags (%s) look like a span scheme (%s); data.task=tagging scores each tag by "
                        "itself, data.task=span_tagging scores their spans", ", ".join(names[:6]), scheme)
        predicates = {parse_source(s)[1] is not None for s, _ in rows}
        if len(predicates) > 1:
            raise DataError("the training split mixes sentences with a predicate (SRL) and without one")
        fallback = OUTSIDE if OUTSIDE in counts else counts.most_common(1)[0][0]
        return cls(names, scheme if spans else "plain", predicates.pop(), fallback)

    def __len__(self) -> int:
        return len(self.names)

    def encode(self, target: str) -> list[int]:
        """An example's target -> one id (+ OFFSET) per word; what the batch's target_out holds before EOS."""
        try:
            return [self.index[tag] + OFFSET for tag in tags_of(target)]
        except KeyError as e:  # `check` names them all first; this guards any other path
            raise DataError(f"tag {e.args[0]!r} is not among the {len(self)} tags of the training split") from None

    def decode(self, ids) -> str:
        """Tag ids (+ OFFSET, up to EOS) -> the tags, space-joined."""
        out = []
        for i in ids:
            if int(i) == EOS:
                break
            if int(i) >= OFFSET:
                out.append(self.names[int(i) - OFFSET])
        return " ".join(out)

    def check(self, examples: Any, split: str) -> None:
        """Raises a DataError naming every tag of `examples` outside the vocabulary, its count, the split and
        the first line it is on; and one for a predicate where training had none, or the reverse."""
        unseen: collections.Counter = collections.Counter()
        first: dict[str, int] = {}
        rows = examples.__getitems__(range(len(examples))) if hasattr(examples, "__getitems__") else list(examples)
        where = getattr(examples, "where", "")
        unit = getattr(examples, "unit", "line")
        for row in rows:
            if (parse_source(row["source"])[1] is not None) != self.predicate:
                raise DataError(f"{split} split ({where}), {unit} {row['line']}: "
                                + ("no predicate, but the training sentences have one (SRL)" if self.predicate else
                                   "a predicate (SRL), but the training sentences have none"))
            for tag in tags_of(row["target"]):
                if tag not in self.index:
                    unseen[tag] += 1
                    first.setdefault(tag, row["line"])
        if unseen:
            listed = ", ".join(f"{t!r} ({n}x, first at {unit} {first[t]})" for t, n in unseen.most_common(20))
            more = f" and {len(unseen) - 20} more" if len(unseen) > 20 else ""
            raise DataError(f"{split} split ({where}): {sum(unseen.values())} tag(s) that the training split never "
                            f"had, so the tagger has no output for them: {listed}{more}. Add sentences with them to the "
                            "training split (or train on more of it: data.max_train_examples) or drop them from this split")

    def to_json(self) -> dict:
        return {"tags": list(self.names), "scheme": self.scheme, "predicate": self.predicate, "fallback": self.fallback}

    def save(self, folder: Path) -> Path:
        return closed_vocab.save_json(folder, FILE, self.to_json())

    @classmethod
    def read(cls, folder: Path) -> Tags:
        saved = closed_vocab.read_json(folder, FILE, "no tag vocabulary (a tagging run saves it when it starts)")
        return cls(saved["tags"], saved["scheme"], saved["predicate"], saved["fallback"])


# ---------------------------------------------------------------- the run's tokenizer


class TagTokenizer(closed_vocab.ClosedVocabTokenizer):
    """A tagging run's tokenizer: the text model's pieces word by word, the tag vocabulary as the target side.

    It answers what research/data/pipeline.py and the run files ask of a
    `tokenizer.Tokenizer` (encode_source, encode_target, the vocabulary sizes,
    a fingerprint covering the tags too), and `source_features`, the extra
    batch keys (research/data/corpus.py passes them to the pipeline).
    """

    VOCAB = Tags

    @property
    def tags(self) -> Tags:
        return self.vocab

    def word_pieces(self, words: Sequence[str]) -> list[list[int]]:
        """Each word's pieces, encoded by itself; [<unk>] for a word that encodes to none."""
        return [self.text.encode_source(w) or [UNK] for w in words]

    def encode_source(self, source: str) -> list[int]:
        return [p for pieces in self.word_pieces(parse_source(source)[0]) for p in pieces]

    def source_features(self, source: str) -> dict[str, list[int]]:
        """{"source_words": word number j + 1 at word j's first piece, else 0} and, with predicates,
        {"source_predicate": 1 at the predicate word's pieces, else 0}; one value per piece."""
        words, predicate = parse_source(source)
        starts, marks = [], []
        for j, pieces in enumerate(self.word_pieces(words)):
            starts += [j + 1] + [0] * (len(pieces) - 1)
            marks += [int(j == predicate)] * len(pieces)
        return {"source_words": starts, "source_predicate": marks} if self.tags.predicate else {"source_words": starts}
