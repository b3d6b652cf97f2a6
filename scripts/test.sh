#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (Debian's
# redis-server) when it is missing, then builds and runs every test, the UI tests and the
# benchmarks in quick mode. Tests start their own redis-server on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the TLS test makes its own CA
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The Debian package may start a system service on 6379; the tests never use it.
redis-server --version

export CARGO_TERM_COLOR=never
echo "==> cargo test (workspace)"
cargo test --workspace --all-targets --no-fail-fast -- --test-threads="${TEST_THREADS:-4}"
# `--all-targets` also runs every criterion benchmark once in test mode, so the benches build and
# run on every CI pass; full measurements: see BENCHMARKS.md.
