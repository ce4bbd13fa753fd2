#!/usr/bin/env bash
# Set up, then the main job on the embedded default: train on data/sample with a tiny
# random-init BERT, predict the dev file, evaluate the predictions.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
out=${1:-runs/sample}
gplinker train --config configs/sample.yaml output_dir="$out"
gplinker predict --model "$out/best" --input data/sample/dev.json --output "$out/dev.pred.json"
gplinker evaluate --gold data/sample/dev.json --pred "$out/dev.pred.json"
