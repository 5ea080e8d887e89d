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

for tool in go node npm; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		say "$tool is not installed" >&2
		exit 1
	fi
done
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
	say "Node.js 20 or later is needed, found $(node --version)" >&2
	exit 1
fi

say "building bin/tidal-server"
(cd "$root" && go build -o bin/tidal-server ./cmd/tidal-server)

# npm ci writes node_modules/.package-lock.json; when it is missing or older than the
# lockfile or package.json, the installed SDK may not be the pinned one.
marker="$here/node_modules/.package-lock.json"
if [ ! -f "$marker" ] || [ "$here/package-lock.json" -nt "$marker" ] ||
	[ "$here/package.json" -nt "$marker" ]; then
	say "installing the SDK from package-lock.json (npm ci)"
	(cd "$here" && npm ci --no-audit --no-fund)
else
	say "node_modules is up to date with package-lock.json"
fi

cd "$here"
sdk_version="$(node -p 'require("./node_modules/@tidal-music/auth/package.json").version')"
say "running node --test ($(node --version), @tidal-music/auth $sdk_version)"
TIDAL_SERVER_BIN="$root/bin/tidal-server" node --test --test-reporter=spec ./*.test.mjs
say "passed"
