#!/usr/bin/env bash
# Idempotent set-up shared by the README's two commands: Debian packages (Samba for the lab AD, Chromium for the
# browser sign-in's test), the local PostgreSQL the tests use, and the project's virtualenv. Run as root on Debian;
# safe to repeat.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[bootstrap] %s\n' "$*"; }
export DEBIAN_FRONTEND=noninteractive

apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  apt-get install -y -qq "$@" >/dev/null
}

missing=()
command -v samba-tool >/dev/null 2>&1 || missing+=(samba samba-ad-dc winbind krb5-user ldb-tools)
{ [ -x /usr/sbin/samba ] || command -v samba >/dev/null 2>&1; } || missing+=(samba)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
# A real browser for the browser sign-in's lab test: headless Chromium driven through chromedriver, trusting the lab
# CA through an NSS database made with certutil (about a minute to install).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "Missing Debian packages (${missing[*]}): run this as root, or: apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

# PostgreSQL at 127.0.0.1:5432 (database "test") backs the PostgreSQL half of the storage tests.
if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  fi
fi

# The virtualenv, reinstalled only when pyproject.toml changes.
py=${PYTHON:-python3}
stamp=.venv/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$py" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi
