"""Where a run's inputs live: folders named by the settings they are made from, so that runs
with other settings never overwrite each other's inputs and runs with the same ones share them."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from gexnet import config, layout


def demo(**changes) -> dict:
    cfg = config.validate({})
    for key, value in changes.items():
        section, _, name = key.partition("__")
        if name:
            cfg[section][name] = value
        else:
            cfg[section] = value
    return cfg


@pytest.mark.parametrize(
    "change",
    [{"seed": 3}, {"species": ["human"]}, {"simulate__programs": 5}, {"qc__min_detected_genes": 9}],
)
def test_what_the_demo_is_made_from_names_its_folder(change):
    assert layout.source_dir(demo(**change)) != layout.source_dir(demo())


@pytest.mark.parametrize(
    "change",
    [{"run": "try2"}, {"block_values": 1000}, {"download__retries": 1}, {"train__epochs": 1},
     {"annotations__hpo": "/data/hpo.txt"}],
)  # fmt: skip
def test_what_does_not_change_the_compendium_shares_it(change):
    assert layout.source_dir(demo(**change)) == layout.source_dir(demo())


def test_each_source_keys_by_its_own_settings():
    geo = demo(source="geo", species=["human"])
    geo["geo"]["series"] = ["GSE1"]
    other = copy.deepcopy(geo)
    other["geo"]["series"] = ["GSE1", "GSE2"]
    assert layout.source_dir(geo).parent == Path("resources/geo")
    assert layout.source_dir(geo) != layout.source_dir(other)
    byo = demo(source="byo", species=["human"])
    byo["byo"] |= {"counts": "a.tsv", "samples": "s.tsv"}
    moved = copy.deepcopy(byo)
    moved["byo"]["counts"] = "b.tsv"
    assert layout.source_dir(byo) != layout.source_dir(moved)
    # ARCHS4 downloads depend on no setting: one shared folder
    assert layout.source_dir(demo(source="archs4")) == Path("resources/archs4")
    assert layout.source_dir(demo(source="archs4", seed=3)) == Path("resources/archs4")


def test_label_settings_key_the_label_table():
    plain, other = demo(), demo(annotations__go_sqlite="/x/org.Hs.eg.sqlite")
    key = layout.settings_key
    assert key(layout.label_settings(plain)) != key(layout.label_settings(other))
    assert key(layout.label_settings(plain)) == key(layout.label_settings(demo(seed=3)))


def test_keys_are_stable_and_order_free():
    assert layout.settings_key({"a": 1, "b": [1, 2]}) == layout.settings_key({"b": [1, 2], "a": 1})
    assert layout.settings_key({"a": 1}) != layout.settings_key({"a": 2})
    assert len(layout.settings_key({})) == 12


def test_demo_files_name_everything_simulate_writes(small_compendium):
    _, files = small_compendium
    assert all(Path(p).is_file() for p in files.values())
    assert {"human_gene", "mouse_transcript", "programs", "settings"} <= set(files)
