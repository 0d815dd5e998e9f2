#!/usr/bin/env bash
# scripts/card-picture.sh: redraw docs/card.png, the README's picture of the incident card, from the
# card's own Block Kit (scripts/cardpicture renders a representative incident with slackui.Card and
# an HTML page that lays it out like Slack), screenshot by headless Chromium from Debian's packages.
# Writes the Block Kit Builder link of the same JSON into the README (and prints it). Run by hand, not in CI.
set -euo pipefail
cd "$(dirname "$0")/.."

need_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v chromium >/dev/null 2>&1; then
  echo "card-picture.sh: installing chromium and fonts (apt-get)…" >&2
  need_root apt-get update -qq
  need_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-lato fonts-noto-color-emoji fonts-dejavu-core >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go run ./scripts/cardpicture -out "$tmp" >/dev/null
chrome=(chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --force-device-scale-factor=1
        --user-data-dir="$tmp/profile" --virtual-time-budget=2000)
# First pass: the laid-out height (the page puts it in its title); second: the screenshot at that size.
height=$("${chrome[@]}" --dump-dom "file://$tmp/card.html" 2>/dev/null | sed -n 's/.*<title>height=\([0-9]*\)<\/title>.*/\1/p')
if [ -z "$height" ]; then echo "card-picture.sh: the page did not report its height" >&2; exit 1; fi
mkdir -p docs
"${chrome[@]}" --window-size="760,$height" --screenshot="$PWD/docs/card.png" "file://$tmp/card.html" 2>/dev/null
echo "card-picture.sh: docs/card.png (760×$height, $(stat -c %s docs/card.png) bytes)" >&2
# The README's Block Kit Builder link (a reference-style link definition) follows the same JSON.
link=$(cat "$tmp/builder-url.txt")
grep -q '^\[card-builder\]: ' README.md || { echo "card-picture.sh: README.md has no [card-builder]: line" >&2; exit 1; }
LINK="$link" awk 'index($0, "[card-builder]: ") == 1 { print "[card-builder]: " ENVIRON["LINK"]; next } { print }' README.md >"$tmp/README.md"
cat "$tmp/README.md" >README.md
echo "$link"
