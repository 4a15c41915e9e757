#!/usr/bin/env bash
# Installs Debian's chromium for the report tests (tests/test_report.py), which drive it headless with Playwright's
# Python package (envs/test.txt) and never download a browser of their own. Idempotent; needs root (CI runs as root).
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q chromium fonts-dejavu-core
