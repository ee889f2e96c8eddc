"""Chat templates (``assistant_builder.toolkit.chat``): loading, special tokens, rendering as
transformers' ``apply_chat_template`` does, and the character spans of assistant messages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from assistant_builder.errors import DataError
from assistant_builder.toolkit.chat import FALLBACK_TEMPLATE, assistant_spans, load_chat_template, render_chat, special_tokens

#: like SmolLM2-Instruct's: a default system prompt when the conversation has none
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
DIALOGUE = [{"role": "user", "content": "Is the shop open?"}, {"role": "assistant", "content": "Yes, until noon."},
            {"role": "user", "content": "And tomorrow?"}, {"role": "assistant", "content": "Closed on Sundays."}]


# -- loading --------------------------------------------------------------------------------------------


def test_load_chat_template_prefers_the_jinja_file(tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "from the config"}))
    assert load_chat_template(tmp_path) == "from the config"
    (tmp_path / "chat_template.jinja").write_text("from the file", encoding="utf-8")
    assert load_chat_template(tmp_path) == "from the file"


def test_load_chat_template_named_list_and_none(tmp_path: Path) -> None:
    assert load_chat_template(tmp_path) is None  # an empty folder
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    assert load_chat_template(tmp_path) is None
    named = [{"name": "tool_use", "template": "tools"}, {"name": "default", "template": "plain"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named}))
    assert load_chat_template(tmp_path) == "plain"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": named[:1]}))
    assert load_chat_template(tmp_path) is None


def test_special_tokens_strings_dicts_and_missing(tmp_path: Path) -> None:
    assert special_tokens(tmp_path) == {}
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"bos_token": {"content": "<s>", "lstrip": False}, "unk_token": "<unk>", "eos_token": "old"}))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": {"content": "</s>"}, "pad_token": None, "additional_special_tokens": ["<x>"]}))
    assert special_tokens(tmp_path) == {"bos_token": "<s>", "unk_token": "<unk>", "eos_token": "</s>"}


# -- rendering ------------------------------------------------------------------------------------------


def test_render_chatml_with_default_system_prompt() -> None:
    assert render_chat(CHATML, DIALOGUE[:1], add_generation_prompt=True) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nIs the shop open?<|im_end|>\n"
        "<|im_start|>assistant\n")
    with_system = [{"role": "system", "content": "Be brief."}, *DIALOGUE[:1]]
    assert render_chat(CHATML, with_system).startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n")


def test_render_passes_tokens_and_jinja_features() -> None:
    template = ("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}{% continue %}{% endif %}"
                "{{ m['content'] | tojson }}{% if loop.index > 2 %}{% break %}{% endif %}{% endfor %}{{ eos_token }}")
    messages = [{"role": "system", "content": "skip"}, {"role": "user", "content": "café \"x\""},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "never"}]
    assert render_chat(template, messages, tokens={"bos_token": "<s>", "eos_token": "</s>"}) == '<s>"café \\"x\\""\"b\"</s>'


def test_tojson_options_strftime_now_and_namespace() -> None:
    assert render_chat("{{ messages[0] | tojson(indent=2, sort_keys=True) }}", [{"role": "user", "content": "é"}]) == (
        '{\n  "content": "é",\n  "role": "user"\n}')
    assert render_chat("{{ messages[0] | tojson(ensure_ascii=True) }}", [{"role": "user", "content": "é"}]) == (
        '{"role": "user", "content": "\\u00e9"}')
    assert render_chat("{{ strftime_now('%Y') }}", []) == str(datetime.now().year)
    counting = "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}"
    assert render_chat(counting, DIALOGUE) == "4"
    with pytest.raises(DataError, match="'_"):
        render_chat("{% set ns = namespace(_x=0) %}", [])


def test_generation_blocks_render_their_body() -> None:
    template = ("{% for m in messages %}{% if m['role'] == 'assistant' %}{% generation %}{{ m['content'] }}{% endgeneration %}"
                "{% else %}{{ m['content'] }}{% endif %}|{% endfor %}")
    assert render_chat(template, DIALOGUE[:2]) == "Is the shop open?|Yes, until noon.|"


def test_tools_and_documents_are_none() -> None:
    assert render_chat("{% if tools is none and documents is none %}plain{% endif %}", []) == "plain"


def test_raise_exception_is_a_data_error() -> None:
    template = "{% if messages[0]['role'] != 'user' %}{{ raise_exception('Conversations must start with the user') }}{% endif %}ok"
    assert render_chat(template, DIALOGUE) == "ok"
    with pytest.raises(DataError, match="refused the conversation: Conversations must start with the user"):
        render_chat(template, DIALOGUE[1:])


def test_template_errors_are_data_errors() -> None:
    with pytest.raises(DataError, match="not valid Jinja"):
        render_chat("{% for m in messages %}", DIALOGUE)
    with pytest.raises(DataError, match="failed on a conversation"):
        render_chat("{{ messages[0]['content'] + 1 }}", DIALOGUE)


def test_the_sandbox_refuses_unsafe_access_and_mutation() -> None:
    with pytest.raises(DataError):
        render_chat("{{ messages.__class__.__mro__ }}", DIALOGUE)
    with pytest.raises(DataError):
        render_chat("{% set _ = messages.append(1) %}", DIALOGUE)


def test_fallback_template() -> None:
    tokens = {"eos_token": "</s>"}
    assert render_chat(FALLBACK_TEMPLATE, DIALOGUE[:2], tokens=tokens) == "user: Is the shop open?\nassistant: Yes, until noon.</s>\n"
    assert render_chat(FALLBACK_TEMPLATE, DIALOGUE[:1], add_generation_prompt=True, tokens=tokens) == (
        "user: Is the shop open?\nassistant:")
    assert render_chat(FALLBACK_TEMPLATE, DIALOGUE[:2]) == "user: Is the shop open?\nassistant: Yes, until noon.\n"  # no eos known


def test_render_matches_transformers() -> None:
    pytest.importorskip("transformers")
    try:
        from transformers.utils.chat_template_utils import render_jinja_template
    except ImportError:
        pytest.skip("this transformers has no render_jinja_template")
    tokens = {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    for template in (CHATML, FALLBACK_TEMPLATE):
        for messages, prompt in ((DIALOGUE, False), (DIALOGUE[:3], True)):
            (theirs,), _ = render_jinja_template(conversations=[messages], chat_template=template, add_generation_prompt=prompt,
                                                 **tokens)
            assert render_chat(template, messages, add_generation_prompt=prompt, tokens=tokens) == theirs


# -- assistant spans ------------------------------------------------------------------------------------


def test_assistant_spans_cover_each_answer_and_its_end_marker() -> None:
    text, spans = assistant_spans(CHATML, DIALOGUE)
    assert text == render_chat(CHATML, DIALOGUE)
    assert [text[start:end] for start, end in spans] == ["Yes, until noon.<|im_end|>\n", "Closed on Sundays.<|im_end|>\n"]
    assert text[: spans[0][0]].endswith("<|im_start|>assistant\n")
    assert text.startswith("<|im_start|>system\nYou are a helpful assistant.")  # the injected default system prompt


def test_assistant_spans_without_assistant_messages() -> None:
    text, spans = assistant_spans(CHATML, DIALOGUE[:1])
    assert spans == [] and text.endswith("Is the shop open?<|im_end|>\n")


def test_assistant_spans_fallback_template() -> None:
    text, spans = assistant_spans(FALLBACK_TEMPLATE, DIALOGUE, {"eos_token": "</s>"})
    assert [text[start:end] for start, end in spans] == [" Yes, until noon.</s>\n", " Closed on Sundays.</s>\n"]


def test_assistant_spans_refuse_a_template_that_rewrites_earlier_turns() -> None:
    # marks the last message, so a prefix renders differently from the same turns inside the whole
    template = "{% for m in messages %}{% if loop.last %}[last] {% endif %}{{ m['content'] }}\n{% endfor %}"
    with pytest.raises(DataError, match="not a prefix"):
        assistant_spans(template, DIALOGUE)
