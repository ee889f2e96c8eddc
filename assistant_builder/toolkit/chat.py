"""Chat templates: format a conversation the way a causal LM was trained to read it.

A model's chat template is a Jinja template (``chat_template.jinja``, or the ``chat_template`` key
of ``tokenizer_config.json``) over ``messages`` (``{"role", "content"}`` dicts),
``add_generation_prompt`` and the special tokens (``bos_token``, ``eos_token``...). It is rendered
here as ``transformers``' ``apply_chat_template`` renders it: a sandboxed, immutable Jinja
environment with ``trim_blocks``/``lstrip_blocks``, the ``loopcontrols`` extension,
``raise_exception``, ``strftime_now`` and a ``tojson`` filter that keeps non-ASCII text. A model
without a template gets ``FALLBACK_TEMPLATE``.

``assistant_spans`` finds where each assistant message sits in the rendered text (what the
loss is computed on) by rendering prefixes of the conversation. Torch-free; imports jinja2 inside
the functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from assistant_builder.errors import DataError

__all__ = ["FALLBACK_TEMPLATE", "assistant_spans", "load_chat_template", "render_chat", "special_tokens"]

#: for a model without a chat template: "role: content" lines, each assistant turn ended by the eos token
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)
_TOKEN_NAMES = ("bos_token", "eos_token", "pad_token", "unk_token")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def load_chat_template(model_dir: Path) -> str | None:
    """The model folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s
    ``chat_template`` (a string, or the entry named ``default`` of a list of named templates); ``None``."""
    model_dir = Path(model_dir)
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = _read_json(model_dir / "tokenizer_config.json").get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    return template if isinstance(template, str) and template.strip() else None


def special_tokens(model_dir: Path) -> dict[str, str]:
    """``bos_token``, ``eos_token``, ``pad_token`` and ``unk_token`` of the model folder (those it
    declares), from ``tokenizer_config.json`` then ``special_tokens_map.json``; a value may be a
    string or ``{"content": ...}``."""
    found: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):  # the latter wins
        config = _read_json(Path(model_dir) / name)
        for key in _TOKEN_NAMES:
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value:
                found[key] = value
    return found


def _raise(message: str) -> None:
    raise DataError(f"the chat template refused the conversation: {message}")


@lru_cache(maxsize=16)
def _compiled(template: str) -> Any:
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = lambda value, indent=None, separators=None, sort_keys=False: json.dumps(
        value, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)
    environment.globals["raise_exception"] = _raise
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    try:
        return environment.from_string(template)
    except TemplateError as error:
        raise DataError(f"the chat template is not valid Jinja: {error}",
                        hint="fix task.options.chat_template, or the model's chat_template.jinja") from None


def render_chat(template: str, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False,
                tokens: Mapping[str, str] | None = None) -> str:
    """``messages`` rendered with ``template`` (see the module docstring); a template error is a ``DataError``."""
    from jinja2 import TemplateError

    try:
        return _compiled(template).render(messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
                                          **dict(tokens or {}))
    except TemplateError as error:
        raise DataError(f"the chat template failed on a conversation: {error}") from None


def assistant_spans(template: str, messages: Sequence[Mapping[str, str]],
                    tokens: Mapping[str, str] | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the ``(start, end)`` character span of each assistant message.

    A span runs from the end of the generation prompt before the message to the end of the
    conversation rendered up to and including it, so it holds the message's text and what the
    template writes after it (its end marker, e.g. ``<|im_end|>\\n``): the model learns to stop.
    Raises ``DataError`` when a template renders an earlier turn differently once later turns are
    added (the prefix is then not a prefix), since the spans would not be where the loss belongs.
    """
    full = render_chat(template, messages, tokens=tokens)
    spans = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = render_chat(template, messages[:index], add_generation_prompt=True, tokens=tokens)
        through = render_chat(template, messages[: index + 1], tokens=tokens)
        if not full.startswith(through) or not through.startswith(before):
            raise DataError(f"the chat template renders message {index + 1} differently once later messages follow, so its "
                            "tokens cannot be found for the loss",
                            hint="use a template that renders each turn independently (set task.options.chat_template)")
        spans.append((len(before), len(through)))
    return full, spans
