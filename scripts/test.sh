#!/usr/bin/env bash
# The README's second command: the whole test suite. Installs what the tests
# need first. Privileged tests need root; they fail (not skip) without it.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
bash scripts/guest-kernel.sh >/dev/null  # the Linux boot test's kernel, cached in /var/cache/vessel
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
log=$(mktemp /tmp/vessel-test.XXXXXX)
trap 'rm -f "$log"' EXIT
status=0
cargo test --workspace -- --test-threads=2 2>&1 | tee "$log" || status=$?
# One closing line for the whole suite (cargo's last line is the last crate's doc-tests).
# "ignored" tests are helpers that their parent test runs in a private namespace.
awk '/^test result:/ { p += $4; f += $6; i += $8 }
     END { printf "(%d ignored: run by their parent tests)\ntotal: %d passed, %d failed\n", i, p, f }' "$log"
exit "$status"
