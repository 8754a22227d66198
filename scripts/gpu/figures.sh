#!/usr/bin/env bash
# The GPU figures in one device call (see README "Figures"): a real SROIE training run, its
# validation, and the data-wait share for several DataLoader worker counts. Results go to $OUT.
# Needs: the carried wheels in .whl/ (packages missing on the device image) and SROIE scaled to
# 1024 px in .gpu/sroie1024 (the transfer is capped at 64 MiB; the full-size data stays here).
# DRY=1 runs the same steps on a CPU with tiny settings, to test this script before spending GPU time.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
WORK=/tmp/gpu_work; rm -rf "$WORK"; mkdir -p "$WORK"
export PYTHONUNBUFFERED=1 OCR_CACHE_DIR=$WORK/cache
PY=${PY:-python3}
if [ -z "${DRY:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
  export PYTHONPATH=/tmp/site:$PWD/src
  TRAIN="experiment=sroie trainer.max_time=00:00:03:30"; SWEEP_BATCHES=16; WORKERS="0 4 12"
  OVERHEAD="--steps 30 --repeats 5"
else
  TRAIN="experiment=sroie trainer.accelerator=cpu trainer.precision=32-true model.net.backbone=mobilenetv3_small_050 model.net.inner_channels=32 data.image_size=256 data.augment.crop_size=128 data.loader.num_workers=2 trainer.max_epochs=2 trainer.check_val_every_n_epoch=1 trainer.limit_train_batches=2 trainer.limit_val_batches=2"
  SWEEP_BATCHES=2; WORKERS="0 2"
  OVERHEAD="--backbone mobilenetv3_small_050 --image-size 128 --steps 4 --repeats 2"
fi
DATA="data.train_root=.gpu/sroie1024/train data.val_root=.gpu/sroie1024/val ${EXTRA:-}"
OCR="$PY -m ocr.cli"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; nproc; $PY -c "import torch, lightning, timm, cleval, albumentations, hydra, pyclipper, shapely, numba; print('torch', torch.__version__, 'lightning', lightning.__version__, 'cuda', torch.cuda.is_available())"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# 1. the training run (bounded by max_time), then ocr validate on its best checkpoint
start=$(date +%s)
$OCR train $TRAIN $DATA hydra.run.dir=$WORK/train > "$WORK/train.log" 2>&1
echo "train exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/env.txt"
tail -n 5 "$WORK/train.log"
BEST=$(ls $WORK/train/checkpoints/best-*.ckpt 2>/dev/null | head -n 1)
$OCR validate ckpt_path="$BEST" data=sroie data.root=.gpu/sroie1024/val ${EXTRA:-} ${DRY:+trainer.accelerator=cpu data.loader.num_workers=0} hydra.run.dir=$WORK/validate > "$WORK/validate.log" 2>&1
tail -n 1 "$WORK/validate.log"
$PY scripts/gpu/weights.py export "$BEST" "$OUT/best_weights"

# 2. the profiler's overhead on the default model (resnet18, 640, batch 4), on and off in one run
$OCR bench overhead $OVERHEAD > "$WORK/overhead.log" 2>&1
tail -n 1 "$WORK/overhead.log"

# 3. data-wait share against the number of DataLoader workers (a short training epoch each)
for n in $WORKERS; do
  $OCR train $TRAIN $DATA data.loader.num_workers=$n trainer.max_epochs=1 trainer.limit_train_batches=$SWEEP_BATCHES \
    trainer.limit_val_batches=$SWEEP_BATCHES trainer.check_val_every_n_epoch=1 hydra.run.dir=$WORK/sweep_w$n > "$WORK/sweep_w$n.log" 2>&1
  echo "workers=$n exit $?"
done
tar -czf "$OUT/results.tar.gz" -C "$WORK" --exclude='*.ckpt' --exclude=cache .
ls -la "$OUT"
