#!/usr/bin/env bash
# Installs what the tests need, builds once, runs the whole suite: unit and integration tests
# against a real mosquitto and real HTTP servers on 127.0.0.1, the cloud side's tests (the
# Lambda, its template, and the bridge end to end through it), the dashboard in a real browser,
# then the firmware's tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

install_packages "${DTWIN_TEST_APT_PACKAGES[@]}"
install_test_tools
require_swift
say "checking the Swift code's format (swift format, configured in .swift-format)"
swift format lint --strict --recursive Sources Tests Benchmarks Package.swift ||
    die "swift format found code to format: run  swift format format -i --recursive Sources Tests Benchmarks Package.swift"
say "building (the first build takes a few minutes)"
swift build --build-tests
say "running the tests"
swift test --skip-build
say "running the cloud side's tests (cloud/: template, Lambda handler, end to end with the bridge)"
.build/tools-venv/bin/python -m pytest -q -p no:cacheprovider cloud/tests
say "running the dashboard's tests in a real browser (headless Chromium; screenshots in .build/artifacts)"
.build/tools-venv/bin/python -m pytest -q -p no:cacheprovider Tests/browser
say "running the firmware's tests (UNO build, host tests, simavr end to end)"
./firmware/test.sh
