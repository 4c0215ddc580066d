#!/usr/bin/env bash
# README command 1: set up, bring the lab up, print endpoints and people; Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/bootstrap.sh
exec .venv/bin/resetbot-lab up "$@"
