"""What the word-splitting and word-encoding change of issue 26 does to English data: the model inputs
it gives, against the encoding before it, and the cost of splitting text into words.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/word_encoding.py                 # CoNLL-2003 and SNIPS, bundled MiniLM
    HF_HUB_OFFLINE=1 .venv/bin/python bench/word_encoding.py --model PATH     # another base model folder

1. **Inputs**: every training and validation sentence of CoNLL-2003 and SNIPS is encoded by the
   ``ner`` task (``NerTask.encode``: words through ``toolkit.word_encoding``) and as before the change
   (the bare words, ``is_pretokenized=True``); it counts sentences whose token ids differ. With a
   WordPiece model (MiniLM) none may: identical inputs train an identical model, so F1 cannot move.
   With a byte-level BPE model, the count is the sentences whose words now get their ``Ġ`` back.
2. **Texts from words**: how many sentences ``join_words`` writes differently than the old
   ``" ".join`` (only sentences with Chinese, Japanese or Thai characters may change).
3. **Splitting cost**: ``split_words`` (the script-aware ``regex`` pattern; ASCII text keeps the
   ``re`` pattern, which splits it the same) against the old ``re`` pattern ``\\w+|[^\\w\\s]`` on the
   SNIPS texts and on CLUENER's Chinese texts, alternating, best of ``--repeats``; and how many texts
   split differently.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "plugins"))

OLD_WORD = re.compile(r"\w+|[^\w\s]")


def data_root() -> Path:
    return Path(os.environ.get("ASSISTANT_BUILDER_DATA", ROOT.parent / "shared" / "data"))


def examples(dataset: str, root: Path) -> list:
    from assistant_builder_tasks.ner.data import read_examples

    paths = {"conll2003": [("conll2003/train.txt", "conll"), ("conll2003/valid.txt", "conll")],
             "snips": [("snips/train/seq.in", "seq"), ("snips/valid/seq.in", "seq")]}[dataset]
    found = []
    for path, fmt in paths:
        found += read_examples(root / path, fmt, "auto", "repair")[0]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    root = data_root()
    if not (root / "conll2003").is_dir():
        print(f"skipped: no data in {root}")
        return 0
    from assistant_builder.basemodels import resolve_base_model
    from assistant_builder.tokenization import load_tokenizer
    from assistant_builder.toolkit.alignment import join_words, split_words
    from assistant_builder.toolkit.windows import encode_words, special_layout
    from assistant_builder_tasks.ner.task import NerOptions, NerTask

    tokenizer = load_tokenizer(resolve_base_model(args.model), 128)
    task, options = NerTask(), NerOptions(word_shape="off")
    print(f"model: {args.model}")
    print("| dataset | sentences | inputs differ from before | texts written differently |")
    print("|---|---|---|---|")
    snips_texts: list[str] = []
    for dataset in ("conll2003", "snips"):
        found = examples(dataset, root)
        tags = sorted({t for e in found for t in e.tags})
        new: dict[int, list[list[int]]] = {}
        for feature in task.encode(found, tokenizer, tags, options, 128):
            new.setdefault(feature["example_index"], []).append(feature["input_ids"])
        layout = special_layout(tokenizer)
        old = tokenizer.encode_batch([list(e.tokens) for e in found], is_pretokenized=True)  # the encoding before the change
        differ = sum(new[i] != [w.ids for w in encode_words(e.tokens, tokenizer, 128, options.stride, layout, encoding)]
                     for i, (e, encoding) in enumerate(zip(found, old)))
        texts = sum(join_words(e.tokens)[0] != " ".join(e.tokens) for e in found)
        print(f"| {dataset} | {len(found)} | {differ} | {texts} |")
        if dataset == "snips":
            snips_texts = [e.text for e in found]
    corpora = {"SNIPS": snips_texts}
    cluener = root / "cluener" / "train.jsonl"
    if cluener.is_file():
        import json

        corpora["CLUENER (Chinese)"] = [json.loads(line)["text"] for line in cluener.read_text(encoding="utf-8").splitlines()]
    print("\n| texts | count | split_words us/text | old re pattern us/text | split differently |")
    print("|---|---|---|---|---|")
    for name, texts in corpora.items():
        new_times, old_times = [], []
        for _ in range(args.repeats):  # alternate the two splitters
            start = time.perf_counter()
            for text in texts:
                split_words(text)
            new_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            for text in texts:
                [(m.group(), m.start(), m.end()) for m in OLD_WORD.finditer(text)]
            old_times.append(time.perf_counter() - start)
        changed = sum(split_words(t)[0] != OLD_WORD.findall(t) for t in texts)
        per = 1e6 / len(texts)
        print(f"| {name} | {len(texts)} | {min(new_times) * per:.1f} | {min(old_times) * per:.1f} | {changed} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
