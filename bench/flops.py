"""Training speed as a fraction of this CPU's measured peak matmul throughput.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/flops.py [--threads 2] [--examples-per-second 97.8 ...]

1. Measures peak fp32 matmul throughput with torch on ``--threads`` threads (square matmuls of a
   few sizes, best of several runs).
2. Counts the model FLOPs of training one SST-2 example on MiniLM-L6: 6 x (non-embedding
   parameters) x tokens for the dense layers (forward 2x, backward 4x) plus the attention score
   and value products, 12 x layers x tokens^2 x hidden, at the mean real (unpadded) length of the
   SST-2 training sentences under our tokenizer. Padding tokens are not counted: they are work the
   model does but not useful work, so a padded loop scores lower.
3. Prints each training figure from ``bench/RESULTS.md`` (or ``--examples-per-second``) as
   model FLOP/s and as a fraction of the peak.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: examples/s medians from bench/RESULTS.md (SST-2, MiniLM-L6, batch 32, fp32, 2 threads)
RECORDED = {
    "ours, full trainer (2026-11-29 defaults, run of 04:07 UTC)": 135.8,
    "Trainer + group_by_length (same run)": 113.7,
    "Trainer defaults (pads to 128; 2026-11-28 run)": 18.9,
}


def peak_matmul_flops(threads: int) -> float:
    import torch

    torch.set_num_threads(threads)
    best = 0.0
    for size in (512, 1024, 2048):
        a, b = torch.randn(size, size), torch.randn(size, size)
        for _ in range(3):
            a @ b
        runs = []
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(4):
                a @ b
            runs.append(4 * 2 * size**3 / (time.perf_counter() - started))
        best = max(best, max(runs))
    return best


def mean_tokens() -> float:
    from assistant_builder.basemodels import resolve_base_model
    from assistant_builder.tokenization import load_tokenizer

    data = Path(os.environ.get("ASSISTANT_BUILDER_DATA", REPO.parent / "shared" / "data")) / "sst2" / "train.jsonl"
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    tokenizer = load_tokenizer(resolve_base_model("minilm-l6", REPO), 128)
    return statistics.fmean(len(e.ids) for e in tokenizer.encode_batch(texts))


def training_flops_per_example(tokens: float) -> float:
    from transformers import AutoConfig

    from assistant_builder.basemodels import resolve_base_model

    config = AutoConfig.from_pretrained(resolve_base_model("minilm-l6", REPO))
    h, layers, ffn = config.hidden_size, config.num_hidden_layers, config.intermediate_size
    dense_params = layers * (4 * h * h + 2 * h * ffn)  # q, k, v, o projections and the two FFN matrices
    dense = 6 * dense_params * tokens
    attention = 6 * layers * 2 * tokens * tokens * h  # scores and weighted values, forward + backward
    return dense + attention


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--examples-per-second", type=float, nargs="*", default=None,
                        help="figures to convert (default: the recorded SST-2 training figures)")
    args = parser.parse_args(argv)
    peak = peak_matmul_flops(args.threads)
    tokens = mean_tokens()
    per_example = training_flops_per_example(tokens)
    figures = RECORDED if args.examples_per_second is None else {f"{x} ex/s": x for x in args.examples_per_second}
    print(f"peak fp32 matmul, {args.threads} threads: {peak / 1e9:.1f} GFLOP/s")
    print(f"SST-2 train: {tokens:.1f} real tokens per example; training FLOPs per example: {per_example / 1e9:.3f} GFLOP\n")
    print("| system | examples/s | model GFLOP/s | fraction of peak |\n|---|---:|---:|---:|")
    for name, rate in figures.items():
        print(f"| {name} | {rate:.1f} | {rate * per_example / 1e9:.1f} | {rate * per_example / peak:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
