#!/usr/bin/env bash
# Installs what vessel's build, tests and benchmarks need on a fresh Debian 12
# machine. Idempotent: packages already present are skipped quickly.
set -euo pipefail

# binutils, gcc: the VMM tests assemble and compile their tiny guests (as/ld, C).
# docker-registry, skopeo, umoci, apache2-utils: the registry client's tests run a real
# registry (htpasswd makes its bcrypt password file, openssl signs test tokens)
# and check digests with skopeo.
PACKAGES=(busybox-static runc crun containerd hyperfine iproute2 nftables conntrack procps time python3 binutils gcc docker-registry skopeo umoci apache2-utils openssl tini)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  # The very first install on a new machine sometimes fails in dpkg; the
  # same command succeeds when run again (see shared/ENVIRONMENT.md).
  apt-get install -y -q "${missing[@]}" >/dev/null || apt-get install -y -q "${missing[@]}" >/dev/null
fi
