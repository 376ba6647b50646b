#!/usr/bin/env bash
# Gives a device its own credential on a broker directory made by setup.sh.
#
#   PASSWORD=$(broker-config/add-device.sh DIR NAME)            a new device
#   PASSWORD=$(broker-config/add-device.sh --rotate DIR NAME)   a new password for one
#   broker-config/add-device.sh --arduino DIR NAME              the same, and the UNO sketch's
#                                                               firmware/dtwin_uno/dtwin_secrets.h
#
# The password goes to standard output, once, and nowhere else (the password file keeps only
# its hash); what to do with it goes to standard error. A running broker picks the change up
# at once (SIGHUP); with --rotate the device's old password stops working for new connections.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

# Where --arduino writes: the sketch's folder in this repository.
default_header="$(dirname "$here")/firmware/dtwin_uno/dtwin_secrets.h"

usage() {
    say "usage: $0 [--rotate] [--arduino | --arduino-header FILE] DIR NAME"
    say "  NAME: the device name, 1 to 64 of A-Z a-z 0-9 _ - (it is also the MQTT user name and client id)"
    say "  --rotate               a new password for a device that has one (the old one stops working)"
    say "  --arduino              also write the UNO sketch's secrets header, $default_header:"
    say "                         the device name, its password, this broker's host and TLS port and"
    say "                         its CA (as PROGMEM). The sketch then builds for TLS (firmware/README.md)."
    say "                         The file is kept out of git; it holds a password: keep it private."
    say "  --arduino-header FILE  the same, written to FILE"
    exit 2
}

rotate="" header="" args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rotate) rotate=1; shift ;;
        --arduino) header="$default_header"; shift ;;
        --arduino-header) [ $# -ge 2 ] || usage; header="$2"; shift 2 ;;
        --arduino-header=*) header="${1#--arduino-header=}"; shift ;;
        -h|--help) usage ;;
        -*) say "unknown option $1"; usage ;;
        *) args+=("$1"); shift ;;
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
if [ -n "$header" ]; then
    [ -d "$(dirname "$header")" ] || die "no folder for the sketch's header: $(dirname "$header") (give --arduino-header FILE)"
fi
password="$(new_password)"
set_password "$dir" "$name" "$password"
hand_to_broker "$dir"
if [ -n "$rotate" ]; then say "device $name has a new password (the old one no longer logs in)"; else say "device $name added"; fi
reload_broker "$dir"
say "it connects to mqtts://$SETUP_HOST:$SETUP_MQTTS_PORT as user $name with the password below,"
say "checking the server against $dir/tls/ca.crt, and may use only $SETUP_TOPIC_PREFIX/$name/{up,status,sms,down}."
if [ -n "$header" ]; then
    write_arduino_header "$header" "$name" "$password" "$SETUP_HOST" "$SETUP_MQTTS_PORT" "$dir/tls/ca.crt"
    say "wrote $header (mode 600: it holds the password): build firmware/dtwin_uno as it is, it uses TLS now"
fi
say "The password is shown this once:"
printf '%s\n' "$password"
