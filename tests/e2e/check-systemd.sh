#!/bin/bash
# make check-package's entry to the systemd guest: tests/e2e/run --systemd, with the .deb that
# tests/package.sh left in tests/package/, one TAP line per scenario of scenarios-systemd.
# test-timeout: 3600 (as check.sh: run stops each scenario at its own limit)
E2E_RUN_ARGS=--systemd exec bash "$(dirname "$0")/check.sh"
