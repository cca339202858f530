"""experiments/results/README.md indexes the recorded results: one table row per folder, each row naming the
experiment file or the tool that made it, and every command's output folder recorded. A folder added without its
row, or a row left behind by a renamed folder, fails here instead of misleading a reader."""
from __future__ import annotations

import re

from research.config import REPO

RESULTS = REPO / "experiments" / "results"


def index_rows() -> dict[str, str]:
    """{folder: what made it} from the README's table; `compare_embeddings/<corpus>/` is the folder
    compare_embeddings."""
    rows = {}
    for line in (RESULTS / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 3 and cells[0].endswith("/") and cells[0] != "folder":
            folder = cells[0].split("/")[0]
            assert folder not in rows, f"two rows for {folder}"
            rows[folder] = cells[1]
    return rows


def test_every_recorded_folder_has_one_row_and_every_row_a_folder():
    folders = {p.name for p in RESULTS.iterdir() if p.is_dir()}
    rows = index_rows()
    assert sorted(folders - rows.keys()) == [], "folders without a row in experiments/results/README.md"
    assert sorted(rows.keys() - folders) == [], "rows of experiments/results/README.md without a folder"


def test_each_row_names_an_experiment_file_or_the_tool_that_made_it():
    for folder, made_by in index_rows().items():
        if made_by.startswith("(research."):
            assert re.match(r"\(research\.(tune|scaling) of ", made_by), (folder, made_by)
            continue
        assert re.fullmatch(r"experiments/[a-z0-9_]+\.yaml", made_by), (folder, made_by)
        assert (REPO / made_by).is_file(), (folder, made_by)


def test_a_reports_sweep_command_runs_the_experiment_its_row_names():
    rows = index_rows()
    checked = 0
    for report in RESULTS.rglob("report.md"):
        folder = report.relative_to(RESULTS).parts[0]
        found = re.search(r"python -m research\.train \+experiment=([a-z0-9_]+)", report.read_text())
        if found and rows[folder].endswith(".yaml"):
            assert rows[folder] == f"experiments/{found.group(1)}.yaml", (report, rows[folder])
            checked += 1
    assert checked >= 25  # 30 recorded reports write their sweep command (2026-12-07)


def test_every_commands_output_folder_is_recorded():
    text = (RESULTS / "README.md").read_text()
    outs = re.findall(r"--out experiments/results/([a-z0-9_]+)", text)
    assert len(outs) >= 30
    assert sorted({o for o in outs if not (RESULTS / o).is_dir()}) == []
