#!/usr/bin/env bash
# Put a dataset in a folder and check it is the copy the figures in docs/results.md use.
#
#   bash scripts/get_data.sh DATASET [DIR]     DATASET: duee, cluener, cmeee or duie
#                                              (default DIR: ../shared/data/DATASET)
#   bash scripts/get_data.sh tokenizer [DIR]   bert-base-chinese's tokenizer and config, no
#                      weights, which the *-tiny recipes build their encoder from (default
#                      DIR: ../shared/models/bert-base-chinese-tokenizer; from the Hugging
#                      Face hub unless DATA_URL names a mirror)
#
# The recipes find them under data_root (../shared by default): after
#   bash scripts/get_data.sh duee ROOT/data/duee && bash scripts/get_data.sh tokenizer \
#     ROOT/models/bert-base-chinese-tokenizer
# `gplinker train --config configs/duee-tiny.yaml data_root=ROOT` runs with no other edit.
#
# None of these is in this repository: each belongs to its publisher, under its own licence.
#   duee     Baidu's DuEE 1.0: bash scripts/get_duee.sh (this script calls it).
#   cluener  CLUENER2020, https://github.com/CLUEbenchmark/CLUENER2020: the zip
#            https://storage.googleapis.com/cluebenchmark/tasks/cluener_public.zip holds
#            train.json, dev.json and test.json (one {"text", "label"} a line, inclusive ends).
#   cmeee    CMeEE of CBLUE, https://tianchi.aliyun.com/dataset/95414 (sign in, accept the
#            terms). The figures use a 5,000-line subset (CBLUE's dev file, in the `entities`
#            form with exclusive end offsets, `label` and `entity`), split by position: line
#            i to dev.json when i % 5 == 4, else to train.json; schema.json maps the 9 type
#            codes to their descriptions.
#   duie     Baidu's DuIE 1.0 (LIC2019), https://www.luge.ai (DuIE) or
#            https://ai.baidu.com/broad/download: train_data.json, dev_data.json and
#            all_50_schemas. The figures use a 7,158-line subset (train.json, dev.json:
#            {"text", "spo_list"}, no offsets) described in its SOURCE.md.
# If DATA_URL points to a mirror of the files (DATA_URL/train.json ...), they are downloaded.
set -euo pipefail
dataset=${1:-}
declare -A sha
case "$dataset" in
  duee) exec bash "$(dirname "$0")/get_duee.sh" "${2:-../shared/data/duee}" ;;
  cluener)
    sha=(
      [train.json]=60299d202779dc84f3c3bd81f4dc08f5323d0dbf762cb50cd62dd51aa9a871f8
      [dev.json]=90036b59832e007c45d11eafe5ed80549f58a18a29aaa7fe8b1229622c69ec38
      [test.json]=5ca36f6fbe29230a6e3244110fcd9487fc2f5a672f5bfeba82a30f0ece72aa69
    )
    where="https://github.com/CLUEbenchmark/CLUENER2020 (cluener_public.zip)"
    ;;
  cmeee)
    sha=(
      [train.json]=59517f00aa6edc8121220d65dcfd0ce3ca329a8a2fbdc054623bc13a36483088
      [dev.json]=0f2d7b35ea4dd9e8298fa76d901cd7754f3f09e73a99a890eb9e9128367a69f2
      [schema.json]=6179b44cf3591b225842578c664648c7c2ca5668875d13797ae10d99bd6da900
    )
    where="https://tianchi.aliyun.com/dataset/95414 (CBLUE; see the top of $0 for the split)"
    ;;
  tokenizer)
    sha=(
      [vocab.txt]=45bbac6b341c319adc98a532532882e91a9cefc0329aa57bac9ae761c27b291c
      [tokenizer.json]=55c5edcfb8936895e019b2d8f97dcb547734f25b29f95009155f4c8c15649aae
      [tokenizer_config.json]=adac4eb1158c23ecf85b5215105c1d0bcc42e34d6a9f82d637018f4b7f0b1aa2
      [config.json]=88af762cfb15fa9ce183c84dcbfdc9d635196ba635dfe81f265fdd21d67f4c4c
    )
    where="https://huggingface.co/bert-base-chinese"
    DATA_URL=${DATA_URL:-https://huggingface.co/bert-base-chinese/resolve/main}
    ;;
  duie)
    sha=(
      [train.json]=4be1f4472df80deca49a1725276267a4648693670a07106d4eb25a2e2825656f
      [dev.json]=5ea1e2cd231db9bc7347702966c56a77e02e9565e0c9168101619151a2ba740b
      [all_50_schemas]=e2a086168d607996e35f8016ab1c8fa88a24274de09f3e53a3ac468aff6a5d4f
    )
    where="https://www.luge.ai (DuIE; LIC2019)"
    ;;
  *)
    echo "error: give a dataset: duee, cluener, cmeee, duie or tokenizer (got '${dataset}')" >&2
    exit 2
    ;;
esac
if [ "$dataset" = tokenizer ]; then
  dir=${2:-../shared/models/bert-base-chinese-tokenizer}
else
  dir=${2:-../shared/data/$dataset}
fi
mkdir -p "$dir" 2>/dev/null || true
for f in "${!sha[@]}"; do
  if [ ! -f "$dir/$f" ] && [ -n "${DATA_URL:-}" ]; then
    if ! err=$(curl -fsSL --connect-timeout 20 --max-time 300 -o "$dir/$f.part" \
      "$DATA_URL/$f" 2>&1); then
      rm -f "$dir/$f.part"
      echo "error: could not download $DATA_URL/$f (${err//$'\n'/ }); no network, or" \
        "DATA_URL is not a mirror of the files" >&2
      exit 1
    fi
    mv "$dir/$f.part" "$dir/$f"
  fi
  if [ ! -f "$dir/$f" ]; then
    echo "error: $dir/$f is missing. Get $dataset from $where and put its files in $dir." >&2
    exit 1
  fi
  got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
  if [ "$got" != "${sha[$f]}" ]; then
    echo "warning: $dir/$f differs from the copy the figures in docs/results.md use" >&2
  else
    echo "ok: $dir/$f"
  fi
done
