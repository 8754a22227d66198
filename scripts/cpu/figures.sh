#!/usr/bin/env bash
# The CPU acceptance figures (docs/figures.md), one command after another, on a quiet machine (nothing
# else running: every speed figure is a same-run ratio or a median of repeats, but 2 shared cores
# still move). Each command's output goes to $OUT/<name>.txt; the last stdout line of each is JSON.
#   bash scripts/cpu/figures.sh [OUT]       (default OUT=figures-cpu)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT="${1:-figures-cpu}"
VAL=../shared/datasets/sroie/val
TRAIN=../shared/datasets/sroie/train
OCR="${OCR:-.venv/bin/ocr}"
mkdir -p "$OUT"
export OCR_CACHE_DIR="${OCR_CACHE_DIR:-$(mktemp -d)}"

run() {  # name, command...
  local name="$1"; shift
  echo "== $name: $*" | tee "$OUT/$name.txt"
  { /usr/bin/time -f "wall %e s, max RSS %M KB" "$@"; } 2>&1 | tee -a "$OUT/$name.txt"
}

nproc > "$OUT/hardware.txt"; lscpu | grep -E "Model name|^CPU\(s\)" >> "$OUT/hardware.txt"; uptime >> "$OUT/hardware.txt"

# Issue 10: non-model CPU per image (single thread, perfect-model maps), reference vs fast.
run eval_work "$OCR" bench eval-work --data "$VAL" --size 1024 --repeats 5
# Issue 10: the validation loop with a stand-in model, pool sizes side by side.
# Zero-cost forward: 100-image epochs of ~0.4 s move with the VM, hence 7 repeats; each row also
# gives the CPU per image and the images/s that CPU allows on these cores (cpu_bound_vs_pool0).
for b in 4 8; do
  run "validate_forward0_b$b" "$OCR" bench validate --data "$VAL" --size 1024 --pools 0,1,2 --forward-ms 0 --repeats 7 --batch-size "$b"
done
# The epoch-end drain is at least the last batch's images over the evaluators, so batch 1, 2 and 8.
for b in 1 2 8; do
  run "validate_forward20_b$b" "$OCR" bench validate --data "$VAL" --size 1024 --pools 0,1 --forward-ms 20 --repeats 3 --batch-size "$b"
done
# Issue 11: first-batch wait, data-wait share and the workers the defaults chose; then the decoded cache.
run pipeline_train "$OCR" bench pipeline --phase train --data "$TRAIN" --size 1024 --crop 640 --epochs 3 --step-ms 50
run pipeline_train_decoded "$OCR" bench pipeline --phase train --data "$TRAIN" --size 1024 --crop 640 --epochs 3 --step-ms 50 --decoded-cache
# Issue 16: a missing checkpoint answers fast.
for i in 1 2 3 4 5; do run "missing_ckpt_$i" "$OCR" validate ckpt_path=/nope; done
uptime >> "$OUT/hardware.txt"
