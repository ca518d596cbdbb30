#!/bin/sh
# Installs the headless browser the e2e tests drive: Debian's chromium and its
# matching chromedriver. The tests point Selenium at these two paths so that
# Selenium Manager never downloads a browser of its own.
# Idempotent: when both are present it exits at once.
set -eu

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=""
else
    as_root="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$as_root apt-get update
$as_root apt-get install -y --no-install-recommends chromium chromium-driver
