#!/usr/bin/env bash
# The test command (README, CI): installs everything the tests need, then runs them all. On a fresh Debian machine
# with Node.js >= 20.19 and npm:
#   bash scripts/test.sh
# 1. the Debian packages the tests use (.ci/install-deps.sh: docker-registry, skopeo, xz, zstd, ...; sudo when not root),
# 2. the npm packages of package-lock.json (npm ci),
# 3. every test (npm test: build, then mocha).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "scripts/test.sh: Node.js >= 20.19 and npm are needed first (https://nodejs.org, or Debian 13's nodejs and npm packages)" >&2
  exit 2
fi
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
  echo "scripts/test.sh: Node.js $(node --version) is too old; mirror needs >= 20.19" >&2
  exit 2
fi

bash .ci/install-deps.sh
npm ci --no-audit --no-fund
npm test
