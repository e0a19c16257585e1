#!/usr/bin/env bash
# The experience-pool tests run against a real PostgreSQL server (started by a pytest fixture from the
# server binaries). Installs Debian's postgresql package when the binaries are missing.
set -euo pipefail
if compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || command -v initdb > /dev/null; then
  exit 0
fi
if ! command -v apt-get > /dev/null; then
  echo "PostgreSQL server binaries (initdb, pg_ctl) are missing; install PostgreSQL >= 13 with your package manager." >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql > /dev/null
