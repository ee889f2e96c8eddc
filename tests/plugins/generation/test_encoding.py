"""Tokenisation of the ``generation`` task: completion-only loss masks, prompt ids, lengths.

A tiny byte-level BPE tokenizer is trained here on sentences written for this test, with the
ChatML special tokens; the model folder holds a SmolLM2-like ``chat_template.jinja``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from assistant_builder.errors import DataError
from assistant_builder.toolkit.chat import FALLBACK_TEMPLATE
from assistant_builder_tasks.generation.data import Conversation, GenerationFields, Message, parse_record
from assistant_builder_tasks.generation.encoding import (
    ChatFormat, encode_conversation, encode_conversations, long_examples_finding,
)

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
          "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
          "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")
SENTENCES = [
    "The kettle clicks off when the water boils.",
    "Press and hold the red button for five seconds to reset the router.",
    "Our bakery opens at seven and closes at noon on Sundays.",
    "You can return a parcel within thirty days if it is unopened.",
    "The blue bicycle has a flat tyre and a squeaky bell.",
    "system user assistant: How do I reset it? Hold the red button. Thanks! You are welcome.",
    "Ça coûte cinq euros, merci beaucoup.",
]


def _tokenizer(post_processor: object | None = None) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train_from_iterator(SENTENCES * 3, trainer)
    if post_processor is not None:
        tokenizer.post_processor = post_processor
    return tokenizer


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return _tokenizer(processors.ByteLevel(trim_offsets=True))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, tokenizer: Tokenizer) -> Path:
    folder = tmp_path_factory.mktemp("chatml-model")
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "chat_template.jinja").write_text(CHATML, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>", "unk_token": "<|endoftext|>"}))
    return folder


@pytest.fixture(scope="module")
def chat_format(model_dir: Path) -> ChatFormat:
    return ChatFormat.from_model_dir(model_dir)


def _conversation(*turns: tuple[str, str], source: str = "train.jsonl:1") -> Conversation:
    row = {"messages": [{"role": role, "content": content} for role, content in turns]}
    return parse_record(row, source, GenerationFields())


def _targets(tokenizer: Tokenizer, input_ids: list[int], mask: list[int]) -> str:
    return tokenizer.decode([i for i, m in zip(input_ids, mask) if m], skip_special_tokens=False)


def test_chat_format_from_model_dir(chat_format: ChatFormat) -> None:
    assert chat_format.has_template and chat_format.template == CHATML
    assert chat_format.eos_token == "<|im_end|>"
    assert chat_format.prompt_text([Message("user", "Hi")]) == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


def test_loss_mask_covers_the_answer_and_its_end_marker_only(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversation = parse_record({"prompt": "How do I reset it?", "completion": "Hold the red button."}, "train.jsonl:1",
                                GenerationFields())
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    assert len(encoded.loss_mask) == len(encoded.input_ids)
    # what the template writes after the content up to the next message (<|im_end|>\n) is a target too: the model learns to stop
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == "Hold the red button.<|im_end|>\n"
    prompt = tokenizer.decode([i for i, m in zip(encoded.input_ids, encoded.loss_mask) if not m], skip_special_tokens=False)
    assert prompt == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHow do I reset it?"
                      "<|im_end|>\n<|im_start|>assistant\n")
    # the targets are one contiguous run at the end
    first = encoded.loss_mask.index(1)
    assert encoded.loss_mask == [0] * first + [1] * (len(encoded.loss_mask) - first)


def test_prompt_ids_are_the_rendered_prompt_and_a_prefix(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversation = _conversation(("user", "How do I reset it?"), ("assistant", "Hold the red button."))
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    expected = tokenizer.encode(chat_format.prompt_text(conversation.prompt), add_special_tokens=False).ids
    assert encoded.prompt_ids == expected
    assert encoded.prompt_is_prefix  # the special tokens stop BPE merges across the boundary
    assert encoded.loss_mask.index(1) == len(encoded.prompt_ids)  # the loss starts right where generation starts


def test_multi_turn_masks_every_assistant_turn_and_no_user_or_system(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversation = _conversation(("system", "You sell bicycles."), ("user", "Is the blue bicycle ready?"),
                                 ("assistant", "It has a flat tyre."), ("user", "Thanks!"), ("assistant", "You are welcome."))
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == "It has a flat tyre.<|im_end|>\nYou are welcome.<|im_end|>\n"
    others = tokenizer.decode([i for i, m in zip(encoded.input_ids, encoded.loss_mask) if not m], skip_special_tokens=False)
    assert others == ("<|im_start|>system\nYou sell bicycles.<|im_end|>\n<|im_start|>user\nIs the blue bicycle ready?<|im_end|>\n"
                      "<|im_start|>assistant\n<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\n")
    # the prompt is everything before the last answer, with the generation prompt
    assert tokenizer.decode(encoded.prompt_ids, skip_special_tokens=False).endswith("Thanks!<|im_end|>\n<|im_start|>assistant\n")


def test_non_ascii_answer_offsets(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversation = _conversation(("user", "Combien ?"), ("assistant", "Ça coûte cinq euros €."))
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == "Ça coûte cinq euros €.<|im_end|>\n"


def test_conversational_prompt_completion(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    row = {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "When do you open?"}],
           "completion": [{"role": "assistant", "content": "At seven."}]}
    conversation = parse_record(row, "train.jsonl:4", GenerationFields())
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == "At seven.<|im_end|>\n"
    assert "You are a helpful assistant." not in tokenizer.decode(encoded.input_ids, skip_special_tokens=False)  # a system is given


def test_text_kind_masks_everything_and_ends_with_eos(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversation = parse_record({"text": "The kettle clicks off when the water boils."}, "lm.jsonl:1", GenerationFields())
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    eos = tokenizer.token_to_id("<|im_end|>")
    assert encoded.input_ids[-1] == eos and encoded.input_ids.count(eos) == 1
    assert encoded.loss_mask == [1] * len(encoded.input_ids)
    assert encoded.prompt_ids == []
    assert tokenizer.decode(encoded.input_ids[:-1]) == "The kettle clicks off when the water boils."


def test_text_kind_keeps_the_special_tokens_of_the_post_processor(chat_format: ChatFormat) -> None:
    tokenizer = _tokenizer()
    start = tokenizer.token_to_id("<|endoftext|>")
    tokenizer.post_processor = processors.TemplateProcessing(single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", start)])
    encoded = encode_conversation(Conversation((), "text", "lm.jsonl:1", "Our bakery opens at seven."), tokenizer, chat_format)
    assert encoded.input_ids[0] == start and encoded.input_ids[-1] == tokenizer.token_to_id("<|im_end|>")
    assert all(encoded.loss_mask)


def test_fallback_template_for_a_model_without_one(tmp_path: Path, tokenizer: Tokenizer) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "<|endoftext|>"}}))
    chat_format = ChatFormat.from_model_dir(tmp_path)
    assert not chat_format.has_template and chat_format.template == FALLBACK_TEMPLATE
    conversation = _conversation(("user", "How do I reset it?"), ("assistant", "Hold the red button."))
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    assert tokenizer.decode(encoded.input_ids, skip_special_tokens=False) == (
        "user: How do I reset it?\nassistant: Hold the red button.<|endoftext|>\n")
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == " Hold the red button.<|endoftext|>\n"
    assert tokenizer.decode(encoded.prompt_ids) == "user: How do I reset it?\nassistant:"
    assert encoded.prompt_is_prefix  # the answer's leading space is written with the answer, not the prompt


def test_a_prompt_ending_in_a_space_is_not_a_token_prefix(tokenizer: Tokenizer) -> None:
    """Documented behaviour: the whole conversation's tokenisation is kept for training; the prompt
    tokenised alone then ends in a lone space token, which ``prompt_is_prefix`` reports."""
    template = ("{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}")
    chat_format = ChatFormat(template, {}, None, True)
    conversation = _conversation(("user", "How do I reset it?"), ("assistant", "Hold the red button."))
    encoded = encode_conversation(conversation, tokenizer, chat_format)
    full = tokenizer.encode("user: How do I reset it?\nassistant: Hold the red button.\n", add_special_tokens=False).ids
    assert encoded.input_ids == full
    assert not encoded.prompt_is_prefix
    assert tokenizer.decode(encoded.prompt_ids[-1:]) == " "
    # the ByteLevel post-processor trims the space off " Hold", so that token starts inside the answer: a target
    assert _targets(tokenizer, encoded.input_ids, encoded.loss_mask) == " Hold the red button.\n"


def test_encode_conversations_leaves_long_examples_out(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    short = _conversation(("user", "Hi"), ("assistant", "Hello."), source="train.jsonl:1")
    long = _conversation(("user", "Tell me about the bakery. " * 20), ("assistant", "It opens at seven."), source="train.jsonl:2")
    also_short = _conversation(("user", "Open?"), ("assistant", "Yes."), source="train.jsonl:3")
    lengths = [len(encode_conversation(c, tokenizer, chat_format).input_ids) for c in (short, long, also_short)]
    max_length = max(lengths[0], lengths[2])
    assert lengths[1] > max_length
    features, too_long = encode_conversations([short, long, also_short], tokenizer, chat_format, max_length)
    assert too_long == [1]
    assert [f["example_index"] for f in features] == [0, 2]
    assert set(features[0]) == {"input_ids", "loss_mask", "prompt_ids", "example_index"}
    assert features[1]["input_ids"] == encode_conversation(also_short, tokenizer, chat_format).input_ids  # never truncated
    assert all(len(f["input_ids"]) <= max_length for f in features)


def test_a_conversation_without_target_tokens_is_an_error(tokenizer: Tokenizer) -> None:
    template = "{% for m in messages %}{% if m['role'] != 'assistant' %}{{ m['content'] + '\\n' }}{% endif %}{% endfor %}"
    chat_format = ChatFormat(template, {}, None, True)
    conversation = _conversation(("user", "Hi"), ("assistant", "Hello."), source="train.jsonl:7")
    with pytest.raises(DataError, match=r"^train\.jsonl:7: no response token"):
        encode_conversations([conversation], tokenizer, chat_format, 100)


def test_long_examples_finding(tokenizer: Tokenizer, chat_format: ChatFormat) -> None:
    conversations = [_conversation(("user", "Hi"), ("assistant", "Hello."), source="train.jsonl:1")]
    conversations += [_conversation(("user", "The bakery. " * (10 + i)), ("assistant", "Yes."), source=f"train.jsonl:{i + 2}")
                      for i in range(7)]
    max_length = len(encode_conversation(conversations[0], tokenizer, chat_format).input_ids)
    longest = max(len(encode_conversation(c, tokenizer, chat_format).input_ids) for c in conversations)
    finding = long_examples_finding(conversations, tokenizer, chat_format, max_length, "train")
    assert finding is not None
    assert (finding.check, finding.level, finding.where, finding.count) == ("generation.too_long", "warning", "train.jsonl:2", 7)
    assert finding.message.startswith(f"7 of 8 train examples are longer than model.max_length = {max_length} tokens "
                                      f"(longest: {longest}) and are left out")
    assert "never truncated" in finding.message
    assert finding.related == tuple(f"train.jsonl:{n}" for n in range(3, 8))
    _, too_long = encode_conversations(conversations, tokenizer, chat_format, max_length)
    assert len(too_long) == finding.count
    assert long_examples_finding(conversations, tokenizer, chat_format, longest, "validation") is None
