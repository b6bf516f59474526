#!/usr/bin/env bash
# The README's second command: the whole test suite. Installs what the tests
# need first. Privileged tests need root; they fail (not skip) without it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
if [ "$(id -u)" != 0 ]; then
  echo "test.sh: the test suite runs real containers and needs root" >&2
  exit 1
fi
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test"
# Integration tests start real containers; two at a time suit these 2 cores.
cargo test --workspace -- --test-threads=2
