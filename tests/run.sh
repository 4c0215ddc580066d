#!/usr/bin/env bash
# README command 2: set up, then lint, type-check and run every test (the lab tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
exec .venv/bin/python -m pytest "$@"
