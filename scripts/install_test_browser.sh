#!/usr/bin/env bash
# Install the headless browser that tests/serve/test_page.py drives: Debian's chromium and chromium-driver.
#
# Idempotent: does nothing when both are already installed. Uses apt-get as root (or through sudo without a
# password); anywhere else it says what to install and exits 0, and the browser test then skips with that
# reason (except under CI=true, where a missing browser fails the test).
set -uo pipefail

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install_test_browser: no apt-get here; install chromium and its chromedriver to run the browser test." >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install_test_browser: not root; run 'sudo apt-get install chromium chromium-driver' to run the browser test." >&2
    exit 0
fi
echo "install_test_browser: installing chromium and chromium-driver with apt-get" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq && "${as_root[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null; }; then
    echo "install_test_browser: apt-get could not install chromium and chromium-driver." >&2
    [ "${CI:-}" = "true" ] && exit 1
fi
exit 0
