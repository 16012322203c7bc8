#!/usr/bin/env bash
# Runs the browser tests (lib*.test.mjs need only Node): installs the pinned playwright-core from the npm
# registry on first use (package-lock.json), then node's test runner. Needs
# Debian's chromium and Node.js >= 18 (scripts/deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null || { echo "browser tests need Node.js (make deps)" >&2; exit 1; }
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || { echo "browser tests need chromium (make deps)" >&2; exit 1; }
if [[ ! -d node_modules/playwright-core ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
exec node --test --test-reporter=spec lib.test.mjs lib-gaps.test.mjs lib-flow.test.mjs client.test.mjs ui.test.mjs chat.test.mjs
