#!/usr/bin/env bash
# Reproduce a figure end to end, for any task: train, predict dev with the best epoch, score
# it, keep the result in results/NAME.json and regenerate docs/results.md.
#
#   bash scripts/reproduce.sh [--lever TEXT --previous NAME] [--note TEXT] \
#       [--comparison GROUP [--baseline]] DATASET DATA_DIR MODEL [CONFIG] [NAME] [key=value ...]
#
# DATASET   duee (events), cluener or cmeee (entities), duie (relations); it names the files
#           DATA_DIR must hold and the default CONFIG. `scripts/reproduce_duee.sh ARGS` is
#           `scripts/reproduce.sh duee ARGS`, as before tasks.
# DATA_DIR  folder with the dataset's files: duee_train.json, duee_dev.json,
#           duee_event_schema.json (duee); train.json, dev.json (cluener); and schema.json
#           (cmeee); train.json, dev.json, all_50_schemas (duie).
#           bash scripts/get_data.sh DATASET DATA_DIR puts them there and checks them.
# MODEL     encoder for model.encoder: a hub name (hfl/chinese-roberta-wwm-ext) or a folder
# CONFIG    recipe, default configs/DATASET.yaml (the GPU reproduction recipe; the CPU ones
#           are configs/*-tiny.yaml)
# NAME      run folder runs/NAME and results/NAME.json; default: CONFIG's file name
# key=value further overrides for `gplinker train`, e.g. train.epochs=3
# --lever, --previous, --note, --comparison, --baseline   passed to
#           scripts/collect_result.py: the row of the table of levers in docs/results.md
#           (what the run changes, against which result), or an arm of a comparison table
#
# Writes runs/NAME/ (the run folder), runs/NAME/dev.pred.json (predictions of best/ on
# dev), runs/NAME/dev.eval.json (`gplinker evaluate --json`), results/NAME.json and
# docs/results.md. Relative paths in the arguments are taken from the directory you run in.
set -euo pipefail

usage() {
  sed -n '2,27s/^# \{0,1\}//p' "$0"
}
collect_args=()
dataset=
while [ $# -gt 0 ]; do
  case "$1" in
    --dataset)  # what scripts/reproduce_duee.sh passes
      [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }
      dataset=$2
      shift 2
      ;;
    --baseline)
      collect_args+=("$1")
      shift
      ;;
    --lever | --previous | --note | --comparison)
      [ $# -ge 2 ] || { echo "error: $1 needs a value" >&2; exit 2; }
      collect_args+=("$1" "$2")
      shift 2
      ;;
    *) break ;;
  esac
done
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  usage
  exit 0
fi
if [ -z "$dataset" ] && [ $# -gt 0 ]; then
  dataset=$1
  shift
fi
case "$dataset" in
  duee) files=(duee_train.json duee_dev.json duee_event_schema.json) ;;
  cluener) files=(train.json dev.json) ;;
  cmeee) files=(train.json dev.json schema.json) ;;
  duie) files=(train.json dev.json all_50_schemas) ;;
  *)
    echo "error: DATASET should be duee, cluener, cmeee or duie (got '${dataset}')" >&2
    usage >&2
    exit 2
    ;;
esac
if [ $# -lt 2 ]; then
  echo "error: DATA_DIR and MODEL are required" >&2
  usage >&2
  exit 2
fi

# Arguments that name existing files are made absolute before moving to the repo root.
absolute() {
  if [ -e "$1" ]; then
    (cd "$(dirname "$1")" && printf '%s/%s\n' "$(pwd)" "$(basename "$1")")
  else
    printf '%s\n' "$1"
  fi
}
data=$(absolute "$1")
model=$(absolute "$2")
config=${3:-configs/$dataset.yaml}
[ -e "$config" ] && config=$(absolute "$config")
cd "$(dirname "$0")/.."
name=${4:-$(basename "${config%.*}")}
overrides=("${@:5}")

missing=()
for f in "${files[@]}"; do
  [ -f "$data/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: $data lacks ${missing[*]}; run: bash scripts/get_data.sh $dataset $data" >&2
  exit 2
fi
train=$data/${files[0]}
dev=$data/${files[1]}
schema=null  # CLUENER names its types in the data
[ ${#files[@]} -gt 2 ] && schema=$data/${files[2]}
if [ ! -f "$config" ]; then
  echo "error: no config $config" >&2
  exit 2
fi
if [ -f .venv/bin/activate ]; then
  set +u  # activate scripts read unset variables
  . .venv/bin/activate
  set -u
fi

run=runs/$name
echo "== train $config -> $run (encoder $model)" >&2
gplinker train --config "$config" \
  model.encoder="$model" \
  data.train="$train" \
  data.dev="$dev" \
  data.schema_file="$schema" \
  output_dir="$run" \
  ${overrides[@]+"${overrides[@]}"}

echo "== predict dev with $run/best" >&2
gplinker predict --model "$run/best" --input "$dev" --output "$run/dev.pred.json"

echo "== evaluate" >&2
gplinker evaluate --gold "$dev" --pred "$run/dev.pred.json" --json \
  > "$run/dev.eval.json.tmp"
mv "$run/dev.eval.json.tmp" "$run/dev.eval.json"
cat "$run/dev.eval.json" >&2

echo "== collect" >&2
config_file=$config
case "$config" in "$(pwd)"/*) config_file=${config#"$(pwd)"/} ;; esac
python scripts/collect_result.py "$run" --name "$name" --config-file "$config_file" \
  --eval "$run/dev.eval.json" ${collect_args[@]+"${collect_args[@]}"}
python scripts/results_table.py
