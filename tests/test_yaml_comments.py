"""Every key a user sets in conf/ says what it does, JoeyNMT style: `key: value   # meaning, choices or unit`.

The check reads each conf/**/*.yaml line by line (comments are not in the parsed
YAML). A key line needs a trailing `#` comment unless it is `defaults:` or one of
its list items, a key whose value is a nested block (`key:` with indented
children; its leaves are checked), or inside the `hydra:` block of conf/config.yaml
(Hydra's own settings, described by the comment above it). The experiment files
that conf/experiment links to are not part of this rule.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from research.config import REPO

CONF = REPO / "conf"
# `key: value` or `- key: value`; a key may hold dots, slashes and `@` (Hydra group paths and packages).
KEY = re.compile(r"^(?P<indent>\s*)(?:-\s+)?(?P<key>[A-Za-z_][\w.@/-]*)\s*:(?:\s|$)")
SKIPPED_BLOCKS = {"defaults": None, "hydra": "config.yaml"}  # key -> the only file it is skipped in (None: all)


def conf_files() -> list[Path]:
    """conf/**/*.yaml, not following links (conf/experiment points at experiments/)."""
    out = []
    for root, dirs, files in os.walk(CONF):
        dirs[:] = sorted(d for d in dirs if not (Path(root) / d).is_symlink())
        out += [Path(root) / f for f in sorted(files) if f.endswith(".yaml")]
    return out


def split_comment(line: str) -> tuple[str, str | None]:
    """(the line before its comment, the comment or None); a `#` inside quotes or not after a space is text."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"" and (i == 0 or line[i - 1] in " \t:[{,"):  # opens a quoted scalar, not an apostrophe
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i], line[i + 1:]
    return line, None


def indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def missing_comments(text: str, name: str, top_file: bool = False) -> list[str]:
    """`name:line: key line` for each key line without a trailing comment."""
    lines = text.splitlines()
    content = [(n, line) for n, line in enumerate(lines, 1)
               if line.strip() and not line.lstrip().startswith("#") and line.strip() != "---"]
    out, skip_deeper = [], None  # skip_deeper: the indent of a skipped block's key (its children go too)
    for i, (n, line) in enumerate(content):
        body, comment = split_comment(line)
        ind = indent(line)
        if skip_deeper is not None:
            if ind > skip_deeper or (ind == skip_deeper and line.lstrip().startswith("- ")):
                continue
            skip_deeper = None
        m = KEY.match(body)
        if not m:
            continue  # a list item or a continuation line
        key, value = m["key"], body[m.end():].strip()
        key_indent = ind if not line.lstrip().startswith("-") else len(m["indent"]) + 2
        if ind == 0 and key in SKIPPED_BLOCKS and (SKIPPED_BLOCKS[key] is None or top_file):
            skip_deeper = ind
            continue
        if value in ("|", ">", "|-", ">-", "|+", ">+"):  # a block scalar: its lines are text, not keys
            skip_deeper = key_indent
        elif not value and i + 1 < len(content):
            nxt = content[i + 1][1]
            if indent(nxt) > key_indent or (indent(nxt) == key_indent and nxt.lstrip().startswith("- ")):
                continue  # a nested block: its leaves carry the comments
        if comment is None or not comment.strip():
            out.append(f"{name}:{n}: {line.strip()}")
    return out


FILES = conf_files()


def test_conf_files_found():
    names = {p.relative_to(CONF).as_posix() for p in FILES}
    assert {"config.yaml", "optim/adamw.yaml", "hydra/launcher/slurm.yaml", "data/_shared/base.yaml"} <= names
    assert not any(n.startswith("experiment/") for n in names)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(CONF).as_posix())
def test_every_key_has_a_comment(path: Path):
    name = path.relative_to(REPO).as_posix()
    missing = missing_comments(path.read_text(), name, top_file=path == CONF / "config.yaml")
    assert not missing, "keys without a trailing `# comment`:\n" + "\n".join(missing)


def test_checker_finds_a_missing_comment():
    text = """\
# header
defaults:
  - schema
  - model: base
hydra:
  run:
    dir: outputs
a: 1            # documented
b: 2
nested:
  c: 3          # documented
  d: {}
url: "http://x#y"
e: null
setup:          # a list
  - echo hi
f: x#y          # `#` without a space before it is text
k: it's         # an apostrophe opens no quote
g: |
  h: not a key
"""
    assert missing_comments(text, "t.yaml", top_file=True) == [
        "t.yaml:9: b: 2", "t.yaml:12: d: {}", "t.yaml:13: url: \"http://x#y\"", "t.yaml:14: e: null", "t.yaml:19: g: |"]
    # `hydra:` is skipped only in conf/config.yaml
    assert missing_comments("hydra:\n  x: 1\n", "t.yaml") == ["t.yaml:2: x: 1"]
