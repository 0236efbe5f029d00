"""The shared file helpers: atomic files and directories, gzip told by content, first lines."""

from __future__ import annotations

import gzip

import pytest

from gexnet.errors import GexnetError, first_line
from gexnet.formats.io import atomic_dir, atomic_path, is_gzip, open_text


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "sub" / "table.tsv"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert not target.exists() and not list(tmp_path.rglob("*.tmp*"))
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".tsv" and tmp.parent == target.parent
        tmp.write_text("whole")
    assert target.read_text() == "whole" and not list(tmp_path.rglob("*.tmp*"))


def test_atomic_dir_replaces_only_when_done(tmp_path):
    target = tmp_path / "corpus"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as work:
        (work / "new.txt").write_text("new")
        raise RuntimeError("killed")
    assert [p.name for p in target.iterdir()] == ["old.txt"]  # the old one stays whole
    with atomic_dir(target) as work:
        (work / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["corpus"]  # no work directory left


def test_gzip_is_told_by_content_not_name(tmp_path):
    packed, plain = tmp_path / "a.txt", tmp_path / "b.gz"
    with gzip.open(packed, "wt") as f:
        f.write("x\ty\n")
    plain.write_text("x\ty\n")
    assert is_gzip(packed) and not is_gzip(plain)
    for path in (packed, plain):
        with open_text(path) as f:
            assert f.read() == "x\ty\n"
    with pytest.raises(GexnetError, match=r"missing\.txt: cannot read"):
        is_gzip(tmp_path / "missing.txt")


def test_first_line_of_an_error():
    assert first_line(ValueError("bad value\nmore detail")) == "bad value"
    assert first_line(KeyError("no such key")) == "no such key"  # without KeyError's quotes
    assert first_line(OSError()) == "OSError"
