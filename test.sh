#!/usr/bin/env bash
# The whole test suite: unit tests, property tests, format vectors and the
# integration tests that run the real `snap` binary. `.ci/run` calls this.
set -euo pipefail
cd "$(dirname "$0")"
cargo test --workspace --all-targets "$@"
