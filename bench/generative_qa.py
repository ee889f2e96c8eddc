"""Generative QA: SmolLM2-135M-Instruct answering SQuAD-style questions, before and after LoRA SFT,
through the product and through TRL's ``SFTTrainer``; and the torch-free int8 runtime's speed.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/generative_qa.py --train-questions 1000 --eval-questions 300
    HF_HUB_OFFLINE=1 .venv/bin/python bench/generative_qa.py --systems ours          # no TRL (pip install trl)

The task is extractive QA cast as generation: the user turn is the paragraph, then ``Question: ...``
and an instruction to answer with a short phrase from the text; the reference is SQuAD's (first)
answer. Training questions are a seeded sample of SQuAD v1.1 train (``../shared/data/squad``);
evaluation questions a seeded sample of XQuAD-en (``../shared/data/xquad_en``), the same for every
system; questions whose formatted conversation is longer than ``--max-length`` tokens are left out of
both samples before they are cut to size (so no system drops or truncates any). Scores are the official SQuAD v1.1 token F1 and exact match of the greedy answer (fractions).

Systems, each in its own process (peak memory is that process's maximum RSS), run one after the
other in the order given by ``--systems``:

* ``ours``: ``builder run`` on a recipe (task ``generation``, ``lora`` trainer with the product's
  defaults: r 16, alpha 32, learning rate 2e-4, warm-up 10%, length-grouped batches, completion-only
  loss; ``compare_base`` on, so the same run answers the evaluation prompts with the untouched base
  model too), exported to ONNX fp32 + int8 and verified on those answers. Reports the base model's
  F1, the fine-tuned F1 (PyTorch) and each exported variant's F1.
* ``trl``: TRL ``SFTTrainer`` + peft at the same settings (same model, data, prompt formatting through
  the chat template, LoRA r / alpha / dropout / target modules, learning rate, warm-up, weight decay,
  batch size, epochs, max length, seed, completion-only loss on prompt-completion data, float32 on
  CPU), then greedy ``generate`` on the same evaluation prompts.

Then ``timing`` (with ``ours``): the fine-tuned model at batch 1, greedy, on ``--timing-prompts``
evaluation prompts: PyTorch ``generate`` (key/value cache, float32) against the torch-free runtime's
fp32 and int8 variants (``runtime/assistant.py``), alternating per prompt. Time to first token
(prefill and one token) and decoding tokens/s after it, medians.

Prints Markdown tables; ``--json-out`` keeps every figure. Skips with a message when the data is
absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "plugins"))

INSTRUCTION = "Answer the question with a short phrase copied from the text."
MODEL = "smollm2-135m-instruct"


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def user_turn(context: str, question: str) -> str:
    return f"{context.strip()}\n\nQuestion: {question.strip()}\n{INSTRUCTION}"


def questions(squad: dict[str, Any]) -> list[dict[str, str]]:
    """Every question of a SQuAD-format file as ``{"user", "answer"}`` (its first answer), in file order."""
    rows = []
    for article in squad["data"]:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if qa.get("answers"):
                    rows.append({"user": user_turn(paragraph["context"], qa["question"]), "answer": qa["answers"][0]["text"]})
    return rows


def sample(rows: list[dict[str, str]], count: int, seed: int) -> list[dict[str, str]]:
    return random.Random(seed).sample(rows, min(count, len(rows)))


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({"messages": [{"role": "user", "content": row["user"]},
                                               {"role": "assistant", "content": row["answer"]}]}, ensure_ascii=False) + "\n")


def fitting(rows: list[dict[str, str]], max_length: int) -> list[dict[str, str]]:
    """The rows whose whole conversation, formatted with the model's chat template, fits ``max_length`` tokens, so
    that no system drops (ours) or truncates (TRL) any of them."""
    from transformers import AutoTokenizer

    from assistant_builder.gguf_models import ensure_converted

    tokenizer = AutoTokenizer.from_pretrained(ensure_converted(MODEL))
    kept = []
    for row in rows:
        messages = [{"role": "user", "content": row["user"]}, {"role": "assistant", "content": row["answer"]}]
        if len(tokenizer.apply_chat_template(messages, return_dict=True)["input_ids"]) <= max_length:
            kept.append(row)
    return kept


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- ours: the product path -------------------------------------------------------------------------------------------

def recipe_text(args: argparse.Namespace) -> str:
    lines = ["recipe_version = 1", 'name = "generative-qa"', "[task]", 'type = "generation"', "[task.options]",
             f"eval_samples = {args.eval_questions}", f"max_new_tokens = {args.max_new_tokens}", "compare_base = true",
             "[model]", f'base = "{MODEL}"', f"max_length = {args.max_length}",
             "[data]", 'train = "train.jsonl"', 'validation = "valid.jsonl"',
             "[train]", 'trainer = "lora"', f"epochs = {args.epochs}", "min_steps = 0", f"batch_size = {args.batch_size}",
             f"learning_rate = {args.learning_rate}", "early_stopping_patience = 0", f"seed = {args.seed}",
             f"num_threads = {args.threads}", "[export]", 'formats = ["onnx"]', "[export.options.onnx]", "quantize = true",
             "[output]", 'runs_dir = "runs"']
    return "\n".join(lines) + "\n"


def child_ours(args: argparse.Namespace) -> dict[str, Any]:
    from assistant_builder.cli.main import main as builder

    work = args.work
    (work / "recipe.toml").write_text(recipe_text(args), encoding="utf-8")
    start = time.perf_counter()
    code = builder(["run", str(work / "recipe.toml"), "-q"])
    wall = time.perf_counter() - start
    (run_dir,) = (work / "runs").iterdir()
    summary = json.loads((run_dir / "summary.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"exit_code": code, "wall_s": wall, "peak_rss_mb": peak_rss_mb(), "run_dir": str(run_dir), "summary": summary,
            "metrics": metrics["metrics"], "samples": metrics.get("samples", [])}


# --- trl: SFTTrainer + peft at the same settings --------------------------------------------------------------------

def child_trl(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from assistant_builder.gguf_models import ensure_converted
    from assistant_builder.toolkit.answer_metrics import exact_match_score, f1_score

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    folder = ensure_converted(MODEL)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    targets = [name for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
               if any(n.endswith(name) for n, _ in model.named_modules())]

    def prompt_completion(path: Path) -> list[dict[str, Any]]:
        return [{"prompt": r["messages"][:-1], "completion": r["messages"][-1:]} for r in read_jsonl(path)]

    train = prompt_completion(args.work / "train.jsonl")
    config = SFTConfig(output_dir=str(args.work / "trl-out"), per_device_train_batch_size=args.batch_size,
                       learning_rate=args.learning_rate, num_train_epochs=args.epochs, warmup_steps=0.1, weight_decay=0.01,
                       lr_scheduler_type="linear", max_length=args.max_length, packing=False, completion_only_loss=True,
                       seed=args.seed, use_cpu=True, bf16=False, fp16=False, report_to=[], save_strategy="no",
                       eval_strategy="no", logging_steps=25, dataloader_num_workers=0, disable_tqdm=True)
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=targets, task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(train), processing_class=tokenizer,
                         peft_config=lora)
    kept = len(trainer.train_dataset)
    start = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - start
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    lm = trainer.model.merge_and_unload().eval()
    eos = lm.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    valid = read_jsonl(args.work / "valid.jsonl")
    f1s, ems = [], []
    gen_start = time.perf_counter()
    with torch.inference_mode():
        for row in valid:
            ids = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, return_dict=True)["input_ids"]
            prompt = torch.tensor([list(ids)])
            out = lm.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=args.max_new_tokens,
                              do_sample=False, temperature=None, top_p=None, top_k=None,
                              pad_token_id=tokenizer.pad_token_id or 0)[0, prompt.shape[1]:].tolist()
            cut = next((i for i, t in enumerate(out) if t in eos_ids), len(out))
            answer = tokenizer.decode(out[:cut], skip_special_tokens=True).strip()
            reference = row["messages"][-1]["content"]
            f1s.append(f1_score(answer, reference))
            ems.append(exact_match_score(answer, reference))
    return {"train_examples": kept, "train_s": train_s, "train_examples_per_second": kept * args.epochs / train_s,
            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None,
            "token_f1": statistics.mean(f1s), "exact_match": statistics.mean(ems), "generate_s": time.perf_counter() - gen_start,
            "peak_rss_mb": peak_rss_mb()}


# --- timing: torch-free int8 / fp32 against PyTorch generate ---------------------------------------------------------

def child_timing(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM

    from assistant_builder.runtime.assistant import Assistant
    from assistant_builder.runtime.bundle import read_bundle
    from assistant_builder.runtime.generation import timed_generate

    torch.set_num_threads(args.threads)
    run_dir = Path(args.run_dir)
    bundle = read_bundle(run_dir)
    runtimes = {v: Assistant(bundle, v) for v in ("fp32", "int8") if v in bundle.variants}
    lm = AutoModelForCausalLM.from_pretrained(run_dir / "model", dtype=torch.float32).eval()
    valid = read_jsonl(args.work / "valid.jsonl")[: args.timing_prompts]
    first = next(iter(runtimes.values()))
    settings = first.settings(max_new_tokens=args.max_new_tokens, temperature=0.0)
    eos_ids = set(first.model.eos_token_ids)
    results: dict[str, dict[str, list[float]]] = {name: {"ttft": [], "tps": [], "tokens": []} for name in ["pytorch", *runtimes]}
    order = ["pytorch", *runtimes]
    for index, row in enumerate(valid):
        prompt = first.prompt_ids({"messages": row["messages"][:-1]})
        for name in order[index % len(order):] + order[: index % len(order)]:
            if name == "pytorch":
                timing = torch_timed(lm, prompt, args.max_new_tokens, eos_ids)
            else:
                timing = timed_generate(runtimes[name].model, prompt, settings)[1]
            results[name]["ttft"].append(timing.ttft_ms)
            results[name]["tps"].append(timing.tokens_per_second)
            results[name]["tokens"].append(timing.tokens)
    return {name: {"ttft_ms_p50": statistics.median(r["ttft"]), "tokens_per_s_p50": statistics.median(
        [t for t in r["tps"] if t > 0] or [0.0]), "mean_tokens": statistics.mean(r["tokens"])} for name, r in results.items()}


def torch_timed(lm: Any, prompt: list[int], max_new_tokens: int, eos_ids: set[int]) -> Any:
    """PyTorch greedy decoding with the key/value cache, token by token, timed as ``runtime.generation.timed_generate``
    times the torch-free runtime (time to the first picked token; tokens without the end-of-sequence id)."""
    import torch

    from assistant_builder.runtime.generation import GenerationTiming

    tokens: list[int] = []
    with torch.inference_mode():
        start = time.perf_counter()
        out = lm(input_ids=torch.tensor([prompt]), use_cache=True)
        token = int(out.logits[0, -1].argmax())
        first = time.perf_counter()
        while token not in eos_ids:
            tokens.append(token)
            if len(tokens) >= max_new_tokens:
                break
            out = lm(input_ids=torch.tensor([[token]]), past_key_values=out.past_key_values, use_cache=True)
            token = int(out.logits[0, -1].argmax())
        end = time.perf_counter()
    return GenerationTiming(ttft_ms=(first - start) * 1000.0, tokens=len(tokens), seconds=end - start)


# --- driver ---------------------------------------------------------------------------------------------------------

def run_child(kind: str, args: argparse.Namespace, extra: list[str] = ()) -> dict[str, Any]:
    out = args.work / f"{kind}.json"
    command = [sys.executable, __file__, "--child", kind, "--work", str(args.work), "--out", str(out), *forwarded(args), *extra]
    code = subprocess.call(command)
    if code != 0 or not out.exists():
        raise SystemExit(f"{kind} failed (exit {code})")
    return json.loads(out.read_text())


def forwarded(args: argparse.Namespace) -> list[str]:
    return [f"--{k.replace('_', '-')}={getattr(args, k)}" for k in ("train_questions", "eval_questions", "epochs", "batch_size",
                                                                       "learning_rate", "max_length", "max_new_tokens", "seed",
                                                                       "threads", "timing_prompts")]


def report(args: argparse.Namespace, results: dict[str, Any]) -> None:
    print(f"## Generative QA: SQuAD train sample -> XQuAD-en sample, SmolLM2-135M-Instruct, LoRA\n")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"{args.train_questions} training questions, {args.eval_questions} evaluation questions, {args.epochs} epoch(s), "
          f"batch {args.batch_size}, learning rate {args.learning_rate}, max length {args.max_length}, "
          f"max new tokens {args.max_new_tokens}, {args.threads} threads.\n")
    print("| system | model | trained on | train ex/s | train time | peak RSS | token F1 | exact match |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    if "ours" in results:
        o = results["ours"]
        s, m = o["summary"], o["metrics"]
        print(f"| ours | base (no training) | 0 | | | | {m['base_token_f1']:.4f} | {m.get('base_exact_match', float('nan')):.4f} |")
        train_s = args.train_questions * args.epochs / s["train_examples_per_second"]
        print(f"| ours | LoRA, PyTorch | {args.train_questions} | {s['train_examples_per_second']:.2f} | "
              f"{train_s / 60:.1f} min | {o['peak_rss_mb']:.0f} MB | {m['token_f1']:.4f} | {m['exact_match']:.4f} |")
        for e in s["exports"]:
            print(f"| ours | LoRA, ONNX {e['variant']} ({e['status']}) | | | | | {e['exported_metric']:.4f} | |")
        print(f"| ours | whole run (prepare, train, answer, export, verify) | | | {o['wall_s'] / 60:.1f} min | | | |")
    if "trl" in results:
        t = results["trl"]
        print(f"| TRL SFTTrainer + peft | LoRA, PyTorch | {t['train_examples']} | {t['train_examples_per_second']:.2f} | "
              f"{t['train_s'] / 60:.1f} min | {t['peak_rss_mb']:.0f} MB | {t['token_f1']:.4f} | {t['exact_match']:.4f} |")
    if "timing" in results:
        print("\n| fine-tuned model, batch 1, greedy | time to first token (median) | tokens/s after it (median) | mean tokens |")
        print("|---|---:|---:|---:|")
        for name, r in results["timing"].items():
            print(f"| {name} | {r['ttft_ms_p50']:.1f} ms | {r['tokens_per_s_p50']:.1f} | {r['mean_tokens']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--systems", default="ours,trl", help="comma-separated, in the order they run: ours, trl")
    parser.add_argument("--train-questions", type=int, default=1000)
    parser.add_argument("--eval-questions", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-4)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--timing-prompts", type=int, default=40)
    parser.add_argument("--json-out", type=Path, default=None)
    parser.add_argument("--child", choices=["ours", "trl", "timing"], help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = {"ours": child_ours, "trl": child_trl, "timing": child_timing}[args.child](args)
        args.out.write_text(json.dumps(result, indent=1, default=str))
        return 0
    root = data_root()
    train_file, valid_file = root / "squad" / "train.json", root / "xquad_en" / "xquad.en.json"
    if not (train_file.exists() and valid_file.exists()):
        print(f"SKIPPED: {train_file} or {valid_file} not found")
        return 0
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-genqa-") as tmp:
        args.work = Path(tmp)
        for name, source, count in (("train", train_file, args.train_questions), ("valid", valid_file, args.eval_questions)):
            rows = fitting(sample(questions(json.loads(source.read_text("utf-8"))), 2 * count, args.seed), args.max_length)[:count]
            write_jsonl(args.work / f"{name}.jsonl", rows)
        for system in [s.strip() for s in args.systems.split(",") if s.strip()]:
            results[system] = run_child(system, args)
            print(f"{system}: done", file=sys.stderr, flush=True)
            if system == "ours" and args.timing_prompts:
                results["timing"] = run_child("timing", args, [f"--run-dir={results['ours']['run_dir']}"])
    report(args, results)
    if args.json_out:
        args.json_out.write_text(json.dumps({"command": sys.argv, "results": results}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
