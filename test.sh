#!/usr/bin/env bash
# The whole test suite: unit tests, property tests, format vectors and the
# integration tests that run the real `snap` binary against a local
# directory and against a real S3 server (Garage on 127.0.0.1), and the web
# UI in a real browser (chromium); this script installs both when they are
# missing. `.ci/run` calls this.
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
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo test --workspace --all-targets "$@"
