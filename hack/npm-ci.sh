#!/usr/bin/env bash
# Installs the npm packages pinned in DIR's package.json and package-lock.json with `npm ci`,
# when DIR/node_modules is missing or older than either file. The test suites that run Node.js
# (test/contract, test/mcp/inspector) call it, so a fresh clone needs no step of its own.
#
# Usage: hack/npm-ci.sh DIR LABEL   (LABEL prefixes the messages; exits non-zero when npm fails)
set -euo pipefail

dir="$(cd "$1" && pwd)"
label="$2"
say() { printf '%s: %s\n' "$label" "$*"; }

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
# lockfile or package.json, the installed packages may not be the pinned ones.
marker="$dir/node_modules/.package-lock.json"
if [ ! -f "$marker" ] || [ "$dir/package-lock.json" -nt "$marker" ] || [ "$dir/package.json" -nt "$marker" ]; then
	say "installing from package-lock.json (npm ci)"
	(cd "$dir" && npm ci --no-audit --no-fund)
else
	say "node_modules is up to date with package-lock.json"
fi
