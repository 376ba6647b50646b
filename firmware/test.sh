#!/usr/bin/env bash
# The firmware's tests, in three steps:
#   1. the UNO build with its flash and RAM headroom check (build.sh);
#   2. host tests: the sketch's code compiled with g++ and sanitizers against fake Arduino
#      headers and a scripted SIM7000;
#   3. end to end: the real .elf in simavr, a fake SIM7000 speaking real MQTT to a real
#      mosquitto, and the real dtwin bridge ($DTWIN_BINARY, default .build/debug/dtwin).
#
#   firmware/test.sh      (scripts/test.sh runs it after installing what it needs)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
build="$here/build"
python="${DTWIN_TEST_PYTHON:-$root/.build/tools-venv/bin/python}"
dtwin="${DTWIN_BINARY:-$root/.build/debug/dtwin}"
mkdir -p "$build"
status=0

echo "== firmware: the UNO build (config.h as committed: plain MQTT)"
"$here/build.sh" "$build/uno" -DDTWIN_NO_SECRETS_FILE || status=1

echo "== firmware: host tests (g++, AddressSanitizer, UndefinedBehaviorSanitizer), plain and TLS builds"
# A password configured, so the credential lines are exercised (the simulation runs without).
# The TLS build is the one add-device.sh --arduino provisions (test/host/tls_secrets.h stands in
# for the dtwin_secrets.h it writes).
for variant in plain tls; do
    extra=()
    [ "$variant" = tls ] && extra=(-include "$here/test/host/tls_secrets.h")
    g++ -std=c++17 -g -O1 -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all \
        -I"$here/test/host" -I"$here/dtwin_uno" -DDTWIN_NO_SECRETS_FILE -DDTWIN_MQTT_PASSWORD='"s3cret"' "${extra[@]}" \
        -o "$build/host_tests_$variant" \
        "$here/test/host/host_tests.cpp" "$here/test/host/fake_arduino.cpp" "$here/test/host/sketch.cpp" \
        "$here/dtwin_uno/at_modem.cpp" "$here/dtwin_uno/commands.cpp" "$here/dtwin_uno/device.cpp"
    "$build/host_tests_$variant" || status=1
done

echo "== firmware: end to end in simavr"
gcc -O2 -Wall -Wextra -Werror -o "$build/uno_sim" "$here/sim/uno_sim.c" -I/usr/include/simavr \
    -I/usr/include/simavr/parts -lsimavr -lsimavrparts -lpthread -lutil
[ -x "$dtwin" ] || { echo "error: no dtwin binary at $dtwin (swift build first)" >&2; exit 1; }
timeout 600 "$python" "$here/test/e2e_test.py" --dtwin "$dtwin" --uno-sim "$build/uno_sim" --build-dir "$build/sim" || status=1
exit $status
