#!/usr/bin/env bash
# The shipped SROIE detector in one device call (docs/model_card.md):
#   1. train experiment=sroie_mobile on the 400 SROIE train receipts, bounded by MAX_TIME;
#   2. select on val (best checkpoint by IoU@0.5 hmean) and `ocr validate` it;
#   3. `ocr export` it as fp16 shipped weights ($OUT/sroie.pt, the package's file) and ONNX;
#   4. predict val with the exported weights and draw the worst receipts ($OUT/failures.jpg).
# Everything returned lies in $OUT (at most 8 files of 16 MiB: the ONNX file stays there, it is
# re-made from sroie.pt on the CPU side by `ocr export`).
#
# Before the call, on the CPU machine (once):
#   python scripts/gpu/prepare_sroie.py ../shared/datasets/sroie .gpu/sroie1024   # fits the 64 MiB trip
#   (and the wheels of packages missing on the device image in .whl/, as for scripts/gpu/figures.sh)
# Device call: run(command="bash scripts/gpu/train_detector.sh", carry=[".gpu", ".whl"], timeout_s=600)
# After it, on the CPU machine:
#   bash scripts/gpu/train_detector.sh install FILES_AT     # copies sroie.pt into src/ocr/weights/
# DRY=1 runs the same steps on a CPU with tiny settings, to test this script before spending GPU time.
set -uo pipefail
if [ "${1:-}" = "install" ]; then
  FILES=${2:?usage: train_detector.sh install FILES_AT}
  cp "$FILES/sroie.pt" src/ocr/weights/sroie.pt || exit 1
  ls -la src/ocr/weights/
  echo "now: ocr validate data=sroie data.root=../shared/datasets/sroie/val trainer.accelerator=cpu"
  echo "     ocr bench onnx --data ../shared/datasets/sroie/val; ocr bench predict --data ../shared/datasets/sroie/val"
  exit 0
fi
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
WORK=/tmp/gpu_work; rm -rf "$WORK"; mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 OCR_CACHE_DIR=$WORK/cache OCR_WEIGHTS_DIR=$WORK/weights
PY=${PY:-python3}
DATA_ROOT=${DATA_ROOT:-.gpu/sroie1024}
if [ -z "${DRY:-}" ]; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
    export PYTHONPATH=/tmp/site:$PWD/src
  else
    export PYTHONPATH=$PWD/src
  fi
  # 5.5 min of training leaves the validation, export and predict inside one 10-minute call
  TRAIN="experiment=sroie_mobile trainer.max_time=${MAX_TIME:-00:00:05:30}"
  EVAL="trainer.accelerator=auto data.loader.num_workers=12"
else
  export PYTHONPATH=$PWD/src
  TRAIN="experiment=sroie_mobile trainer.accelerator=cpu trainer.precision=32-true model.net.backbone=mobilenetv3_small_050 model.net.inner_channels=32 data.image_size=256 data.augment.crop_size=128 data.loader.num_workers=0 data.loader.persistent_workers=false trainer.max_epochs=1 trainer.check_val_every_n_epoch=1 trainer.limit_train_batches=2 trainer.limit_val_batches=2"
  EVAL="trainer.accelerator=cpu data.loader.num_workers=0"
fi
DATA="data.train_root=$DATA_ROOT/train data.val_root=$DATA_ROOT/val ${EXTRA:-}"
OCR="$PY -m ocr.cli"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc; $PY -c "import torch, lightning, timm; print('torch', torch.__version__, 'lightning', lightning.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. training (bounded by max_time), validation every 5 epochs, best checkpoint by IoU hmean
start=$(date +%s)
$OCR train $TRAIN $DATA hydra.run.dir=$WORK/train > "$WORK/train.log" 2>&1
echo "train exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/env.txt"
tail -n 3 "$WORK/train.log"
BEST=$(ls $WORK/train/checkpoints/best-*.ckpt 2>/dev/null | head -n 1)
[ -n "$BEST" ] || { echo "no best checkpoint"; tail -n 40 "$WORK/train.log"; exit 4; }
echo "best: $BEST" | tee -a "$OUT/env.txt"

# 2.-3. the shipped file (fp16) and the ONNX model, then validate the shipped file itself
$OCR export ckpt_path="$BEST" weights="$OUT/sroie.pt" output="$WORK/sroie.onnx" hydra.run.dir=$WORK/export | tail -n 1 | tee "$OUT/export.json"
mkdir -p "$WORK/weights" && cp "$OUT/sroie.pt" "$WORK/weights/sroie.pt"
$OCR validate model=sroie data=sroie data.root=$DATA_ROOT/val $EVAL hydra.run.dir=$WORK/validate > "$WORK/validate.log" 2>&1
tail -n 1 "$WORK/validate.log" | tee "$OUT/val_metrics.json"

# 4. predictions of the shipped file on val, and the worst receipts as one picture
$OCR predict model=sroie input=$DATA_ROOT/val/images output=$WORK/val_predictions.csv $EVAL trainer.enable_progress_bar=false hydra.run.dir=$WORK/predict > "$WORK/predict.log" 2>&1
tail -n 1 "$WORK/predict.log"
$PY scripts/gpu/failure_cases.py "$WORK/val_predictions.csv" "$DATA_ROOT/val" "$OUT/failures.jpg" 6 | tee "$OUT/failures.jsonl"
cp "$WORK/val_predictions.csv" "$OUT/"
tar -czf "$OUT/results.tar.gz" -C "$WORK" --exclude='*.ckpt' --exclude='*.onnx' --exclude=cache --exclude=weights .
echo "total $(( $(date +%s) - start )) s" | tee -a "$OUT/env.txt"
ls -la "$OUT"
