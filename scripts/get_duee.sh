#!/usr/bin/env bash
# Put DuEE 1.0 (2021 release) in a folder and check it is the release the figures use.
#
#   bash scripts/get_duee.sh [DIR]      (default DIR: ../shared/data/duee)
#
# The data is Baidu's, under its own licence, so it is not in this repository. The official
# source is the 千言 (LUGE) page https://www.luge.ai/#/luge/dataDetail?id=6 (also the
# LIC2021 competition at https://aistudio.baidu.com/aistudio/competition/detail/65): sign in,
# accept the licence, download duee_train.json.zip, duee_dev.json.zip and
# duee_event_schema.json.zip, and unzip them into DIR. If DUEE_URL points to a mirror of the
# three zips (DUEE_URL/duee_train.json.zip ...), this script downloads them itself.
set -euo pipefail
dir=${1:-../shared/data/duee}
declare -A sha=(
  [duee_train.json]=839a62fd93b0b8f0bcbe6ada70429ad2dcf097461f8a0f02c01ee9762d61f714
  [duee_dev.json]=6092fa44bd2cdfca696d3b8022b837a6b2a63739e0804377b46cdfcf670c32d2
  [duee_event_schema.json]=c47cb0f7398c8306dfdcee21bf16f3bb618adb02d5b1f00356df658905c554e3
)
mkdir -p "$dir" 2>/dev/null || true
for f in "${!sha[@]}"; do
  if [ ! -f "$dir/$f" ] && [ -n "${DUEE_URL:-}" ]; then
    tmp=$(mktemp -d)
    # one line on failure: curl's own reason (e.g. "Could not resolve host"), then ours
    if ! err=$(curl -fsSL --connect-timeout 20 --max-time 120 -o "$tmp/$f.zip" \
      "$DUEE_URL/$f.zip" 2>&1); then
      rm -rf "$tmp"
      err=${err//$'\n'/ }
      echo "error: could not download $DUEE_URL/$f.zip ($err); no network," \
        "or DUEE_URL is not a mirror of the three zips" >&2
      exit 1
    fi
    if ! err=$(unzip -q -o -j "$tmp/$f.zip" "*$f" -d "$dir" 2>&1); then
      rm -rf "$tmp"
      echo "error: $DUEE_URL/$f.zip is not a zip holding $f: ${err//$'\n'/ }" >&2
      exit 1
    fi
    rm -rf "$tmp"
  fi
  if [ ! -f "$dir/$f" ]; then
    echo "error: $dir/$f is missing. Download it from https://www.luge.ai/#/luge/dataDetail?id=6" \
      "(sign in, accept Baidu's licence) and unzip it into $dir; see the top of $0." >&2
    exit 1
  fi
  got=$(sha256sum "$dir/$f" | cut -d' ' -f1)
  if [ "$got" != "${sha[$f]}" ]; then
    echo "warning: $dir/$f differs from the 2021 release the published figures use" >&2
  else
    echo "ok: $dir/$f"
  fi
done
# The masked-LM pretraining of configs/duee-tiny.yaml also reads LIC2020's test1.json (texts
# without labels): https://aistudio.baidu.com/aistudio/competition/detail/32 (sign in).
t1="$dir/lic2020_release/test1.json"
if [ ! -f "$t1" ] && [ -n "${DUEE_URL:-}" ]; then
  mkdir -p "$dir/lic2020_release"
  curl -fsSL --connect-timeout 20 --max-time 120 -o "$t1.part" "$DUEE_URL/test1.json" \
    && mv "$t1.part" "$t1" || rm -f "$t1.part"
fi
if [ ! -f "$t1" ]; then
  echo "warning: $t1 is missing: configs/duee-tiny.yaml pretrains on it. Get LIC2020's" \
    "test1.json from https://aistudio.baidu.com/aistudio/competition/detail/32 into" \
    "$dir/lic2020_release/, or train with pretrain.texts=[]" >&2
elif [ "$(sha256sum "$t1" | cut -d' ' -f1)" != \
  33a7191559394013ca486ede3c05d15cd35ffd61bf0387544cda49518b444856 ]; then
  echo "warning: $t1 differs from the LIC2020 test1.json the published figures use" >&2
else
  echo "ok: $t1"
fi
