"""Generative answers: supervised fine-tuning of a causal language model on prompt / response pairs.

Reads the dataset formats TRL's ``SFTTrainer`` takes (``messages``, ``prompt``/``completion``,
``text``; ``data.py``), formats them with the model's own chat template and masks the loss to the
assistant's tokens (``encoding.py``; plain ``text``: every token). Training early-stops on
validation loss (``neg_loss``); the final evaluation also generates answers for a sample of
validation prompts and scores them (exact match, token F1, ROUGE-L; ``metrics.py``) beside the base
model's answers. Implements the optional ``GenerativeTask`` protocol (``assistant_builder.contracts``):
exports are verified on generated answers. Torch-free at import time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field

from assistant_builder.contracts import (Agreement, CheckData, ComponentOptions, Evaluation, ExampleView, Feature, FeatureOutputs, Finding,
                                         Generator, StoreRecord, Task, TaskData)
from assistant_builder.errors import DataError
from assistant_builder.toolkit.agreement import example_agreement, overlap_agreement
from assistant_builder.toolkit.answer_metrics import f1_score
from assistant_builder.toolkit.collate import collate
from assistant_builder_tasks.generation.data import Conversation, GenerationFields, Message, load_split, parse_generation_input
from assistant_builder_tasks.generation.metrics import METRIC_NAMES

INPUTS = ("input_ids", "attention_mask", "loss_mask")


class GenerationOptions(ComponentOptions):
    messages_field: str = Field("messages", min_length=1, description="column of conversations: lists of {role, content} messages")
    prompt_field: str = Field("prompt", min_length=1, description="column of prompts (a string, or a list of messages)")
    completion_field: str = Field("completion", min_length=1, description="column of completions (a string, or a list of assistant messages)")
    text_field: str = Field("text", min_length=1, description="column of plain text (language modelling: loss on every token)")
    system_prompt: str | None = Field(None, description="a system message put before every prompt that has none, in training, "
                                                        "evaluation and at run time (the model's template may add its own otherwise)")
    max_new_tokens: int = Field(128, ge=1, le=4096, description="most tokens generated per answer (evaluation, export verification, "
                                                                 "and the runtime's default)")
    eval_samples: int = Field(32, ge=0, le=100000, description="validation prompts answered by generation in the final evaluation and "
                                                               "in each export's verification (answers take seconds each on a CPU); "
                                                               "0: loss only, and exports are verified on loss alone")
    compare_base: bool = Field(True, description="also answer those prompts with the untouched base model, shown beside the "
                                                 "fine-tuned answers in report.md")
    temperature: float = Field(0.0, ge=0.0, le=5.0, description="the runtime's default sampling temperature (0: greedy)")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="the runtime's default nucleus sampling mass")
    stop: list[str] = Field(default_factory=list, description="the runtime's default stop sequences (the answer ends before them)")
    chat_template: str | None = Field(None, description="a Jinja chat template to use instead of the model's own "
                                                        "(chat_template.jinja or tokenizer_config.json); unset: the model's, or a "
                                                        "plain 'role: content' layout for a model without one")
    special_tokens: dict[str, str] = Field(default_factory=dict, description="set by the run from the model: bos/eos/pad tokens the "
                                                                              "template may use")
    eos_token_ids: list[int] = Field(default_factory=list, description="set by the run from the model: the ids that end an answer")


class GenerationTask(Task):
    """Teach a causal LM to answer prompts the way the training responses do."""

    name = "generation"
    description = "generative answers: supervised fine-tuning of a causal LM (chat template, loss on the responses)"
    Options = GenerationOptions
    labelling_kind = "response"
    primary_metric = "neg_loss"
    metric_names = METRIC_NAMES
    output_names = ("nll_sum", "token_count")
    data_formats = ("jsonl", "csv", "parquet", "files", "hf_disk")
    predict_example = '"How do I reset my password?"'
    #: agreement of the exported model's greedy answers with PyTorch's, in answer words (token F1)
    min_agreement = 0.9
    export_metric = "token_f1"
    default_min_steps = 0
    #: LoRA on a causal LM takes a tenth of the encoder adapters' rate (TRL's and peft's examples use 1e-4 to 2e-4)
    learning_rates = {"lora": 2e-4, "full": 2e-5}
    long_inputs = "truncate"

    # -- data ---------------------------------------------------------------------------------------

    @staticmethod
    def fields(options: GenerationOptions) -> GenerationFields:
        return GenerationFields(options.messages_field, options.prompt_field, options.completion_field, options.text_field)

    def load_data(self, data: Any, options: GenerationOptions) -> TaskData:  # type: ignore[override]
        train, validation, sources = load_split(data, self.fields(options))
        return TaskData(train, validation, [], sources)

    def parse_input(self, raw: Any) -> Conversation:
        return parse_generation_input(raw)

    def example_view(self, example: Conversation) -> ExampleView:
        if example.kind == "text":
            return ExampleView(example.text or "", None, (), example.source)
        prompt = "\n".join(f"{m.role}: {m.content}" for m in example.prompt)
        return ExampleView(prompt, example.completion, (), example.source)

    def check_data(self, data: Any, options: GenerationOptions, context: Any) -> list[Finding]:  # type: ignore[override]
        """Examples longer than ``model.max_length`` (left out of training, never truncated), per split."""
        if context.tokenizer is None or (context.model_dir is None and options.chat_template is None):
            return []
        from assistant_builder_tasks.generation.encoding import long_examples_finding

        loaded = self.load_data(data, options)
        chat_format = self.chat_format(options, context.model_dir)
        findings = []
        for split, examples in (("train", loaded.train), ("validation", loaded.validation)):
            finding = long_examples_finding([self._with_system(e, options) for e in examples], _untruncated(context.tokenizer),
                                            chat_format, context.max_length, split)
            if finding is not None:
                findings.append(finding)
        return findings

    # -- the model ------------------------------------------------------------------------------------

    def prepare_for_model(self, options: GenerationOptions, base_model: Path, max_length: int) -> GenerationOptions:
        """Refuse a base model that is not a causal LM (``ModelError``); settle its chat template (the
        text itself, so every bundle formats prompts exactly as training did), special tokens and end ids."""
        from assistant_builder.toolkit.chat import FALLBACK_TEMPLATE, load_chat_template, special_tokens
        from assistant_builder_tasks.generation.base_model import check_causal_lm, end_of_sequence_ids

        check_causal_lm(base_model, max_length)
        tokens = {**special_tokens(base_model), **options.special_tokens}
        eos = options.eos_token_ids or end_of_sequence_ids(base_model, tokens.get("eos_token"))
        template = options.chat_template or load_chat_template(base_model) or FALLBACK_TEMPLATE
        return options.model_copy(update={"special_tokens": tokens, "eos_token_ids": eos, "chat_template": template})

    @staticmethod
    def chat_format(options: GenerationOptions, model_dir: Path | None = None) -> Any:
        """The ``ChatFormat`` of ``options`` (as ``prepare_for_model`` settled them), else of the model folder."""
        from assistant_builder.toolkit.chat import FALLBACK_TEMPLATE, special_tokens
        from assistant_builder_tasks.generation.encoding import ChatFormat

        if options.chat_template is None and model_dir is not None:
            found = ChatFormat.from_model_dir(model_dir)
            tokens = {**found.tokens, **options.special_tokens}
            return replace(found, tokens=tokens, eos_token=tokens.get("eos_token", found.eos_token))
        tokens = dict(options.special_tokens) or (special_tokens(model_dir) if model_dir is not None else {})
        template = options.chat_template or FALLBACK_TEMPLATE
        return ChatFormat(template, tokens, tokens.get("eos_token"), options.chat_template is not None)

    def resolve_options(self, options: GenerationOptions, data: TaskData, tokenizer: Any) -> GenerationOptions:  # type: ignore[override]
        return options

    def encode(self, examples: Sequence[Conversation], tokenizer: Any, labels: Sequence[str], options: GenerationOptions,
               max_length: int) -> list[Feature]:  # type: ignore[override]
        """Token ids, completion-only ``loss_mask`` and ``prompt_ids`` per example, formatted with the
        chat template ``prepare_for_model`` settled; examples longer than ``max_length`` get no
        feature (``check_data`` reports them)."""
        from assistant_builder_tasks.generation.encoding import encode_conversations

        features, _ = encode_conversations([self._with_system(e, options) for e in examples], _untruncated(tokenizer),
                                           self.chat_format(options), max_length)
        return features

    @staticmethod
    def _with_system(example: Conversation, options: GenerationOptions) -> Conversation:
        if options.system_prompt is None or example.kind == "text" or any(m.role == "system" for m in example.messages):
            return example
        return replace(example, messages=(Message("system", options.system_prompt), *example.messages))

    def build_model(self, base_model: Path, labels: Sequence[str], options: GenerationOptions,
                    train_features: Sequence[Feature] | None = None) -> Any:  # type: ignore[override]
        from assistant_builder_tasks.generation.model import build_sft_model

        return build_sft_model(base_model)

    def save_model(self, model: Any, directory: Path, labels: Sequence[str]) -> None:
        model.save_pretrained(directory)

    def load_model(self, directory: Path) -> Any:
        from assistant_builder_tasks.generation.model import build_sft_model

        return build_sft_model(directory).eval()

    def model_input_names(self, options: ComponentOptions) -> tuple[str, ...]:
        return INPUTS

    def collate(self, features: Sequence[Feature], pad_token_id: int) -> dict[str, Any]:
        return collate(features, pad_token_id, input_keys=("loss_mask",))

    # -- predictions and scores -------------------------------------------------------------------------

    def decode(self, outputs: FeatureOutputs, features: Sequence[Feature], examples: Sequence[Conversation], labels: Sequence[str],
               options: GenerationOptions) -> list[dict[str, Any]]:  # type: ignore[override]
        """Per example its validation ``loss`` (mean NLL of its target tokens) and ``target_tokens``;
        ``None`` for an example left out as too long."""
        predictions: list[dict[str, Any]] = [{"loss": None, "target_tokens": 0} for _ in examples]
        for feature, nll, count in zip(features, outputs["nll_sum"], outputs["token_count"]):
            count = float(count)
            predictions[feature["example_index"]] = {"loss": float(nll) / max(count, 1.0), "nll_sum": float(nll), "target_tokens": int(count)}
        return predictions

    def torch_generator(self, model: Any, options: GenerationOptions) -> Generator:
        from assistant_builder_tasks.generation.model import greedy_generator

        pad = options.eos_token_ids[0] if options.eos_token_ids else 0
        return greedy_generator(model, list(options.eos_token_ids), pad)

    def add_completions(self, predictions: Sequence[dict[str, Any]], features: Sequence[Feature], examples: Sequence[Conversation],
                        generator: Generator, tokenizer: Any, options: GenerationOptions,
                        key: str = "completion") -> list[dict[str, Any]]:
        """``predictions`` with ``key`` (the generated answer, decoded with ``tokenizer``) on the first
        ``eval_samples`` examples that have a reference and a feature; the others unchanged."""
        chosen = [f for f in features if examples[f["example_index"]].completion is not None][: options.eval_samples]
        if not chosen:
            return list(predictions)
        answers = generator([f["prompt_ids"] for f in chosen], options.max_new_tokens)
        updated = [dict(p) for p in predictions]
        for feature, ids in zip(chosen, answers):
            updated[feature["example_index"]][key] = tokenizer.decode(ids, skip_special_tokens=True).strip()
        return updated

    def evaluate(self, predictions: Sequence[dict[str, Any]], examples: Sequence[Conversation],
                 labels: Sequence[str]) -> Evaluation:  # type: ignore[override]
        from assistant_builder_tasks.generation.report import evaluate_generation

        return evaluate_generation(predictions, examples)

    def prediction_key(self, prediction: dict[str, Any]) -> Any:
        return prediction.get("completion")

    def agreement(self, predictions: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]]) -> Agreement:
        """Over the examples PyTorch answered: the mean word-level F1 of each exported answer against
        PyTorch's (both empty: 1). No generated answers at all (``eval_samples = 0``): agreement of the
        rounded per-example loss, so a broken export still fails."""
        pairs = [(p.get("completion"), r["completion"]) for p, r in zip(predictions, reference) if r.get("completion") is not None]
        if not pairs:
            keys = [None if p["loss"] is None else round(p["loss"], 2) for p in predictions]
            reference_keys = [None if r["loss"] is None else round(r["loss"], 2) for r in reference]
            share = example_agreement(keys, reference_keys)
            return Agreement(share, "examples (loss to 2 decimals)", share)
        keys, reference_keys = [p or "" for p, _ in pairs], [r for _, r in pairs]
        value = overlap_agreement(keys, reference_keys, lambda a, b: 1.0 if a == b else f1_score(a, b))
        return Agreement(value, "answer words", example_agreement(keys, reference_keys))

    # -- labelling store and feedback ------------------------------------------------------------------
    feedback_fields = ("response",)

    def to_store(self, example: Conversation) -> StoreRecord:
        if example.kind == "text":
            return StoreRecord({"text": example.text or ""}, None, example.source)
        messages = [{"role": m.role, "content": m.content} for m in example.prompt]
        return StoreRecord({"messages": messages}, example.completion, example.source)

    def from_store(self, record: StoreRecord, labels: Sequence[str], options: GenerationOptions) -> Conversation:  # type: ignore[override]
        from assistant_builder_tasks.generation.data import parse_record

        messages = record.payload.get("messages")
        if not isinstance(messages, list) or not isinstance(record.gold, str) or not record.gold.strip():
            raise DataError(f"{record.source or 'store record'}: expected payload {{\"messages\": [...]}} and a non-empty response "
                            f"string as gold, got payload keys {sorted(record.payload)} and gold {record.gold!r}")
        row = {"messages": [*messages, {"role": "assistant", "content": record.gold}]}
        return parse_record(row, record.source or "store", GenerationFields())

    def prediction_gold(self, example: Conversation, prediction: dict[str, Any]) -> str:
        completion = prediction.get("completion")
        if not isinstance(completion, str) or not completion.strip():
            raise DataError("the prediction has no generated answer to confirm; send the right one as \"response\"")
        return completion

    def feedback_gold(self, example: Conversation, prediction: dict[str, Any], correction: Mapping[str, Any], labels: Sequence[str],
                      options: GenerationOptions) -> str:  # type: ignore[override]
        """``{"response": "the answer it should have given"}`` (a non-empty string), or ``{"correct": true}``."""
        if "response" in correction:
            value = correction["response"]
            if not isinstance(value, str) or not value.strip():
                raise DataError(f"response: expected the answer the assistant should have given (a non-empty string), got {value!r}")
            return value
        return super().feedback_gold(example, prediction, correction, labels, options)

    def sample_data(self, directory: Path) -> dict[str, Any]:
        from assistant_builder_tasks.generation.samples import write_samples

        return write_samples(directory)

    def check_examples(self, data: Any, options: GenerationOptions) -> CheckData:  # type: ignore[override]
        loaded = self.load_data(data, options)
        return CheckData([self.example_view(e) for e in loaded.train], [self.example_view(e) for e in loaded.validation],
                         held_out=data.validation is None)


def _untruncated(tokenizer: Any) -> Any:
    """A copy of ``tokenizer`` without truncation or padding: a long example must be seen whole to be left out, never cut."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(tokenizer.to_str())
    copy.no_truncation()
    copy.no_padding()
    return copy
