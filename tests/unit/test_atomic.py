"""Atomic writes: the final name holds either the old content or the new, never a partial file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from assistant_builder import atomic
from assistant_builder.atomic import atomic_directory, atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text


def test_write_bytes_text_json(tmp_path: Path) -> None:
    atomic_write_bytes(tmp_path / "a.bin", b"\x00\x01")
    atomic_write_text(tmp_path / "sub" / "b.txt", "héllo")  # creates the parent folder
    atomic_write_json(tmp_path / "c.json", {"x": [1, 2], "name": "é"})
    assert (tmp_path / "a.bin").read_bytes() == b"\x00\x01"
    assert (tmp_path / "sub" / "b.txt").read_text(encoding="utf-8") == "héllo"
    assert json.loads((tmp_path / "c.json").read_text(encoding="utf-8")) == {"x": [1, 2], "name": "é"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "c.json", "sub"]


def test_write_replaces_existing(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["f.txt"]


def test_atomic_path_yields_temp_next_to_target(tmp_path: Path) -> None:
    target = tmp_path / "model.bin"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        assert not target.exists()
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert not tmp.exists()


def test_failure_in_atomic_path_keeps_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_text("half-writ")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_failure_without_existing_target_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "x.onnx") as tmp:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_atomic_directory_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "export"
    with atomic_directory(target) as tmp:
        (tmp / "a.txt").write_text("one")
    assert (target / "a.txt").read_text() == "one"
    with atomic_directory(target) as tmp:
        (tmp / "nested").mkdir()
        (tmp / "nested" / "b.txt").write_text("two")
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["nested", "nested/b.txt"]
    assert os.listdir(tmp_path) == ["export"]  # no temp or .old folders left


def test_atomic_directory_error_keeps_old_folder(tmp_path: Path) -> None:
    target = tmp_path / "export"
    target.mkdir()
    (target / "model.onnx").write_text("good")
    with pytest.raises(ValueError), atomic_directory(target) as tmp:
        (tmp / "model.onnx").write_text("bad")
        raise ValueError("export failed")
    assert (target / "model.onnx").read_text() == "good"
    assert os.listdir(tmp_path) == ["export"]


def test_atomic_directory_swap_failure_restores_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "export"
    target.mkdir()
    (target / "model.onnx").write_text("good")
    real_replace = os.replace
    calls: list[tuple[str, str]] = []

    def flaky_replace(src: str | Path, dst: str | Path) -> None:
        calls.append((str(src), str(dst)))
        if Path(dst) == target and ".tmp" in Path(src).name:
            raise OSError("rename failed")
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", flaky_replace)
    with pytest.raises(OSError, match="rename failed"), atomic_directory(target) as tmp:
        (tmp / "model.onnx").write_text("new")
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    assert len(calls) >= 2  # the old folder was moved aside before the failing swap
    assert (target / "model.onnx").read_text() == "good"
    assert os.listdir(tmp_path) == ["export"]
