"""Causal-LM export variants (fp32, int8, int4 with builder options) against PyTorch: answers and speed.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/genai_variants.py                       # SmolLM2-135M-Instruct, default variants
    HF_HUB_OFFLINE=1 .venv/bin/python bench/genai_variants.py --variants fp32=fp32 int8-acc1=int8:accuracy_level=1
    HF_HUB_OFFLINE=1 .venv/bin/python bench/genai_variants.py --work /tmp/genai-variants   # keep (and reuse) the builds

Each variant is built from the Hugging Face folder (``--model``: a folder or a bundled GGUF alias,
default ``smollm2-135m-instruct``) with onnxruntime-genai's model builder, as the ``onnx``
exporter runs it (``run_builder``). A variant is ``NAME=PRECISION[:KEY=VALUE,KEY=VALUE...]``
(builder ``--extra_options``). The prompts below (short factual questions and one-word replies,
written for this benchmark) go through the chat template; PyTorch's greedy answer
(``generate(do_sample=False)``, float32) is the reference. Per variant, at batch 1, greedy:

* ``exact``: answers whose tokens equal PyTorch's; ``prefix``: mean share of PyTorch's answer
  tokens reproduced before the first difference; ``vs fp32``: exact matches with the fp32 export;
* ``top-1`` and ``nll``, with PyTorch's answers fed in (teacher forcing, no drift): the share of
  answer positions where the variant's most likely token is PyTorch's, and the mean negative
  log-likelihood per answer token (the exporter's loss runner; PyTorch's own value is printed);
* ``ttft ms`` (median time to first token, prefill included), ``tok/s`` (median decoding rate
  after the first token) and the folder size.

Variants run alternately: for every prompt each variant generates once, in an order rotated per
prompt, so background load hits them alike. Prints a Markdown table and each variant's answers
that differ from PyTorch's (``--show``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

PROMPTS = [
    "What is the capital of France?",
    "Reply with one word: what colour is the sky on a clear day?",
    "How many legs does a spider have?",
    "Reply with one word: what is the opposite of hot?",
    "Name the largest planet in our solar system.",
    "What is 12 plus 30?",
    "Translate 'good morning' into Spanish.",
    "Reply with one word: which animal says 'moo'?",
    "Write one short sentence about the sea.",
    "Who wrote the play Romeo and Juliet?",
    "Reply with yes or no: is water wet?",
    "List three fruits, separated by commas.",
]

DEFAULT_VARIANTS = [
    "fp32=fp32",
    "int8-default=int8",
    "int8-acc1=int8:accuracy_level=1",
    "int8-lm-fp32=int8:nodes_to_exclude=/lm_head/MatMul",
    "int8-asym=int8:is_symmetric=false",
    "int8-b128=int8:block_size=128",
    "int4-default=int4",
    "int4-asym=int4:is_symmetric=false",
    "int4-b128=int4:block_size=128",
    "int4-lm8=int4:shared_embeddings=false,matmul_mixed_precision=last_matmul:int8",
    "int4-kquant-mixed=int4:algo_config=k_quant,matmul_mixed_precision=last_matmul:int8;mixed_layers:int8",
    "int4-asym-kquant-mixed=int4:is_symmetric=false,algo_config=k_quant,matmul_mixed_precision=last_matmul:int8;mixed_layers:int8",
]


def parse_variant(spec: str) -> tuple[str, str, dict[str, str]]:
    """``NAME=PRECISION[:K=V,K=V]`` -> name, precision, options (``;`` inside a value stands for ``,``)."""
    name, _, rest = spec.partition("=")
    precision, _, options = rest.partition(":")
    pairs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        pairs[key] = value.replace(";", ",")
    if not name or precision not in ("fp32", "fp16", "int8", "int4"):
        raise SystemExit(f"bad variant {spec!r}: expected NAME=PRECISION[:KEY=VALUE,...]")
    return name, precision, pairs


def model_folder(model: str) -> Path:
    if Path(model).is_dir():
        return Path(model)
    from assistant_builder.gguf_models import ensure_converted

    return ensure_converted(model)


def chat_prompts(folder: Path) -> list[list[int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = []
    for question in PROMPTS:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True)
        encoded.append(list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids))
    return encoded


def torch_answers(folder: Path, prompts: list[list[int]], max_new_tokens: int) -> tuple[list[list[int]], float]:
    """PyTorch's greedy answers (without the end-of-sequence id) and their mean NLL per token under PyTorch."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    answers, nll, count = [], 0.0, 0
    with torch.no_grad():
        for prompt in prompts:
            out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                                 max_new_tokens=max_new_tokens, do_sample=False)[0, len(prompt):].tolist()
            cut = next((i for i, t in enumerate(out) if t in eos_ids), len(out))
            answer = out[:cut]
            answers.append(answer)
            if answer:
                ids = torch.tensor([prompt + answer])
                logits = model(ids).logits[0, len(prompt) - 1:-1].double()
                nll += float(torch.nn.functional.cross_entropy(logits, ids[0, len(prompt):], reduction="sum"))
                count += len(answer)
    return answers, nll / max(count, 1)


def teacher_forced(folder: Path, prompts: list[list[int]], reference: list[list[int]]) -> tuple[float, float]:
    """PyTorch's answers fed to the variant: mean NLL per answer token (the exporter's loss runner) and the
    share of answer positions where the variant's most likely next token is PyTorch's (top-1 agreement)."""
    import numpy as np

    from assistant_builder.runtime.sessions import open_session
    from assistant_builder_exporters.causal_lm import _feed, causal_lm_loss_runner

    runner = causal_lm_loss_runner(folder)
    session = open_session(folder / "model.onnx")[0]
    inputs = {i.name: i for i in session.get_inputs()}
    past = [name for name in inputs if name.startswith("past_key_values.")]
    decoder = json.loads((folder / "genai_config.json").read_text())["model"]["decoder"]
    nll = agree = count = 0
    for prompt, answer in zip(prompts, reference):
        if not answer:
            continue
        ids = np.array([prompt + answer], dtype=np.int64)
        mask = np.zeros_like(ids)
        mask[0, len(prompt):] = 1
        out = runner({"input_ids": ids, "attention_mask": np.ones_like(ids), "loss_mask": mask})
        nll += float(out["nll_sum"][0])
        count += int(out["token_count"][0])
        feed = _feed(inputs, past, ids, np.ones_like(ids), decoder["num_key_value_heads"], decoder["head_size"])
        logits = session.run(["logits"], feed)[0][0, len(prompt) - 1:-1]
        agree += int((logits.argmax(axis=1) == np.array(answer)).sum())
    return nll / max(count, 1), agree / max(count, 1)


def folder_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / 1e6


def common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct", help="Hugging Face folder or bundled GGUF alias")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, help="NAME=PRECISION[:KEY=VALUE,...]")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--work", type=Path, default=None, help="where builds go (reused when present); default: a temp folder")
    parser.add_argument("--show", action="store_true", help="print the answers that differ from PyTorch's")
    args = parser.parse_args()

    import numpy as np

    from assistant_builder.runtime.generation import GenaiModel, GenerationSettings, timed_generate
    from assistant_builder_exporters.causal_lm import run_builder

    source = model_folder(args.model)
    variants = [parse_variant(spec) for spec in args.variants]
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        for name, precision, options in variants:
            if not (work / name / "genai_config.json").is_file():
                print(f"building {name} ({precision} {options})", file=sys.stderr, flush=True)
                run_builder(source, work / name, precision, options, cache_dir=work / ".cache")
        prompts = chat_prompts(source)
        reference, torch_nll = torch_answers(source, prompts, args.max_new_tokens)
        models, broken = {}, {}
        for name, _, _ in variants:
            try:
                models[name] = GenaiModel(work / name)
            except Exception as error:  # noqa: BLE001 - a variant the builder wrote wrongly is a result too
                broken[name] = str(error).splitlines()[0][-160:]
        variants = [v for v in variants if v[0] in models]
        settings = GenerationSettings(max_new_tokens=args.max_new_tokens)
        answers: dict[str, list[list[int]]] = {name: [] for name in models}
        ttft: dict[str, list[float]] = {name: [] for name in models}
        rate: dict[str, list[float]] = {name: [] for name in models}
        names = list(models)
        for index, prompt in enumerate(prompts):
            order = names[index % len(names):] + names[: index % len(names)]
            for name in order:
                ids, timing = timed_generate(models[name], prompt, settings)
                answers[name].append(ids)
                ttft[name].append(timing.ttft_ms)
                if timing.tokens > 1:
                    rate[name].append(timing.tokens_per_second)
        rows = []
        fp32 = answers.get("fp32")
        for name, precision, options in variants:
            nll, top1 = teacher_forced(work / name, prompts, reference)
            got = answers[name]
            exact = sum(a == r for a, r in zip(got, reference))
            prefix = statistics.mean(common_prefix(a, r) / max(len(r), 1) for a, r in zip(got, reference))
            same_fp32 = sum(a == b for a, b in zip(got, fp32)) if fp32 is not None else None
            rows.append((name, precision, options, exact, prefix, same_fp32, top1, nll,
                         statistics.median(ttft[name]), statistics.median(rate[name]) if rate[name] else 0.0,
                         folder_mb(work / name)))
        tokenizer: Any = models[names[0]].tokenizer
        print(f"\nmodel: {source.name}; {len(prompts)} prompts, greedy, at most {args.max_new_tokens} new tokens; "
              f"PyTorch nll/token of its own answers: {torch_nll:.4f}\n")
        print("| variant | precision | builder options | exact | prefix | vs fp32 | top-1 | nll/token | ttft ms | tok/s | MB |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, precision, options, exact, prefix, same, top1, nll, first, speed, size in rows:
            opts = " ".join(f"{k}={v}" for k, v in options.items()) or "-"
            print(f"| {name} | {precision} | {opts} | {exact}/{len(prompts)} | {prefix:.2f} | "
                  f"{'-' if same is None else f'{same}/{len(prompts)}'} | {top1:.3f} | {nll:.4f} | {first:.1f} | {speed:.1f} | {size:.0f} |")
        for name, error in broken.items():
            print(f"| {name} | fails to load: {error} |")
        if args.show:
            for name in names:
                for question, got, ref in zip(PROMPTS, answers[name], reference):
                    if got != ref:
                        print(f"\n[{name}] {question}\n  torch: {tokenizer.decode(ref)!r}\n  {name}: {tokenizer.decode(got)!r}")


if __name__ == "__main__":
    main()
