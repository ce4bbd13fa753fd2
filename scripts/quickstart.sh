#!/usr/bin/env bash
# Set up, then the main job on the embedded defaults: for each task (events on data/sample,
# nested entities on data/sample-entity, relation triples on data/sample-relation) train a
# tiny random-init BERT, predict the dev file, evaluate the predictions.
#
#   bash scripts/quickstart.sh [event|entity|relation ...]   (default: all three, ~5 min)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
declare -A config=([event]=sample [entity]=sample-entity [relation]=sample-relation)
declare -A dev=(
  [event]=data/sample/dev.json
  [entity]=data/sample-entity/dev.json
  [relation]=data/sample-relation/dev.json
)
for task in "${@:-event entity relation}"; do
  for t in $task; do
    [ -n "${config[$t]:-}" ] || { echo "error: a task is event, entity or relation: $t" >&2; exit 2; }
    out=runs/${config[$t]}
    echo "== $t: configs/${config[$t]}.yaml -> $out" >&2
    gplinker train --config "configs/${config[$t]}.yaml" output_dir="$out"
    gplinker predict --model "$out/best" --input "${dev[$t]}" --output "$out/dev.pred.json"
    gplinker evaluate --gold "${dev[$t]}" --pred "$out/dev.pred.json"
  done
done
