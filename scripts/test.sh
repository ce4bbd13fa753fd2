#!/usr/bin/env bash
# Set up (scripts/setup.sh, scripts/setup_browser.sh), then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_browser.sh
. .venv/bin/activate
ruff format --check gplinker tests scripts
ruff check gplinker tests scripts
lint-imports
python -m pytest -q "$@"
