"""``assistant_builder.jsonfile.read_json_object``: a missing or broken file reads as nothing recorded."""

from __future__ import annotations

from pathlib import Path

from assistant_builder.jsonfile import read_json_object


def test_an_object_is_read_and_anything_else_is_empty(tmp_path: Path) -> None:
    (tmp_path / "ok.json").write_text('{"parent": "runs/a", "n": 2}', encoding="utf-8")
    (tmp_path / "list.json").write_text("[1, 2]", encoding="utf-8")
    (tmp_path / "broken.json").write_text('{"parent": ', encoding="utf-8")
    assert read_json_object(tmp_path / "ok.json") == {"parent": "runs/a", "n": 2}
    assert read_json_object(tmp_path / "list.json") == {}
    assert read_json_object(tmp_path / "broken.json") == {}
    assert read_json_object(tmp_path / "missing.json") == {}
    assert read_json_object(tmp_path) == {}  # a folder is not a file
