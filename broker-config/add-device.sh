#!/usr/bin/env bash
# Gives a device its own credential on a broker directory made by setup.sh.
#
#   PASSWORD=$(broker-config/add-device.sh DIR NAME)            a new device
#   PASSWORD=$(broker-config/add-device.sh --rotate DIR NAME)   a new password for one
#
# The password goes to standard output, once, and nowhere else (the password file keeps only
# its hash); what to do with it goes to standard error. A running broker picks the change up
# at once (SIGHUP); with --rotate the device's old password stops working for new connections.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

usage() {
    say "usage: $0 [--rotate] DIR NAME"
    say "  NAME: the device name, 1 to 64 of A-Z a-z 0-9 _ - (it is also the MQTT user name and client id)"
    exit 2
}

rotate="" args=()
for argument in "$@"; do
    case "$argument" in
        --rotate) rotate=1 ;;
        -h|--help) usage ;;
        -*) say "unknown option $argument"; usage ;;
        *) args+=("$argument") ;;
    esac
done
[ ${#args[@]} -eq 2 ] || usage
require_tools openssl mosquitto_passwd
dir="$(broker_dir "${args[0]}")"
name="${args[1]}"
validate_device_name "$name"
source "$dir/setup.env"

if has_user "$dir" "$name" && [ -z "$rotate" ]; then
    die "device $name already has a credential; --rotate gives it a new password"
fi
if ! has_user "$dir" "$name" && [ -n "$rotate" ]; then
    die "device $name has no credential to rotate; add it without --rotate"
fi
password="$(new_password)"
set_password "$dir" "$name" "$password"
hand_to_broker "$dir"
if [ -n "$rotate" ]; then say "device $name has a new password (the old one no longer logs in)"; else say "device $name added"; fi
reload_broker "$dir"
say "it connects to mqtts://$SETUP_HOST:$SETUP_MQTTS_PORT as user $name with the password below,"
say "checking the server against $dir/tls/ca.crt, and may use only $SETUP_TOPIC_PREFIX/$name/{up,status,sms,down}."
say "The password is shown this once:"
printf '%s\n' "$password"
