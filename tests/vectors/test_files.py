"""Vector files: GloVe and word2vec text (gzipped or not) read to the same matrix; bad rows named by file and line."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from research.data.errors import DataError
from research.vectors import files

UNITS = ["the", "▁cat", "dog"]
MATRIX = np.array([[0.5, -1.0, 2.0], [1e-3, 0.0, -0.25], [3.0, 4.0, 5.5]], np.float32)


def test_both_formats_and_gzip_read_to_the_same_matrix(tmp_path):
    glove = tmp_path / "v.txt"
    glove.write_text("the 0.5 -1 2\n▁cat 0.001 0 -0.25\ndog 3 4 5.5\n", encoding="utf-8")
    w2v = tmp_path / "v.w2v.txt.gz"
    with gzip.open(w2v, "wt", encoding="utf-8") as f:
        f.write("3 3\nthe 0.5 -1 2 \n▁cat 0.001 0 -0.25 \ndog 3 4 5.5 \n")  # word2vec writers end rows with a space
    a, b = files.read(glove), files.read(w2v)
    assert (a.format, b.format) == ("glove", "word2vec")
    assert a.units == b.units == UNITS and a.dim == 3
    np.testing.assert_array_equal(a.matrix, MATRIX)
    np.testing.assert_array_equal(b.matrix, MATRIX)


@pytest.mark.parametrize("name", ["out.txt", "out.txt.gz"])
@pytest.mark.parametrize("header", [False, True])
def test_write_reads_back(tmp_path, name, header):
    files.write(tmp_path / name, UNITS, MATRIX, header=header)
    back = files.read(tmp_path / name)
    assert back.units == UNITS and back.format == ("word2vec" if header else "glove")
    np.testing.assert_allclose(back.matrix, MATRIX, rtol=1e-6)


@pytest.mark.parametrize("text, message", [
    ("a 1 2\nb 1 2 3\n", r"v.txt:2: 'b' has 3 values, the first row says 2"),
    ("2 3\na 1 2 3\nb 1 2\n", r"v.txt:3: 'b' has 2 values, the header says 3"),
    ("a 1 2\nb 1 x\n", r"v.txt:2: 'b': 'x' is not a number"),
    ("a 1 2\nb nan 2\n", r"v.txt:2: 'b': a value is not finite"),
    ("a 1 2\nb 1 2\na 3 4\n", r"v.txt:3: 'a' is given twice \(first at line 1\)"),
    ("3 2\na 1 2\nb 1 2\n", r"v.txt:1: the header says 3 rows of 2, the file has 2 rows"),
    ("", r"v.txt: an empty vectors file \(no rows\)"),
    ("5 2\n", r"v.txt: an empty vectors file \(no rows after its header\)"),
    ("a 1 2\n\nb 1 2\n", r"v.txt:2: an empty line"),
    ("a\n", r"v.txt:1: 'a' has no vector"),
])
def test_bad_files_name_the_line(tmp_path, text, message):
    (tmp_path / "v.txt").write_text(text)
    with pytest.raises(DataError, match=message):
        files.read(tmp_path / "v.txt")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="no such vectors file"):
        files.read(tmp_path / "absent.txt")
