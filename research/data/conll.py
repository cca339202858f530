"""CoNLL column files as tagged sentences: CoNLL-2003 columns, CoNLL-U, and the SRL props layout.

`data.format=tsv` with `data.task=tagging|span_tagging` reads one of three
layouts, chosen by `data.source` (the word column) and `data.target` (the
tag column), from `{split}.conll[.gz]` (`{split}.conllu[.gz]` for CoNLL-U).
Sentences end at blank lines in all three.

  columns  `source` and `target` are column indices (a negative one counts
           from the end: CoNLL-2003 NER is `source=0 target=-1`); cells are
           split on whitespace; `-DOCSTART-` lines separate documents and are
           no sentence.
  conllu   `source` and `target` are CoNLL-U column names (FORM, UPOS, XPOS,
           DEPREL, ...); ten tab-separated cells a line; `#` comment lines,
           multiword ranges (ID `3-4`) and empty nodes (ID `5.1`) are skipped,
           so the words are the syntactic ones that carry the tags.
  props    `target=props`: CoNLL-2005 semantic roles, the words column
           (`source`, e.g. 0) then the props file's columns beside it, as
           `paste -d ' ' words props` gives them: the target verbs (the lemma,
           or `-` on rows that are no predicate), then one column per
           predicate of bracketed arguments (`(A0*`, `*`, `*)`, `(V*)`).
           Each predicate becomes one instance: the sentence's words with
           that predicate marked (the tagger's indicator feature) and its
           arguments as BIO tags (`B-A0 I-A0 ... B-V ...`, O elsewhere). The
           k-th props column belongs to the k-th predicate row, whose (V*) it
           must hold. A sentence without a predicate gives no instance
           (counted and logged).

A line with another number of cells than the first line of its sentence, or
too few for the columns asked, is malformed: a DataError names file and line,
as does an empty CoNLL-U sentence (comments only), bad brackets in a props
column, and everything research/data/tagged.py refuses of a sentence.
CoNLL-2012 (OntoNotes) `*_conll` files hold the same props columns after
others; cut them to the props layout (words, lemma or `-`, props) first.
"""
from __future__ import annotations

import logging
import re
from typing import Iterator

from research.data import builders, readers, tagged, tags
from research.data.errors import DataError
from research.registry import ConfigError

log = logging.getLogger(__name__)

CONLLU = ("ID", "FORM", "LEMMA", "UPOS", "XPOS", "FEATS", "HEAD", "DEPREL", "DEPS", "MISC")
PROPS = "props"  # data.target of the SRL layout
DOCSTART = "-DOCSTART-"
# One cell of a props column: an optional opening "(LABEL", the word "*", an optional closing ")".
PROP = re.compile(r"^(?:\((?P<label>[^\s()*]+))?\*(?P<close>\))?$")
Block = list[tuple[int, str]]  # a sentence's (line number, line) pairs


def layout(source: str, target: str) -> str:
    """"columns", "conllu" or "props" for `data.source` / `data.target` (see the module docstring)."""
    source, target = str(source), str(target)
    if target == PROPS:
        if readers.column_index(source) is None:
            raise ConfigError(f"data.source: the props layout (data.target={PROPS}) reads the words from a column "
                              f"index (0 for `paste words props`), not {source!r}")
        return "props"
    if target in CONLLU or source in CONLLU:
        for key, value in (("source", source), ("target", target)):
            if value not in CONLLU:
                raise ConfigError(f"data.{key}: {value!r} is not a CoNLL-U column ({', '.join(CONLLU)})")
        return "conllu"
    for key, value in (("source", source), ("target", target)):
        if re.fullmatch(r"-?[0-9]+", value) is None:
            raise ConfigError(f"data.{key}: {value!r} is neither a column index (CoNLL-2003: source=0 target=-1), "
                              f"a CoNLL-U column ({', '.join(CONLLU)}) nor, for data.target, {PROPS!r} (SRL)")
    return "columns"


def _blocks(path: str, advance: readers.Advance) -> Iterator[Block]:
    """The non-blank lines of a file, one list per sentence (blank lines end sentences)."""
    block: Block = []
    for lineno, line in readers.lines(path, advance):
        if line.strip():
            block.append((lineno, line))
        elif block:
            yield block
            block = []
    if block:
        yield block


def _cells(block: Block, path: str, split, need: int) -> list[list[str]]:
    """Each line's cells; every line as many as the sentence's first, and at least `need`."""
    rows = [split(line) for _, line in block]
    width = len(rows[0])
    for (lineno, _), cells in zip(block, rows):
        if len(cells) != width or len(cells) < need:
            raise DataError(f"{path}:{lineno}: malformed line: {len(cells)} columns, but "
                            + (f"the sentence's first line (line {block[0][0]}) has {width}" if len(cells) != width
                               else f"at least {need} are needed (the word and tag columns asked for)"))
    return rows


def read_columns(path: str, word: int, tag: int, advance: readers.Advance = None) -> Iterator[tagged.Sentence]:
    """CoNLL-2003-style columns: (first line, source, target) of every sentence."""
    need = max(word, tag, -word - 1, -tag - 1, 1) + 1  # the columns both indices reach, and two at least
    for lines in _blocks(path, advance):
        sentences: list[Block] = [[]]
        for n, line in lines:  # -DOCSTART- separates documents, with or without a blank line after it
            if line.split()[0] == DOCSTART:
                sentences.append([])
            else:
                sentences[-1].append((n, line))
        for block in filter(None, sentences):
            rows = _cells(block, path, str.split, need)
            width = len(rows[0])
            if word % width == tag % width:
                raise DataError(f"{path}:{block[0][0]}: data.source={word} and data.target={tag} are the same column "
                                f"of these {width}-column lines")
            words, labels = [r[word] for r in rows], [r[tag] for r in rows]
            yield block[0][0], tagged.source_text(words), tagged.check_sentence(words, labels, f"{path}:{block[0][0]}")


def read_conllu(path: str, word: str, tag: str, advance: readers.Advance = None) -> Iterator[tagged.Sentence]:
    """CoNLL-U: (first line, source, target) of every sentence, syntactic words only."""
    w, t = CONLLU.index(word), CONLLU.index(tag)
    for block in _blocks(path, advance):
        lines = [(n, line) for n, line in block if not line.startswith("#")]
        if not lines:
            raise DataError(f"{path}:{block[0][0]}: empty sentence: comment lines but no word line")
        words, labels = [], []
        for lineno, line in lines:
            cells = line.split("\t")
            if len(cells) != len(CONLLU):
                raise DataError(f"{path}:{lineno}: malformed CoNLL-U line: {len(cells)} tab-separated fields, not "
                                f"{len(CONLLU)}")
            if re.fullmatch(r"[0-9]+-[0-9]+|[0-9]+\.[0-9]+", cells[0]):
                continue  # a multiword token's range, or an empty node: no tag of the tagged words
            if not cells[0].isascii() or not cells[0].isdigit():
                raise DataError(f"{path}:{lineno}: malformed CoNLL-U line: ID {cells[0]!r} is no word index, range "
                                "or empty node")
            words.append(cells[w])
            labels.append(cells[t])
        if not words:
            raise DataError(f"{path}:{lines[0][0]}: empty sentence: no syntactic word (only ranges or empty nodes)")
        yield lines[0][0], tagged.source_text(words), tagged.check_sentence(words, labels, f"{path}:{lines[0][0]}")


def bio_of_props(column: list[str], lines: list[int], path: str) -> tuple[list[str], int]:
    """One predicate's props cells -> (BIO tags, the index of its V span's first word)."""
    out, open_label, predicate = [], None, None
    for i, (cell, lineno) in enumerate(zip(column, lines)):
        m = PROP.match(cell)
        if m is None:
            raise DataError(f"{path}:{lineno}: malformed props cell {cell!r}: expected (LABEL*, *, *) or (LABEL*)")
        label = m.group("label")
        if label is not None:
            if open_label is not None:
                raise DataError(f"{path}:{lineno}: props cell {cell!r} opens {label} inside the open {open_label}")
            open_label = label
            if label == "V":
                if predicate is not None:
                    raise DataError(f"{path}:{lineno}: a second (V* in one props column")
                predicate = i
        out.append(f"B-{label}" if label is not None else f"I-{open_label}" if open_label is not None else tags.OUTSIDE)
        if m.group("close"):
            if open_label is None:
                raise DataError(f"{path}:{lineno}: props cell {cell!r} closes an argument that was never opened")
            open_label = None
    if open_label is not None:
        raise DataError(f"{path}:{lines[-1]}: the argument {open_label} is still open at the end of the sentence")
    if predicate is None:
        raise DataError(f"{path}:{lines[0]}: a props column without its predicate's (V*)")
    return out, predicate


def read_props(path: str, word: int, advance: readers.Advance = None) -> Iterator[tagged.Sentence]:
    """The SRL props layout: (first line, source with its predicate, BIO target) of every predicate."""
    bare = 0
    for block in _blocks(path, advance):
        rows = _cells(block, path, str.split, word + 2)
        lines = [n for n, _ in block]
        words = [r[word] for r in rows]
        verbs = [i for i, r in enumerate(rows) if r[word + 1] != "-"]
        columns = len(rows[0]) - word - 2
        if len(verbs) != columns:
            raise DataError(f"{path}:{lines[0]}: {len(verbs)} target verbs in column {word + 2} but {columns} props "
                            "columns after it: each predicate needs exactly one")
        if not columns:
            bare += 1
            continue
        for k, verb in enumerate(verbs):
            labels, predicate = bio_of_props([r[word + 2 + k] for r in rows], lines, path)
            if predicate != verb:
                raise DataError(f"{path}:{lines[predicate]}: props column {k + 1} has its (V*) on this line, but its "
                                f"target verb is on line {lines[verb]}")
            yield lines[0], tagged.source_text(words, predicate), tagged.check_sentence(words, labels, f"{path}:{lines[0]}")
    if bare:
        log.info("%s: %d sentence(s) without a predicate give no SRL instance", path, bare)


class TaggedColumns(tagged.TaggedBuilder, skip_registration=True):
    """`{split}.conll[.gz]` (or `.conllu`) in the layout `data.source` / `data.target` choose."""

    @staticmethod
    def files(path: str, source: str, target: str, split: str) -> list[str]:
        suffix = "conllu" if layout(source, target) == "conllu" else "conll"
        return [builders.split_file(path, f"{split}.{suffix}")]

    def _read(self, files: list[str], advance: readers.Advance) -> Iterator[tagged.Sentence]:
        c = self.builder_config
        kind = layout(c.source, c.target)
        if kind == "conllu":
            return read_conllu(files[0], c.source, c.target, advance)
        if kind == "props":
            return read_props(files[0], int(c.source), advance)
        return read_columns(files[0], int(c.source), int(c.target), advance)
