#!/usr/bin/env bash
# Reproduce a DuEE 1.0 figure end to end: train, predict dev with the best epoch, score it,
# keep the result in results/NAME.json and regenerate docs/results.md.
#
#   bash scripts/reproduce_duee.sh [--lever TEXT --previous NAME] [--note TEXT] \
#       [--comparison GROUP [--baseline]] DATA_DIR MODEL [CONFIG] [NAME] [key=value ...]
#
# DATA_DIR  folder with duee_train.json, duee_dev.json, duee_event_schema.json
#           (bash scripts/get_duee.sh DATA_DIR puts them there and checks them)
# MODEL     encoder for model.encoder: a hub name (hfl/chinese-roberta-wwm-ext) or a folder
# CONFIG    recipe, default configs/duee.yaml (the GPU reproduction recipe)
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
  sed -n '2,20s/^# \{0,1\}//p' "$0"
}
collect_args=()
while [ $# -gt 0 ]; do
  case "$1" in
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
config=${3:-configs/duee.yaml}
[ -e "$config" ] && config=$(absolute "$config")
cd "$(dirname "$0")/.."
name=${4:-$(basename "${config%.*}")}
overrides=("${@:5}")

missing=()
for f in duee_train.json duee_dev.json duee_event_schema.json; do
  [ -f "$data/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "error: $data lacks ${missing[*]}; run: bash scripts/get_duee.sh $data" >&2
  exit 2
fi
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
  data.train="$data/duee_train.json" \
  data.dev="$data/duee_dev.json" \
  data.schema_file="$data/duee_event_schema.json" \
  output_dir="$run" \
  ${overrides[@]+"${overrides[@]}"}

echo "== predict dev with $run/best" >&2
gplinker predict --model "$run/best" --input "$data/duee_dev.json" --output "$run/dev.pred.json"

echo "== evaluate" >&2
gplinker evaluate --gold "$data/duee_dev.json" --pred "$run/dev.pred.json" --json \
  > "$run/dev.eval.json.tmp"
mv "$run/dev.eval.json.tmp" "$run/dev.eval.json"
cat "$run/dev.eval.json" >&2

echo "== collect" >&2
config_file=$config
case "$config" in "$(pwd)"/*) config_file=${config#"$(pwd)"/} ;; esac
python scripts/collect_result.py "$run" --name "$name" --config-file "$config_file" \
  --eval "$run/dev.eval.json" ${collect_args[@]+"${collect_args[@]}"}
python scripts/results_table.py
