#!/usr/bin/env bash
# README command 2: set up, then lint, type-check, check the import contracts and run every test (the lab tests
# included). CI runs exactly this.
#   bash tests/run.sh [pytest args]    the whole check
#   bash tests/run.sh --fast [args]    the developer's loop: the same lint, types and contracts, then only the tests
#                                      that need no lab and start no process (under a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
fast=""
if [ "${1:-}" = "--fast" ]; then fast=1; shift; fi
bash lab/bootstrap.sh
echo "== ruff"
.venv/bin/ruff check .
echo "== mypy"
.venv/bin/mypy
echo "== import contracts"
.venv/bin/lint-imports
echo "== pytest"
if [ -n "$fast" ]; then
  exec .venv/bin/python -m pytest -q -m "not lab and not process" "$@"
fi
exec .venv/bin/python -m pytest "$@"
