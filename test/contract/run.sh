#!/usr/bin/env bash
# Contract test: TIDAL's own web SDK auth package (@tidal-music/auth, pinned in package.json
# and package-lock.json) logs in through the device flow and refreshes against
# cmd/tidal-server. Builds the server, installs the SDK when needed, runs `node --test`.
#
# Usage: test/contract/run.sh   (from anywhere; exits non-zero when a test fails)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

say() { printf 'contract: %s\n' "$*"; }

if ! command -v go >/dev/null 2>&1; then
	say "go is not installed" >&2
	exit 1
fi
say "building bin/tidal-server"
(cd "$root" && go build -o bin/tidal-server ./cmd/tidal-server)

"$root/hack/npm-ci.sh" "$here" contract

cd "$here"
sdk_version="$(node -p 'require("./node_modules/@tidal-music/auth/package.json").version')"
say "running node --test ($(node --version), @tidal-music/auth $sdk_version)"
TIDAL_SERVER_BIN="$root/bin/tidal-server" node --test --test-reporter=spec ./*.test.mjs
say "passed"
