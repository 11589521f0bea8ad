#!/usr/bin/env bash
# The whole test suite: unit tests, property tests, format vectors and the
# integration tests that run the real `snap` binary against a local
# directory and against a real S3 server (Garage on 127.0.0.1; moto's S3
# server for versioning and Object Lock), and the web UI in a real browser
# (chromium); this script installs them when they are missing. `.ci/run`
# calls this.
set -euo pipefail
cd "$(dirname "$0")"
GARAGE_VERSION=2.5.0
if ! command -v garage >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]; then
  echo "Installing Garage $GARAGE_VERSION, the S3 server the tests use (once; several minutes)..." >&2
  cargo install garage --locked --version "$GARAGE_VERSION"
fi
# The web UI's tests drive Debian's chromium through chromium-driver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "Installing chromium and chromium-driver, the browser the UI tests use (once)..." >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
# Versioning and Object Lock (tests/lock.rs) are tested against moto's S3
# server, as Garage has neither: from the PATH if there, else in a venv of
# its own (Debian's python3 refuses pip installs outside one).
MOTO_VERSION=5.2.1
MOTO_VENV="${XDG_CACHE_HOME:-$HOME/.cache}/snap-test/moto-$MOTO_VERSION"
if ! command -v moto_server >/dev/null 2>&1 && [ ! -x "$MOTO_VENV/bin/moto_server" ]; then
  echo "Installing moto[server] $MOTO_VERSION, the S3 server with Object Lock the tests use (once)..." >&2
  if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3 python3-venv >/dev/null
  fi
  python3 -m venv "$MOTO_VENV"
  "$MOTO_VENV/bin/pip" install -q "moto[server]==$MOTO_VERSION"
fi
if [ -x "$MOTO_VENV/bin/moto_server" ]; then
  export PATH="$MOTO_VENV/bin:$PATH"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo test --workspace --all-targets "$@"
