"""Writes that cannot leave half a result: a failure midway keeps the old file or folder whole and leaves no partial."""

from __future__ import annotations

import pytest

from emo_lightning.utils.atomic import atomic_dir, atomic_path, atomic_write_text, remove_partials


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half of the new")
        raise RuntimeError("killed midway")
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_a_folder_appears_whole_or_not_at_all(tmp_path):
    target = tmp_path / "model"
    with pytest.raises(RuntimeError), atomic_dir(target) as partial:
        partial.mkdir()
        (partial / "config.json").write_text("{}")
        raise RuntimeError("killed midway")
    assert not target.exists() and not list(tmp_path.iterdir())
    for version in ("first", "second"):  # the second replaces the first only once it is complete
        with atomic_dir(target) as partial:
            partial.mkdir()
            (partial / "config.json").write_text(version)
            assert (target / "config.json").read_text() == "first" if version == "second" else not target.exists()
    assert (target / "config.json").read_text() == "second" and [p.name for p in tmp_path.iterdir()] == ["model"]


def test_leftovers_of_killed_writes_are_found_and_removed(tmp_path):
    (tmp_path / ".last.ckpt.x1.partial").write_text("torn")
    (tmp_path / ".model.x2.partial").mkdir()
    (tmp_path / "last.ckpt").write_text("whole")
    removed = remove_partials(tmp_path)
    assert [p.name for p in removed] == [".last.ckpt.x1.partial", ".model.x2.partial"]
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
