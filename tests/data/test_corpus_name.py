"""`data.dir=` alone names the run after that folder, not after the default corpus (issue 12, item 9)."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from research.config import NAME_FROM_DIR, REPO, name_follows_dir, resolve
from research.data.config import corpus_name
from research.run_dir import load_config
from tests.conftest import compose_config


def _composed(overrides: list[str]):
    """(data.name, hydra.run.dir) as Hydra composes them for a single run."""
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        cfg = compose(config_name="config", overrides=overrides, return_hydra_config=True)
    return cfg.data.name, OmegaConf.select(cfg, "hydra.run.dir")


@pytest.mark.parametrize("directory, name", [
    ("/data/corpora/fr-en", "fr_en"), ("~/corpora/Fr-En.v2/", "fr_en_v2"), ("/srv/Données FR", "donn_es_fr"),
    ("/", "corpus"),  # nothing to name it after
])
def test_corpus_name_is_the_folders_basename_made_safe_for_paths(directory, name):
    assert corpus_name(directory) == name


def test_a_relative_folder_is_named_from_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "es-en").mkdir()
    monkeypatch.chdir(tmp_path / "es-en")
    assert corpus_name(".") == "es_en"
    monkeypatch.chdir(tmp_path)
    assert corpus_name("es-en") == "es_en"


def test_only_data_dir_given_derives_the_name_and_the_run_folder(tmp_path):
    overrides = name_follows_dir([f"data.dir={tmp_path}/fr-en", "trainer.max_steps=3"])
    assert overrides == [f"data.dir={tmp_path}/fr-en", "data.name=fr_en", "trainer.max_steps=3"]
    name, run_dir = _composed(overrides)
    assert name == "fr_en" and run_dir.startswith("outputs/fr_en/")
    assert resolve(compose_config(overrides)).data.name == "fr_en"


def test_the_sample_config_keeps_its_name():
    assert name_follows_dir(["trainer.max_steps=3"]) == ["trainer.max_steps=3"]
    name, run_dir = _composed([])
    assert name == "ddtp_de_en_sample" and run_dir.startswith("outputs/ddtp_de_en_sample/")


@pytest.mark.parametrize("given", [["data.dir=/c/fr-en", "data.name=mine"], ["data.name=mine", "++data.dir=/c/fr-en"]])
def test_a_given_name_is_kept(given):
    assert name_follows_dir(given) == given
    assert _composed(given)[0] == "mine"


@pytest.mark.parametrize("override", ["data.dir=null", "~data.dir", "data.dir=/a,/b,"])
def test_nothing_is_added_without_a_folder_or_when_hydra_must_report_the_syntax(override):
    assert name_follows_dir([override]) == [override]


def test_a_sweep_or_an_interpolation_names_each_job_when_composed(monkeypatch):
    sweep = name_follows_dir(["-m", "data.dir=/a/fr-en,/b/es-en"])
    assert sweep == ["-m", "data.dir=/a/fr-en,/b/es-en", NAME_FROM_DIR]
    # The sweeper composes each job with its own value and the shared added override.
    assert [_composed([f"data.dir={d}", NAME_FROM_DIR]) [0] for d in ("/a/fr-en", "/b/es-en")] == ["fr_en", "es_en"]
    monkeypatch.setenv("CORPUS", "/x/de-fr")
    assert name_follows_dir(["data.dir=${oc.env:CORPUS}"])[-1] == NAME_FROM_DIR
    assert _composed(name_follows_dir(["data.dir=${oc.env:CORPUS}"])) [0] == "de_fr"


def test_the_train_app_files_a_run_under_the_derived_name(tmp_path):
    """research.train itself, as a user calls it (`--cfg all` prints the composed config and stops)."""
    cmd = [sys.executable, "-m", "research.train", f"data.dir={tmp_path}/fr-en", "--cfg", "all", "--resolve"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, check=True).stdout
    cfg = yaml.safe_load(out)
    assert cfg["data"]["name"] == "fr_en" and cfg["data"]["dir"] == f"{tmp_path}/fr-en"
    assert cfg["hydra"]["run"]["dir"].startswith("outputs/fr_en/")


def test_evaluating_another_folder_through_load_config(tmp_path):
    """research.evaluate's `data.dir=` goes through run_dir.load_config, which must apply name_follows_dir."""
    (tmp_path / ".hydra").mkdir()
    OmegaConf.save(compose_config([]), tmp_path / ".hydra" / "config.yaml")
    assert load_config(tmp_path, name_follows_dir(["data.dir=/d/fr-en"])).data.name == "fr_en"
    assert load_config(tmp_path).data.name == "ddtp_de_en_sample"
