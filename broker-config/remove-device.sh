#!/usr/bin/env bash
# Takes a device's credential away on a broker directory made by setup.sh.
#
#   broker-config/remove-device.sh DIR NAME
#
# A running broker rereads its password file at once (SIGHUP): the device can no longer log in.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

[ $# -eq 2 ] && [[ "$1" != -* ]] || { say "usage: $0 DIR NAME"; exit 2; }
require_tools mosquitto_passwd
dir="$(broker_dir "$1")"
name="$2"
validate_device_name "$name"
has_user "$dir" "$name" || die "device $name has no credential in $dir/passwd"
mosquitto_passwd -D "$dir/passwd" "$name" >/dev/null || die "mosquitto_passwd could not write $dir/passwd"
hand_to_broker "$dir"
say "device $name removed"
reload_broker "$dir"
