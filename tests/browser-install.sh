#!/bin/sh
# Debian's Chromium for tests/e2e/test_statuspage_browser.py (the status page rendered
# headless, screenshotted and checked); fonts-dejavu-core so text has a font. Idempotent.
set -eu
exec sh "$(dirname "$0")/debian-install.sh" tests/browser-install.sh chromium fonts-dejavu-core
