#!/usr/bin/env bash
# Prints the path of a Chromium for the web page's real-browser tests (use it as
# KUBEPLAN_TEST_CHROMIUM). Installs Debian's chromium package when it is missing and this runs
# as root; where none can be had, prints nothing and says why on stderr, and the browser tests
# skip saying so (and fail under CI=true).
set -uo pipefail

log() { echo "chromium: $*" >&2; }
find_chromium() {
  local c
  for c in chromium chromium-browser google-chrome-stable google-chrome; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

if bin="$(find_chromium)"; then
  echo "$bin"
  exit 0
fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  log "installing Debian's chromium package (a few minutes, once)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get install -y -q --no-install-recommends chromium ||
    { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; }; } >/dev/null 2>&1
fi
if bin="$(find_chromium)"; then
  echo "$bin"
  exit 0
fi
log "no Chromium here and none could be installed: the web page's browser tests skip"
exit 0
