#!/usr/bin/env bash
# Issue 12, part 5: AdaX at several learning rates against AdamW at the duee-tiny default
# (5e-4), every arm configs/duee-tiny.yaml for 4 epochs with its warmup (1000 steps),
# linear decay and clipping, no masked-LM pretraining (it would take 8 of the 15 minutes),
# the same seed and data order. Each arm goes through scripts/reproduce_duee.sh, so
# results/NAME.json and docs/results.md ("AdaX learning rates") come out as for every run.
#
#   bash scripts/compare_adax.sh [DATA_DIR] [ENCODER_FOLDER] [LR ...]
#
# Defaults: ../shared/data/duee, ../shared/models/bert-base-chinese-tokenizer, 5e-4 1e-3 2e-3.
set -euo pipefail
data=${1:-../shared/data/duee}
encoder=${2:-../shared/models/bert-base-chinese-tokenizer}
shift $(($# > 2 ? 2 : $#))
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(5e-4 1e-3 2e-3)
group="AdaX learning rates: duee-tiny, 4 epochs, no masked LM"
budget=(train.epochs=4 train.max_minutes=20 pretrain.minutes=0)
here=$(dirname "$0")

bash "$here/reproduce_duee.sh" --comparison "$group" --baseline \
  --note "AdamW at the duee-tiny default lr 5e-4 (the arm AdaX is measured against)" \
  "$data" "$encoder" configs/duee-tiny.yaml cmp-lr-adamw-5e-4 "${budget[@]}"
for lr in "${rates[@]}"; do
  bash "$here/reproduce_duee.sh" --comparison "$group" \
    --note "AdaX at lr $lr, the same warmup, decay and clipping as AdamW" \
    "$data" "$encoder" configs/duee-tiny.yaml "cmp-lr-adax-$lr" "${budget[@]}" \
    train.optimizer=adax train.lr="$lr"
done
