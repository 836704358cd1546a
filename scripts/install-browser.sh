#!/usr/bin/env bash
# Install the headless browser that tests/test_site.py drives through Playwright: Debian's chromium package
# (Playwright's own browser download is not used). Idempotent: nothing happens when /usr/bin/chromium exists;
# without apt (or without root/sudo) it says so and exits 0, and the browser tests skip with that reason.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "chromium present: /usr/bin/chromium"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "apt-get not available: chromium not installed (the browser tests will skip)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "not root and no sudo: chromium not installed (the browser tests will skip)"
    exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may have empty package lists; update them once, then install.
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium
echo "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
