#!/usr/bin/env bash
# Installs the MCP Inspector pinned in package.json and package-lock.json, for the test/mcp
# suite, which runs it in command-line mode as an outside MCP client. The suite runs this
# script itself, so a fresh clone needs no step of its own. 0.15.0 is pinned because later
# releases require Node.js 22 and the project supports Node.js 20.
#
# Usage: test/mcp/inspector/install.sh   (from anywhere; exits non-zero when npm fails)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { printf 'inspector: %s\n' "$*"; }

for tool in node npm; do
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

# npm ci writes node_modules/.package-lock.json; when it is missing or older than the
# lockfile or package.json, the installed Inspector may not be the pinned one.
marker="$here/node_modules/.package-lock.json"
if [ ! -f "$marker" ] || [ "$here/package-lock.json" -nt "$marker" ] ||
	[ "$here/package.json" -nt "$marker" ]; then
	say "installing from package-lock.json (npm ci)"
	(cd "$here" && npm ci --no-audit --no-fund)
else
	say "node_modules is up to date with package-lock.json"
fi
say "$(node -p 'require("'"$here"'/node_modules/@modelcontextprotocol/inspector/package.json").version') ready"
