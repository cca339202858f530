"""Hostile files at the corpus readers: each gives exactly the pairs written, or a DataError at file:line.

Properties rather than examples, because the inputs that break readers (a lone
surrogate escape, a damaged gzip stream, a JSON integer of 5000 digits) are
the ones nobody writes down. The `@example`s pin such inputs down, most of
them ones that once got through as another exception type or as changed text.
"""
import gzip
import itertools
import json
import re

import pytest
import tensorflow_datasets as tfds
from hypothesis import example, given, settings
from hypothesis import strategies as st

from research.data.builders import load_splits
from research.data.readers import read_jsonl, read_moses, read_tsv, skip_empty
from research.data.errors import DataError

tfds.disable_progress_bar()

# Deterministic (derandomize) and nothing replayed from or saved to disk (database=None): CI runs what you run.
RUN = settings(max_examples=150, deadline=None, database=None, derandomize=True)

# Characters that trip line splitting, stripping and UTF-8 handling, mixed into arbitrary Unicode.
# codec="utf-8" leaves out lone surrogates, which no UTF-8 file can hold.
HOSTILE = "\x00\x01\x1b\x7f\r\t\x0b\x0c\x1c\x1e\x85\xa0\u2028\u2029\u200b\u3000\ufeff\ufffd\U0001f600\U0010ffff"


def text(forbid: str = "\n", max_size: int = 12) -> st.SearchStrategy[str]:
    """Short hostile text, or a line of 10k-40k characters; never a character in `forbid`."""
    char = st.characters(codec="utf-8", exclude_characters=forbid) | st.sampled_from(
        [c for c in HOSTILE if c not in forbid])
    return st.text(char, max_size=max_size) | st.builds(
        lambda s, n: (s * n)[:n], st.text(char, min_size=1, max_size=3), st.integers(10_000, 40_000))


def write(path, lines, *, crlf=False, bom=False):
    data = ("\ufeff" if bom else "") + "".join(line + ("\r\n" if crlf else "\n") for line in lines)
    raw = data.encode("utf-8")
    path.write_bytes(gzip.compress(raw, mtime=0) if path.name.endswith(".gz") else raw)
    return str(path)


def as_read(line: str, lineno: int, *, crlf: bool, bom: bool) -> str:
    """The text a line holds: a "\\r" just before "\\n" is a terminator, a BOM that starts a file is not text."""
    if lineno == 1 and not bom:
        line = line.removeprefix("\ufeff")
    return line if crlf else line.removesuffix("\r")


def outcome(read, *args):
    """What a reader gives: its pairs, or (DataError, its message with the i-th file's path written <file{i}>)."""
    try:
        return list(read(*args))
    except DataError as e:
        message = str(e)
        for i, path in enumerate(a for a in args if a.startswith("/")):
            message = message.replace(path, f"<file{i}>")
        return DataError, message


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("hostile")


@RUN
@given(items=st.lists(st.tuples(text(), text()) | st.sampled_from(["", " ", "\t", "\x0c", "\r"]), max_size=6),
       ascii_only=st.booleans(), crlf=st.booleans(), bom=st.booleans(), gz=st.booleans())
def test_jsonl_gives_back_exactly_the_pairs_written(tmp, items, ascii_only, crlf, bom, gz):
    lines = [json.dumps({"de": x[0], "en": x[1], "n": i}, ensure_ascii=ascii_only) if isinstance(x, tuple) else x
             for i, x in enumerate(items)]  # raw U+2028, U+0085 in a line when not ascii_only
    path = write(tmp / ("c.jsonl.gz" if gz else "c.jsonl"), lines, crlf=crlf, bom=bom)
    assert list(read_jsonl(path, "de", "en")) == [(i, *x) for i, x in enumerate(items, 1) if isinstance(x, tuple)]


def expected_jsonl(line: str):
    """The format, restated: a blank line holds nothing; else one object whose two fields are Unicode strings."""
    if not line.strip():
        return []
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    fields = [obj.get(f) for f in ("de", "en")] if isinstance(obj, dict) else [None]
    if all(isinstance(f, str) and not re.search("[\ud800-\udfff]", f) for f in fields):
        return [(2, *fields)]
    return None


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | text(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["de", "en"]) | text(),
                                                                                inner, max_size=3), max_leaves=6)
SURROGATE_ESCAPES = st.sampled_from(["\\ud800", "\\udfff", "\\ud83d\\ude00", "\\ude00\\ud83d", "\\u0000", "\\u2028"])
LINE = (text()  # anything at all
        | st.builds(lambda v, cut: json.dumps(v, ensure_ascii=False)[:cut], JSON, st.none() | st.integers(0, 40))
        | st.builds(lambda v, w: json.dumps({"de": v, "en": w}, ensure_ascii=False), JSON | text(), JSON | text())
        | st.builds(lambda a, e, b: '{"de": "%s%s%s", "en": "x"}' % (a, e, b),
                    text('\n"\\'), SURROGATE_ESCAPES, text('\n"\\')))


@RUN
@given(line=LINE)
@example(line='{"de": "\\ud800", "en": "x"}')  # json gives a str that UTF-8 (and so tfds) cannot write
@example(line='{"de": "\\ud83d\\ude00", "en": "\\u0000"}')  # a whole pair and NUL are text
@example(line='{"de": ' + "1" * 5000 + ', "en": "x"}')  # ValueError from int(), not a JSONDecodeError
@example(line="[" * 100_000)  # RecursionError
@example(line='{"de": "a\u2028b\x85c\u2029", "en": "\x1c"}')  # separators that str.splitlines() would split on
@example(line='{"de": "a", "en": "b"} {}')
def test_any_jsonl_line_is_read_exactly_or_named(tmp, line):
    path = write(tmp / "one.jsonl", ['{"de": "first", "en": "line"}', line])
    expected = expected_jsonl(line)
    got = outcome(read_jsonl, path, "de", "en")
    if expected is None:
        assert got[0] is DataError and got[1].startswith("<file0>:2: "), got
    else:
        assert got == [(1, "first", "line")] + expected


@RUN
@given(sources=st.lists(text(), max_size=5), targets=st.lists(text(), max_size=5),
       crlf=st.booleans(), bom=st.booleans(), gz=st.booleans())
@example(sources=["a\r", "\r"], targets=["b\r\r", "\ufeff"], crlf=True, bom=False, gz=False)  # only "\r\n" goes
def test_moses_gives_back_the_lines_or_names_both_files(tmp, sources, targets, crlf, bom, gz):
    source = write(tmp / ("m.de.gz" if gz else "m.de"), sources, crlf=crlf, bom=bom)
    target = write(tmp / "m.en", targets, crlf=crlf, bom=bom)
    got = outcome(read_moses, source, target)
    if len(sources) != len(targets):
        assert got == (DataError, f"<file0> has {len(sources)} lines but <file1> has {len(targets)}: line-aligned "
                                  f"files must match (line {min(len(sources), len(targets)) + 1} of "
                                  f"<file{int(len(sources) < len(targets))}> has no partner)")
    else:
        read = lambda line, n: as_read(line, n, crlf=crlf, bom=bom)
        assert got == [(n, read(s, n), read(t, n)) for n, (s, t) in enumerate(zip(sources, targets), 1)]


@RUN
@given(rows=st.lists(st.lists(text("\t\n", max_size=6), min_size=1, max_size=4), max_size=6),
       header=st.booleans(), crlf=st.booleans(), bom=st.booleans())
def test_tsv_gives_back_the_cells_or_names_the_short_line(tmp, rows, header, crlf, bom):
    lines = (["id\ten\tde"] if header else []) + ["\t".join(cells) for cells in rows]
    path = write(tmp / "t.tsv", lines, crlf=crlf, bom=bom)
    # By name or by index, the source is column 2 and the target column 1.
    got = outcome(read_tsv, path, *(("de", "en") if header else ("2", "1")))
    expected = []
    for n, line in enumerate(lines[1:] if header else lines, 2 if header else 1):
        cells = as_read(line, n, crlf=crlf, bom=bom).split("\t")
        if cells == [""]:
            continue  # a blank line
        if len(cells) < 3:
            expected = DataError, f"<file0>:{n}: missing column: the line has {len(cells)} columns, need 3"
            break
        expected.append((n, cells[2], cells[1]))
    assert got == expected


@st.composite
def damaged_gzip(draw):
    pairs = draw(st.lists(st.tuples(text(), text()), min_size=1, max_size=4))
    data = gzip.compress("".join(json.dumps({"de": s, "en": t}) + "\n" for s, t in pairs).encode(), mtime=0)
    at = draw(st.integers(0, len(data) - 1))
    return draw(st.sampled_from([
        data[:at],  # cut off
        data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:],  # one byte changed
        data + draw(st.binary(min_size=1, max_size=8)),  # trailing garbage
        draw(st.binary(max_size=64)),  # not gzip at all
    ]))


DEFLATE_ERROR = gzip.compress(b'{"de": "a", "en": "b"}\n' * 50, mtime=0)
DEFLATE_ERROR = DEFLATE_ERROR[:12] + bytes([DEFLATE_ERROR[12] ^ 0xFF]) + DEFLATE_ERROR[13:]


@RUN
@given(data=damaged_gzip())
@example(data=DEFLATE_ERROR)  # zlib.error, which is neither BadGzipFile nor EOFError
@example(data=b"\x1f\x8b")
def test_damaged_gzip_reads_as_its_content_or_is_named(tmp, data):
    (tmp / "z.jsonl.gz").write_bytes(data)
    got = outcome(read_jsonl, str(tmp / "z.jsonl.gz"), "de", "en")
    try:
        content = gzip.decompress(data)
    except Exception:  # noqa: BLE001 - the reference decoder fails: the reader must name file and line
        # (often "corrupt gzip data"; but lines decoded before the damage shows can fail as bad JSON first)
        assert got[0] is DataError and re.match(r"<file0>:\d+: ", got[1]), got
        return
    (tmp / "z.jsonl").write_bytes(content)
    assert got == outcome(read_jsonl, str(tmp / "z.jsonl"), "de", "en")


@RUN
@given(pairs=st.lists(st.tuples(st.integers(1, 9), text(), text()), max_size=6))
def test_skip_empty_keeps_exactly_the_pairs_with_two_sides(pairs):
    kept = [p for p in pairs if p[1].strip() and p[2].strip()]
    if kept:
        assert list(skip_empty(iter(pairs), "corpus.tsv")) == kept
    else:
        with pytest.raises(DataError, match="^corpus.tsv: empty corpus"):
            list(skip_empty(iter(pairs), "corpus.tsv"))


CORPUS = itertools.count()


@settings(RUN, max_examples=8)
@given(pairs=st.lists(st.tuples(text(" \n"), text(" \n")).filter(lambda p: p[0].strip() and p[1].strip()),
                      min_size=1, max_size=4))
@example(pairs=[("a\x00b\u2028c", "\U0010ffff\r\x85"), ("x" * 100_000, "\ufeff")])
def test_prepared_corpus_stores_hostile_text_exactly(tmp, pairs):
    """What the reader accepts, tfds must store and give back byte for byte (NUL, separators, long lines)."""
    corpus = tmp / f"corpus{next(CORPUS)}"
    corpus.mkdir()
    write(corpus / "train.jsonl", [json.dumps({"de": s, "en": t}) for s, t in pairs])
    split = load_splits("jsonl", str(corpus), "de", "en", ("train",), str(tmp / "tfds"))["train"]
    assert [(split[i]["source"], split[i]["target"]) for i in range(len(split))] == pairs


def test_tsv_header_after_a_byte_order_mark_and_odd_column_names(tmp):
    path = write(tmp / "h.tsv", ["de\t²\ten", "a\tb\tc"], bom=True)  # as spreadsheets export "UTF-8 CSV"
    assert list(read_tsv(path, "de", "en")) == [(2, "a", "c")]
    assert list(read_tsv(path, "de", "²")) == [(2, "a", "b")]  # "²".isdigit(), yet no column index
