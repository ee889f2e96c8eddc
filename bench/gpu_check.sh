#!/usr/bin/env bash
# GPU check: on a CUDA machine, train full and LoRA in bf16 on SST-2 and CoNLL-2003 through
# `builder run`, export and verify ONNX (CUDA execution provider when onnxruntime-gpu is there),
# and print examples/s and peak GPU memory per run. Exits 0 with a message where there is no GPU.
#
#   bench/gpu_check.sh [OUT_DIR]        (default OUT_DIR: a temporary folder; logs and run dirs land there)
#
# Needs the project's venv (.venv, `make install`) with a CUDA build of torch on the GPU machine,
# and ../shared/data (or ASSISTANT_BUILDER_DATA) holding sst2/ and conll2003/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${ASSISTANT_BUILDER_DATA:-$(cd .. && pwd)/shared/data}
OUT=${1:-$(mktemp -d -t gpu-check-XXXX)}
export HF_HUB_OFFLINE=1
mkdir -p "$OUT"

if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "SKIPPED: no CUDA device visible to torch ($("$PY" -c 'import torch; print(torch.__version__)'))"
    exit 0
fi
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, bf16 {torch.cuda.is_bf16_supported()}')"
"$PY" -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, ort.get_available_providers())"

write_recipe() {  # name task train validation format trainer epochs
    cat > "$OUT/$1.toml" <<EOF
recipe_version = 1
name = "$1"
[task]
type = "$2"
$( [ "$2" = classification ] && printf '[task.options]\nlabel_field = "label"\n' )
[data]
train = "$3"
validation = "$4"
format = "$5"
[train]
trainer = "$6"
epochs = $7
batch_size = 32
precision = "bf16"
device = "cuda"
[export]
formats = ["onnx"]
max_metric_drop = 0.02
[export.options.onnx]
quantize = false
[output]
runs_dir = "$OUT/runs"
EOF
}

write_recipe sst2-full classification "$DATA/sst2/train.jsonl" "$DATA/sst2/dev.jsonl" jsonl full 2
write_recipe sst2-lora classification "$DATA/sst2/train.jsonl" "$DATA/sst2/dev.jsonl" jsonl lora 2
write_recipe conll-full ner "$DATA/conll2003/train.txt" "$DATA/conll2003/valid.txt" conll full 3
write_recipe conll-lora ner "$DATA/conll2003/train.txt" "$DATA/conll2003/valid.txt" conll lora 3

printf '\n| run | wall s | train ex/s | metric | peak GPU MiB | ONNX verified |\n|---|---:|---:|---|---:|---|\n' > "$OUT/summary.md"
for name in sst2-full sst2-lora conll-full conll-lora; do
    log="$OUT/$name.log"
    # peak memory of the whole process, sampled by nvidia-smi while the run goes
    ( while sleep 0.5; do nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits 2>/dev/null | head -1; done ) > "$OUT/$name.mem" &
    sampler=$!
    start=$(date +%s)
    status=0
    "$PY" -m assistant_builder.cli.main run "$OUT/$name.toml" -q > "$log" 2>&1 || status=$?
    kill $sampler 2>/dev/null || true
    wall=$(( $(date +%s) - start ))
    run_dir=$(ls -d "$OUT/runs/$name-"* 2>/dev/null | tail -1)
    peak=$(sort -n "$OUT/$name.mem" | tail -1)
    "$PY" - "$run_dir" "$name" "$wall" "${peak:-?}" "$status" >> "$OUT/summary.md" <<'EOF'
import json, sys
from pathlib import Path
run, name, wall, peak, status = sys.argv[1:]
summary = json.loads((Path(run) / "summary.json").read_text()) if run and (Path(run) / "summary.json").exists() else {}
metric = summary.get("metric", "?")
value = summary.get("metrics", {}).get(metric)
exports = summary.get("exports", [])
verified = ", ".join(f"{e['variant']} {'pass' if e['passed'] else 'FAIL'} ({e['agreement']:.2%})" for e in exports) or f"run exit {status}"
speed = summary.get("train_examples_per_second")
print(f"| {name} | {wall} | {speed:.0f} | {metric} {value:.4f} | {peak} | {verified} |" if value is not None and speed
      else f"| {name} | {wall} | - | failed (exit {status}), see {name}.log | {peak} | - |")
EOF
done
cat "$OUT/summary.md"
echo "logs and runs: $OUT"
