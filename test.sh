#!/usr/bin/env bash
# The whole test suite: unit tests, property tests, format vectors and the
# integration tests that run the real `snap` binary against a local
# directory and against a real S3 server (Garage on 127.0.0.1, which this
# script installs when it is missing). `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")"
GARAGE_VERSION=2.5.0
if ! command -v garage >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/garage" ]; then
  echo "Installing Garage $GARAGE_VERSION, the S3 server the tests use (once; several minutes)..." >&2
  cargo install garage --locked --version "$GARAGE_VERSION"
fi
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
cargo test --workspace --all-targets "$@"
