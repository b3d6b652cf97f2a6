#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (Debian's
# redis-server, openssl, chromium + chromium-driver for the dashboard's browser test, prometheus
# for promtool) when it is missing, then builds and runs every test, the UI tests,
# the doctests and the benchmarks in quick mode. Tests start their own redis-server on free
# loopback ports; nothing here uses a system Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

# The tests configure every cache themselves: a caller's SYNTRA_* settings (a Redis URL, a
# namespace, DISABLED=true, budget or TTL overrides) must not leak into them.
while IFS= read -r var; do
  unset "$var"
done < <(env | sed -n 's/^\(SYNTRA_\(CACHE\|BUDGET\|TTL\)_[A-Za-z0-9_]*\)=.*/\1/p')

redis_bin="${REDIS_SERVER_BIN:-redis-server}"   # the harness honours REDIS_SERVER_BIN too
missing=()
command -v "$redis_bin" >/dev/null 2>&1 || missing+=(redis-server)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)   # the TLS test makes its own CA
# tests/topology.rs: `redis-cli --cluster create` joins a cluster; Sentinels run from redis-sentinel.
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
command -v redis-sentinel >/dev/null 2>&1 || missing+=(redis-sentinel)
# tests/dashboard.rs drives headless Chromium through chromedriver; tests/ops.rs runs promtool.
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing ${missing[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The Debian packages may start system services (redis on 6379, prometheus on 9090); the tests
# never use them.

# ACL users in the URL (`--user`) and TLS (`--tls-port`) need Redis 6 or later.
version_line="$("$redis_bin" --version)"
version="$(sed -n 's/.* v=\([0-9][0-9.]*\).*/\1/p' <<<"$version_line")"
major="${version%%.*}"
if [ -z "$major" ] || [ "$major" -lt 6 ]; then
  echo "error: the tests need redis-server >= 6 (ACL users and TLS); found: ${version_line}" >&2
  echo "       install a newer redis-server, or point REDIS_SERVER_BIN at one" >&2
  exit 1
fi
echo "==> redis-server ${version} (>= 6: ACL and TLS tests run)"

# rust-toolchain.toml pins 1.95.0 (the UI snapshots' compiler). Where rustup knows that toolchain
# only as `stable`, name it 1.95.0 too (no download: this network has none).
if command -v rustup >/dev/null 2>&1 && ! rustup toolchain list | grep -q '^1\.95\.0'; then
  if rustup run stable rustc --version 2>/dev/null | grep -q '^rustc 1\.95\.0 '; then
    rustup toolchain link 1.95.0 "$(rustup run stable rustc --print sysroot)"
  fi
fi

threads="${TEST_THREADS:-$(nproc 2>/dev/null || echo 2)}"
export CARGO_TERM_COLOR=never
# One-shot builds gain nothing from incremental state, which only costs disk.
export CARGO_INCREMENTAL=0
status=0
echo "==> cargo test (workspace, ${threads} test threads)"
cargo test --locked --workspace --all-targets --no-fail-fast -- --test-threads="${threads}" || status=$?
# `--all-targets` also runs every criterion benchmark once in test mode, so the benches build and
# run on every CI pass; full measurements: see BENCHMARKS.md. It does not run doctests:
echo "==> cargo test (doctests)"
cargo test --locked --workspace --doc --no-fail-fast -- --test-threads="${threads}" || status=$?
exit "$status"
