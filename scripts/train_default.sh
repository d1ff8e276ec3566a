#!/usr/bin/env bash
# Retrain the bundled default models for real scans, x2 and x4: every stage, its exact
# command, seed and thread count. Run from a clone of this repository:
#
#   bash scripts/train_default.sh BREAKHIS_ROOT [RUNS_DIR]
#
# On the same machine (same CPU, torch 2.13.0+cpu, 2 threads) it reproduces the bundled
# weights bit for bit: every random choice is seeded and the CPU kernels are deterministic
# at a fixed thread count. Another CPU, thread count, torch build or a GPU gives other
# floating-point rounding, so other (equally good, not identical) weights.
#
# Stages (docs/model-card.md has what each measured):
#   0. the starting point: the bundled x2 model as first released (trained on bicubic LR),
#      taken from git so that reruns start from the same weights and split; its classifier
#      is kept;
#   1. x2 SR module at the paper's width (64 channels), started from the starting model's
#      32-channel one widened so that it computes the same function (train/grow.py), and
#      fine-tuned on LR made by the chosen degradation;
#   2. x2 joint model composed of stage 1's SR module and the starting classifier (no
#      training: validated and saved as it is);
#   3. x2 joint fine-tune of the whole SHISRCNet with the paper's loss (0.6 L1 + 0.3 focal
#      + 0.1 NT-Xent); of stages 2 and 3, the one with the better validation score goes on
#      (the joint one on a tie);
#   4. x4 SR module started from stage 1's (all but the extra upsampling stage), trained on
#      x4 LR made by the same degradation;
#   5. x4 joint model composed of stage 4's SR module and the chosen x2 model's classifier;
#   6. x4 joint fine-tune, as stage 3, and the same choice;
#   7. bundling (fp16) of the two chosen models into src/napari_shisrcnet/weights.
set -euo pipefail

DATA=${1:?usage: bash scripts/train_default.sh BREAKHIS_ROOT [RUNS_DIR]}
RUNS=${2:-runs/default}
# Each pair made by the scanner model or by bicubic, half and half: of bicubic, scanner,
# realistic and this mixture, the only one better than bicubic both on a real scan's
# pyramid and on bicubic LR (docs/degradation-choice-cpu.json).
DEGRADATION=scanner+bicubic
START_COMMIT=1c1600f  # the released x2 weights, with their training split recorded
export OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 PYTHONHASHSEED=0
SHISRCNET=(python -m napari_shisrcnet)
# The paper's SR width (64 channels, 3 MFE blocks; the fusion is the starting model's, the
# paper's MSF), a classifier at width 0.25 (CPU-trainable), BreaKHis 100X, binary classes,
# patient-level split of seed 0 (the released model's: its test patients stay unseen),
# validation on centre crops, no early stopping (fixed step budgets).
COMMON=(
  --classes binary --magnification 100 --seed 0 --device cpu
  --sr-channels 64 --sr-blocks 3 --classifier-width 0.25
  --hr-crop-px 192 --batch-size 8 --repeats 4 --val-crop-px 256 --patience 0
  --degradation "$DEGRADATION" --epochs 10000
)
mkdir -p "$RUNS"

better() {  # the run of two with the higher best validation score (the first on a tie)
  python - "$1" "$2" <<'PY'
import json, sys

def best(run):
    rows = json.load(open(f"{run}/metrics.json"))
    return max(row["val_score"] for row in rows if "val_score" in row)

first, second = sys.argv[1:]
print(first if best(first) >= best(second) else second)
PY
}

# 0. starting point
git show "$START_COMMIT:src/napari_shisrcnet/weights/shisrcnet-x2-binary.safetensors" \
  > "$RUNS/start-x2.safetensors"

# 1. x2 SR module: the start's 32-channel one widened to 64 (same function), lr 2e-4 x 0.9
#    every 6 epochs, 1,200 steps (25.5 epochs of 47 steps)
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --stage sr --scale 2 \
  --init "$RUNS/start-x2.safetensors" --lr 2e-4 --lr-decay-every 6 --max-steps 1200 --val-every 4 \
  --out "$RUNS/x2-sr"

# 2. x2 composed (validated, not trained): the start's classifier, taken out of it, and
#    stage 1's SR module
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --stage classifier \
  --init "$RUNS/start-x2.safetensors" --max-steps 0 --out "$RUNS/x2-classifier"
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --scale 2 \
  --init "$RUNS/x2-classifier/best.safetensors" --init "$RUNS/x2-sr/best.safetensors" \
  --max-steps 0 --out "$RUNS/x2-composed"

# 3. x2 joint fine-tune with the paper's loss
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --scale 2 \
  --init "$RUNS/x2-composed/best.safetensors" --lr 5e-5 --max-steps 120 --val-every 2 \
  --out "$RUNS/x2-joint"

X2=$(better "$RUNS/x2-joint" "$RUNS/x2-composed")
echo "x2 model: $X2"

# 4. x4 SR module from the x2 one
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --stage sr --scale 4 \
  --init "$RUNS/x2-sr/best.safetensors" --lr 5e-4 --max-steps 900 --val-every 6 \
  --out "$RUNS/x4-sr"

# 5. x4 composed: the chosen x2 model's classifier (and SR body), stage 4's SR module
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --scale 4 \
  --init "$X2/best.safetensors" --init "$RUNS/x4-sr/best.safetensors" \
  --max-steps 0 --out "$RUNS/x4-composed"

# 6. x4 joint fine-tune with the paper's loss
"${SHISRCNET[@]}" train "$DATA" "${COMMON[@]}" --scale 4 \
  --init "$RUNS/x4-composed/best.safetensors" --lr 5e-5 --max-steps 120 --val-every 2 \
  --out "$RUNS/x4-joint"

X4=$(better "$RUNS/x4-joint" "$RUNS/x4-composed")
echo "x4 model: $X4"

# 7. bundle
NOTE="scripts/train_default.sh on 2 CPU cores (torch $(python -c 'import torch; print(torch.__version__)'))"
python scripts/bundle_default.py "$X2/best.safetensors" --name default-x2 --note "$NOTE, $(basename "$X2")"
python scripts/bundle_default.py "$X4/best.safetensors" --name default-x4 --note "$NOTE, $(basename "$X4")"
