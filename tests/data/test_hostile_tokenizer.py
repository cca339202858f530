"""Hostile text at the tokenizer: ids stay in the vocabulary and decoding undoes encoding, for any Unicode.

"Undoes" up to SentencePiece's own normaliser (nmt_nfkc: NFKC, control and
zero-width characters dropped, whitespace runs made one space, the ends
stripped): that is the text the model can see, so it is what must come back.
Byte fallback is what makes this hold for characters the training data never had.
"""
import gzip
import json
import re
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from research.data.batch import BOS, EOS, PAD, UNK
from research.data.errors import DataError
from research.data.tokenizer import TokenizerConfig, load_or_train

# Deterministic (derandomize) and nothing replayed from or saved to disk (database=None): CI runs what you run.
RUN = settings(max_examples=150, deadline=None, database=None, derandomize=True)

SAMPLE = Path(__file__).parents[2] / "research/data/samples/ddtp_de_en"
VOCAB = 600  # 4 special + 256 byte pieces + 340 learnt: small, and quick to train

# Controls, separators, zero-widths, U+2581 (SentencePiece's own space mark), ﬁ and ① (NFKC folds them),
# a lone combining accent, astral characters.
HOSTILE = ("\x00\x01\x1b\x7f\r\n\t\x0b\x0c\x1c\x1e\x85\xa0\u2028\u2029\u200b\u3000\ufeff\ufffd\u2581"
           "\ufb01\u2460\u0301\U0001f600\U0010ffff")
CHAR = st.characters(codec="utf-8") | st.sampled_from(HOSTILE)  # codec="utf-8": no lone surrogates
TEXT = st.text(CHAR, max_size=40) | st.builds(lambda s, n: (s * n)[:n], st.text(CHAR, min_size=1, max_size=5),
                                             st.integers(2_000, 20_000))


@pytest.fixture(scope="module", params=["bpe", "unigram"])
def tok(request, tmp_path_factory):
    """A small tokenizer of each kind, trained on 300 sample pairs (both sides) in well under a second."""
    with gzip.open(SAMPLE / "train.jsonl.gz", "rt", encoding="utf-8") as f:
        pairs = [(r["de"], r["en"]) for r in map(json.loads, f)][:300]
    cfg = TokenizerConfig(model_type=request.param, vocab_size=VOCAB, byte_fallback=True,  # the lossless setting
                          cache_dir=str(tmp_path_factory.mktemp("spm")))
    tok = load_or_train(cfg, pairs, "hostile-tests")
    assert tok.source_vocab == tok.target_vocab == VOCAB  # the id strategies below draw from range(VOCAB)
    return tok


def normalised(tok, text: str) -> str:
    """SentencePiece's normal form of `text`, as text: its space mark back to a space, less the dummy prefix."""
    norm = tok.target.normalize(text).replace("\u2581", " ")
    return norm.removeprefix(" ")


def test_normalised_is_the_nmt_nfkc_form(tok):
    """The reference is no identity: it folds, drops controls and zero-widths, collapses and strips spaces."""
    assert normalised(tok, "  \ufb01\u2460\x01 a\u200b\u3000\t b\u2581c  ") == "fi1 a b c"


@RUN
@given(text=TEXT)
@example(text="Straße \U0001f600 \u6f22\u5b57 \x00 \u2028")  # unseen in training: only bytes can spell them
def test_ids_are_in_the_vocabulary_and_decode_back(tok, text):
    for encode, vocab in ((tok.encode_source, tok.source_vocab), (tok.encode_target, tok.target_vocab)):
        ids = encode(text)
        assert all(0 <= i < vocab for i in ids)
        assert not {PAD, UNK, BOS, EOS} & set(ids)  # an EOS would cut decoding short; UNK would lose text
    assert tok.decode_target(tok.encode_target(text)) == normalised(tok, text)


@RUN
@given(ids=st.lists(st.integers(0, VOCAB - 1), max_size=30), rest=st.lists(st.integers(0, VOCAB - 1), max_size=5))
def test_any_ids_decode_to_writable_text_ending_at_eos(tok, ids, rest):
    """Whatever a model emits (stray byte pieces, specials) decodes to text a UTF-8 file accepts."""
    ids = [i for i in ids if i != EOS]
    text = tok.decode_target(ids)
    text.encode("utf-8")  # raises on a lone surrogate; invalid byte runs must have become U+FFFD
    assert tok.decode_target(ids + [EOS] + rest) == text
    assert tok.decode_target([PAD, BOS] + ids) == text


@RUN
@given(before=st.text(CHAR, max_size=10), surrogate=st.characters(categories=["Cs"]), after=TEXT)
def test_text_that_is_not_unicode_is_a_named_error(tok, before, surrogate, after):
    with pytest.raises(DataError, match=re.escape(f"unpaired surrogate {surrogate!r} at character {len(before)} ")):
        tok.encode_source(before + surrogate + after)
