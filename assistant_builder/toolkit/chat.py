"""Chat templates: format a conversation the way a causal LM was trained to read it.

A model's chat template is a Jinja template (``chat_template.jinja``, or the ``chat_template`` key
of ``tokenizer_config.json``) over ``messages`` (``{"role", "content"}`` dicts),
``add_generation_prompt`` and the special tokens (``bos_token``, ``eos_token``...). It is rendered
here as ``transformers``' ``apply_chat_template`` renders it: a sandboxed, immutable Jinja
environment with ``trim_blocks``/``lstrip_blocks``, the ``loopcontrols`` extension,
``raise_exception``, ``strftime_now``, a ``tojson`` filter that keeps non-ASCII text, a
``namespace()`` that refuses underscore names, ``{% generation %}`` blocks (rendered as their
body), and ``tools`` / ``documents`` set to ``None``. A model without a template gets
``FALLBACK_TEMPLATE``.

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
from assistant_builder.jsonfile import read_json_object

__all__ = ["FALLBACK_TEMPLATE", "assistant_spans", "load_chat_template", "render_chat", "special_tokens"]

#: for a model without a chat template: one ``role: content`` line per message, each assistant message
#: ended by the eos token, and the generation prompt ``assistant:``. The space after the colon is
#: written with the content, not the prompt, so a prompt never ends in a space (a byte-level BPE
#: merges a space into the next word: ``" Paris"`` is one token, which the model then generates);
#: newlines are written as ``{{ '\n' }}`` because ``trim_blocks`` drops a newline after a tag.
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] + ': ' + message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'assistant:' }}{% endif %}"
)
_TOKEN_NAMES = ("bos_token", "eos_token", "pad_token", "unk_token")


def load_chat_template(model_dir: Path) -> str | None:
    """The model folder's chat template: ``chat_template.jinja``, else ``tokenizer_config.json``'s
    ``chat_template`` (a string, or the entry named ``default`` of a list of named templates); ``None``."""
    model_dir = Path(model_dir)
    jinja = model_dir / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8")
    template = read_json_object(model_dir / "tokenizer_config.json").get("chat_template")
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
        config = read_json_object(Path(model_dir) / name)
        for key in _TOKEN_NAMES:
            value = config.get(key)
            if isinstance(value, dict):
                value = value.get("content")
            if isinstance(value, str) and value:
                found[key] = value
    return found


def _raise(message: str) -> None:
    raise DataError(f"the chat template refused the conversation: {message}")


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | str | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    """Jinja's ``tojson`` as chat templates expect it: plain ``json.dumps``, non-ASCII kept, no HTML escaping."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(format: str) -> str:  # noqa: A002 - the name templates call it with
    return datetime.now().strftime(format)


@lru_cache(maxsize=16)
def _compiled(template: str) -> Any:
    from jinja2 import TemplateError, nodes
    from jinja2.ext import Extension
    from jinja2.sandbox import ImmutableSandboxedEnvironment
    from jinja2.utils import Namespace

    class GenerationBlock(Extension):
        """``{% generation %}...{% endgeneration %}`` (templates written for transformers'
        ``return_assistant_tokens_mask``) renders its body; the spans come from ``assistant_spans``."""

        tags = {"generation"}

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.CallBlock(self.call_method("_body"), [], [], body).set_lineno(lineno)

        def _body(self, caller: Any) -> str:
            return caller()

    class SafeNamespace(Namespace):
        """``namespace()`` that refuses underscore names (no reaching CPython internals)."""

        def __init__(*args: Any, **kwargs: Any) -> None:  # noqa: N805 - Namespace's own signature trick
            self, rest = args[0], args[1:]
            attributes = dict(*rest, **kwargs)
            for name in attributes:
                SafeNamespace._check(name)
            Namespace.__init__(self, attributes)

        def __setitem__(self, name: str, value: Any) -> None:
            SafeNamespace._check(name)
            Namespace.__setitem__(self, name, value)

        @staticmethod
        def _check(name: Any) -> None:
            if isinstance(name, str) and name.startswith("_"):
                raise DataError(f"the chat template sets the namespace attribute {name!r}; names starting with '_' are refused")

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                                extensions=[GenerationBlock, "jinja2.ext.loopcontrols"])
    environment.filters["tojson"] = _tojson
    environment.globals["raise_exception"] = _raise
    environment.globals["strftime_now"] = _strftime_now
    environment.globals["namespace"] = SafeNamespace
    try:
        return environment.from_string(template)
    except TemplateError as error:
        raise DataError(f"the chat template is not valid Jinja: {error}",
                        hint="fix task.options.chat_template, or the model's chat_template.jinja") from None


def render_chat(template: str, messages: Sequence[Mapping[str, str]], *, add_generation_prompt: bool = False,
                tokens: Mapping[str, str] | None = None) -> str:
    """``messages`` rendered with ``template`` as ``apply_chat_template(tokenize=False)`` renders them.

    The template sees ``messages`` (plain dicts), ``add_generation_prompt``, ``tools`` and
    ``documents`` (``None``) and each of ``tokens`` by name (``bos_token``, ``eos_token``...). A
    template that does not compile, fails while rendering, or calls ``raise_exception`` raises a
    ``DataError`` saying why.
    """
    from jinja2 import TemplateError

    variables = {"tools": None, "documents": None, **dict(tokens or {})}
    try:
        return _compiled(template).render(messages=[dict(m) for m in messages], add_generation_prompt=add_generation_prompt,
                                          **variables)
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError) as error:
        raise DataError(f"the chat template failed on a conversation ({type(error).__name__}: {error})",
                        hint="check the template against the messages (roles, order), or set task.options.chat_template") from None


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
            raise DataError(f"the chat template renders the conversation up to message {index + 1} (an assistant message) "
                            "differently once later messages follow (a rendered prefix is not a prefix of the whole), so "
                            "the message's tokens cannot be located for the loss",
                            hint="use a template that renders each turn independently (set task.options.chat_template)")
        spans.append((len(before), len(through)))
    return full, spans
