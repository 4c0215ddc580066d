#!/usr/bin/env bash
# README command 1: set up, bring the lab up, run the bot on it and play a scripted helpdesk morning, then stop.
# `bash lab/up.sh up` keeps just the lab running instead (Ctrl-C stops it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash lab/bootstrap.sh
exec .venv/bin/resetbot-lab "${@:-demo}"
