#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; no browser is downloaded),
# and a CJK font so that screenshots of Chinese text show glyphs, not boxes.
# Needs root and apt; without them the browser tests skip (or fail under
# GPLINKER_REQUIRE_BROWSER=1, as in CI).
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get > /dev/null; then
  echo "no /usr/bin/chromium and no root apt-get to install it: browser tests will skip" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q chromium fonts-wqy-microhei > /dev/null 2>&1 || {
  apt-get update -q > /dev/null
  apt-get install -y -q chromium fonts-wqy-microhei > /dev/null
}
/usr/bin/chromium --version
