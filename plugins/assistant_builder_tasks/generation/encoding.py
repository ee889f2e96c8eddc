"""Tokenise conversations for supervised fine-tuning, with the loss on the responses only.

A conversation is rendered with the model's chat template (``toolkit/chat.py``) and tokenised
without the tokenizer's own special tokens (the template writes them). ``loss_mask`` is 1 on the
tokens of each assistant message and of what the template writes after it (its end marker: the
model learns to stop), 0 elsewhere; a token that starts inside an assistant span counts. Plain
``text`` examples are tokenised as the tokenizer does by default, the end-of-sequence token
appended, every token a target. ``prompt_ids`` are the tokens of the prompt with the generation
prompt (what generation starts from).

Training keeps the tokenisation of the whole conversation; ``prompt_ids`` are the prompt text
tokenised alone. The two agree on the prompt's tokens (``EncodedConversation.prompt_is_prefix``)
when no BPE merge crosses the end of the generation prompt: the special tokens of a ChatML-style
template (``<|im_start|>assistant\n``) and the fallback template's ``assistant:`` (its space goes
with the answer) are such boundaries. A template whose generation prompt ends in a space merges it
into the answer's first word in the full text, so the prompt alone ends in a lone space token the
model never saw before an answer, and that first word's token starts before the answer's span (it
is then no target unless the tokenizer trims spaces off its offsets, as a ``ByteLevel`` post-processor
does). Nothing is re-tokenised to hide it: check ``prompt_is_prefix`` to catch it.

An example longer than ``model.max_length`` is left out, never truncated: a truncated completion
would teach the model to stop mid-sentence. ``long_examples_finding`` tells the user how many.
Torch-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant_builder.contracts import Finding
from assistant_builder.errors import DataError
from assistant_builder.toolkit.chat import FALLBACK_TEMPLATE, assistant_spans, load_chat_template, render_chat, special_tokens
from assistant_builder_tasks.generation.data import Conversation, Message


@dataclass(frozen=True)
class ChatFormat:
    """How conversations are written for one model: its template and the special tokens it uses."""

    template: str
    tokens: dict[str, str]
    eos_token: str | None
    has_template: bool

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> ChatFormat:
        """The model folder's template (else ``FALLBACK_TEMPLATE``, ``has_template`` False) and special tokens."""
        template = load_chat_template(model_dir)
        tokens = special_tokens(model_dir)
        return cls(template or FALLBACK_TEMPLATE, tokens, tokens.get("eos_token"), template is not None)

    def prompt_text(self, messages: Sequence[Message]) -> str:
        """The prompt as the model sees it before it answers (with the generation prompt)."""
        return render_chat(self.template, _dicts(messages), add_generation_prompt=True, tokens=self.tokens)


@dataclass(frozen=True)
class EncodedConversation:
    """One tokenised example: ``input_ids``, its ``loss_mask`` (1 = a target token, same length) and
    the ``prompt_ids`` generation starts from (empty for plain text)."""

    input_ids: list[int]
    loss_mask: list[int]
    prompt_ids: list[int]

    @property
    def prompt_is_prefix(self) -> bool:
        """True when the whole conversation's tokens start with ``prompt_ids`` (see the module docstring)."""
        return self.input_ids[: len(self.prompt_ids)] == self.prompt_ids


def _dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def encode_conversation(conversation: Conversation, tokenizer: Any, chat_format: ChatFormat) -> EncodedConversation:
    """Token ids, loss mask and prompt ids of one conversation (see the module docstring)."""
    if conversation.kind == "text":
        encoding = tokenizer.encode(conversation.text or "", add_special_tokens=True)
        ids = list(encoding.ids)
        eos = tokenizer.token_to_id(chat_format.eos_token) if chat_format.eos_token else None
        if eos is not None and (not ids or ids[-1] != eos):
            ids.append(eos)
        return EncodedConversation(ids, [1] * len(ids), [])
    text, spans = assistant_spans(chat_format.template, _dicts(conversation.messages), chat_format.tokens)
    encoding = tokenizer.encode(text, add_special_tokens=False)
    mask = [int(any(start <= begin < end for start, end in spans)) for begin, _ in encoding.offsets]
    prompt_ids = tokenizer.encode(chat_format.prompt_text(conversation.prompt), add_special_tokens=False).ids
    return EncodedConversation(list(encoding.ids), mask, list(prompt_ids))


def encode_conversations(conversations: Sequence[Conversation], tokenizer: Any, chat_format: ChatFormat,
                         max_length: int) -> tuple[list[dict[str, Any]], list[int]]:
    """Features (``input_ids``, ``loss_mask``, ``prompt_ids``, ``example_index``) of the conversations
    that fit in ``max_length`` tokens, and the indices of those left out as too long. A conversation
    with no target token (nothing to learn) is a ``DataError`` naming its source."""
    features, too_long = [], []
    for index, conversation in enumerate(conversations):
        encoded = encode_conversation(conversation, tokenizer, chat_format)
        if len(encoded.input_ids) > max_length:
            too_long.append(index)
            continue
        if not any(encoded.loss_mask[1:]):
            raise DataError(f"{conversation.source}: no response token to learn from after formatting with the chat template",
                            hint="check that the assistant message is not empty and the template writes it")
        features.append({"input_ids": encoded.input_ids, "loss_mask": encoded.loss_mask, "prompt_ids": encoded.prompt_ids,
                         "example_index": index})
    return features, too_long


def long_examples_finding(conversations: Sequence[Conversation], tokenizer: Any, chat_format: ChatFormat, max_length: int,
                          split: str) -> Finding | None:
    """A ``generation.too_long`` warning counting the examples of ``split`` longer than ``max_length`` tokens; ``None`` if none."""
    lengths = [(len(encode_conversation(c, tokenizer, chat_format).input_ids), c.source) for c in conversations]
    long = [(n, source) for n, source in lengths if n > max_length]
    if not long:
        return None
    longest = max(n for n, _ in long)
    return Finding("generation.too_long", "warning", long[0][1],
                   f"{len(long)} of {len(conversations)} {split} examples are longer than model.max_length = {max_length} tokens "
                   f"(longest: {longest}) and are left out of training and validation, never truncated; raise model.max_length "
                   "or shorten them", tuple(source for _, source in long[1:6]), len(long))
