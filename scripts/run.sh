#!/usr/bin/env bash
# Sets up and runs dtwin on this machine: installs mosquitto, builds the bridge, starts the
# development broker from broker-config/dev and the bridge on its embedded defaults, then shows
# readings from a simulated device flowing into the twin table. Ctrl-C stops everything.
#
#   scripts/run.sh          run until Ctrl-C
#   scripts/run.sh --once   show the readings, then stop (for a quick check)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

once=false
[ "${1:-}" = "--once" ] && once=true

install_packages
require_swift
build_release --product dtwin
dtwin="$DTWIN_RELEASE_BIN/dtwin"

mkdir -p .run/mosquitto
# mosquitto started as root drops to the `mosquitto` user, which must own its folder.
[ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1 && chown mosquitto .run/mosquitto

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 0' INT TERM

listening() { (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; }
if listening; then
    say "a broker already listens on 127.0.0.1:1883; using it"
else
    say "starting mosquitto (broker-config/dev/mosquitto.conf)"
    mosquitto -c broker-config/dev/mosquitto.conf &
    pids+=($!)
    for _ in $(seq 100); do listening && break; sleep 0.1; done
    listening || die "mosquitto did not start; see .run/mosquitto/mosquitto.log"
fi

say "starting the bridge on its embedded defaults (log: .run/bridge.log)"
(cd .run && exec "$dtwin" bridge) 2>.run/bridge.log &
bridge=$!
pids=("$bridge" "${pids[@]}")
for _ in $(seq 100); do
    [ "$(mosquitto_sub -t dtwin/bridge/status -C 1 -W 1 2>/dev/null)" = online ] && break
done
[ "$(mosquitto_sub -t dtwin/bridge/status -C 1 -W 1 2>/dev/null)" = online ] || die "the bridge did not come online; see .run/bridge.log"

say "a simulated device 'demo1' publishes five readings on dtwin/demo1/up"
mosquitto_pub -q 1 -t dtwin/demo1/up -m "demo1:awake"
for value in 512 498 530 87 505; do
    mosquitto_pub -q 1 -t dtwin/demo1/up -m "sim-demo1 data $value"
done
mosquitto_pub -q 1 -t dtwin/demo1/up -m '{"value": 21.5, "seq": 6, "unit": "C"}'
for _ in $(seq 50); do
    [ "$(cd .run && "$dtwin" readings demo1 --json | wc -l)" -ge 7 ] && break
    sleep 0.1
done
say "the twin table now holds (dtwin readings demo1):"
(cd .run && "$dtwin" readings demo1)

if $once; then
    say "stopping"
    exit 0
fi
cat >&2 <<MSG

The bridge is running. Try, in another terminal:
  mosquitto_pub -q 1 -t dtwin/uno1/up -m 'sim-uno1 data 600'
  mosquitto_sub -v -t 'dtwin/#'
  (cd .run && $dtwin readings uno1)
  $dtwin send uno1 LIG
Ctrl-C stops the bridge and the broker.
MSG
tail -f .run/bridge.log &
pids+=($!)
wait "$bridge"
