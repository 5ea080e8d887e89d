#!/usr/bin/env bash
# Installs the MCP Inspector pinned in package.json and package-lock.json, for the test/mcp
# suite, which runs it in command-line mode as an outside MCP client. The suite runs this
# script itself, so a fresh clone needs no step of its own. 0.15.0 is pinned because later
# releases require Node.js 22 and the project supports Node.js 20.
#
# Usage: test/mcp/inspector/install.sh   (from anywhere; exits non-zero when npm fails)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$here/../../../hack/npm-ci.sh" "$here" inspector
printf 'inspector: %s ready\n' \
	"$(node -p 'require("'"$here"'/node_modules/@modelcontextprotocol/inspector/package.json").version')"
