#!/usr/bin/env bash
# Regenerate docs/data-check.md: `gplinker check` on every recipe's train and dev files with
# model.split_digits off and on (the spans it recovers), each report kept as JSON in a
# temporary folder and turned into the page by scripts/check_table.py.
#
#   bash scripts/check_all.sh [RECIPE ...]
#
# Default: the four *-tiny recipes (their data under ../shared, or data_root=...) and the
# three embedded samples. A recipe whose data holds errors exits 1: that is a finding, kept
# in the page; any other failure (exit 2: a file missing, a bad recipe) stops the script.
set -euo pipefail
cd "$(dirname "$0")/.."
recipes=("$@")
[ ${#recipes[@]} -gt 0 ] || recipes=(
  configs/duee-tiny.yaml configs/cluener-tiny.yaml configs/cmeee-tiny.yaml
  configs/duie-tiny.yaml configs/sample.yaml configs/sample-entity.yaml
  configs/sample-relation.yaml
)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for recipe in "${recipes[@]}"; do
  name=$(basename "$recipe" .yaml)
  for split in false true; do
    rc=0
    gplinker -q check --config "$recipe" --json --examples 3 "model.split_digits=$split" \
      >"$out/$name-split-$split.json" 2>"$out/stderr" || rc=$?
    if [ "$rc" -gt 1 ]; then
      cat "$out/stderr" >&2
      echo "check_all.sh: gplinker check --config $recipe failed (exit $rc)" >&2
      exit "$rc"
    fi
    echo "$recipe split_digits=$split: exit $rc" >&2
  done
done
python scripts/check_table.py "$out"/*.json >docs/data-check.md
echo "wrote docs/data-check.md" >&2
