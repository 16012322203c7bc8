#!/usr/bin/env bash
# deps.sh: the Debian 12 packages confab needs to build, run and test.
#   scripts/deps.sh check    exit 0 when all are installed, else list what is missing
#   scripts/deps.sh ensure   install what is missing (as root), or print the command
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libwebsockets-dev libhiredis-dev libjwt-dev libmsgpack-dev libcmocka-dev
  libsystemd-dev libjansson-dev
  redis-server redis-tools
  # TLS tests: libssl-dev for the test client, openssl to make certificates
  libssl-dev openssl
  chromium # browser tests (headless)
  # deployment tests (tests/deploy/check.sh): systemd-analyze, systemd-sysusers
  # and systemd-tmpfiles; cpack's DEB generator (dpkg-shlibdeps, file);
  # python3-yaml for the rendered-manifest checks; strace to hold the daemons'
  # system calls against the units' filters
  systemd dpkg-dev file python3 python3-yaml strace
  # `make fuzz`: clang 14 and its libFuzzer/sanitizer runtimes
  clang-14 libclang-rt-14-dev
)
# kubectl renders the Kubernetes manifests (`kubectl kustomize`, offline); any
# kubectl will do, else Debian's kubernetes-client.
if ! command -v kubectl >/dev/null; then
  PACKAGES+=(kubernetes-client)
fi
# Browser tests also need Node.js >= 18 and npm; any installation will do.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

case "${1:-ensure}" in
  check)
    if ((${#missing[@]})); then
      echo "missing packages: ${missing[*]}" >&2
      exit 1
    fi
    ;;
  ensure)
    ((${#missing[@]})) || exit 0
    cmd=(apt-get install -y --no-install-recommends "${missing[@]}")
    if [[ $(id -u) -eq 0 ]]; then
      echo "deps: installing ${missing[*]}" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq
      "${cmd[@]}" >/dev/null
    else
      echo "confab needs these Debian packages: ${missing[*]}" >&2
      echo "install them with:" >&2
      echo "  sudo apt-get update && sudo ${cmd[*]}" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 check|ensure" >&2
    exit 2
    ;;
esac
