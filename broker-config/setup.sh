#!/usr/bin/env bash
# Generates a production Mosquitto directory for dtwin: TLS for devices, one credential per
# device, ACLs that let a device speak only for itself, and the bridge's own credentials.
#
#   broker-config/setup.sh [--host NAME] DIR
#   mosquitto -c DIR/mosquitto.conf
#
# Environment: MQTT_PORT (default 1883: the bridge's listener, loopback only), MQTTS_PORT
# (default 8883: the devices' TLS listener, all interfaces), TOPIC_PREFIX (default dtwin).
# Re-running keeps the CA, the passwords and the bridge's credentials; it rewrites
# mosquitto.conf and acl, and renews the server certificate when --host changes or it is
# within 30 days of expiring.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/lib.sh"

usage() {
    cat >&2 <<USAGE
usage: $0 [--host NAME] DIR

Generates DIR/mosquitto.conf, a CA (DIR/tls/ca.crt: give it to devices), a server certificate
for NAME (and localhost, 127.0.0.1), DIR/passwd, DIR/acl, DIR/bridge.env (the DTWIN_BROKER
the bridge connects with) and DIR/operator.env (for people's tools: dtwin inspect, and
publishing desired states on <prefix>/<dev>/state/set). Then: mosquitto -c DIR/mosquitto.conf, and add devices with
broker-config/add-device.sh DIR NAME.

  --host NAME   the name (or IP address) devices use to reach this broker; default: the
                host name given before, else this machine's (\$(hostname -f))
Environment: MQTT_PORT (1883, loopback, for the bridge), MQTTS_PORT (8883, TLS, for devices),
TOPIC_PREFIX (dtwin).
USAGE
    exit 2
}

host="" dir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --host) [ $# -ge 2 ] || usage; host="$2"; shift 2 ;;
        --host=*) host="${1#--host=}"; shift ;;
        -h|--help) usage ;;
        -*) say "unknown option $1"; usage ;;
        *) [ -z "$dir" ] || usage; dir="$1"; shift ;;
    esac
done
[ -n "$dir" ] || usage
require_tools openssl mosquitto_passwd

mkdir -p "$dir/tls" "$dir/var"
dir="$(cd "$dir" && pwd)"
# What an earlier run chose (host, ports) stays unless given again.
[ -f "$dir/setup.env" ] && source "$dir/setup.env"
host="${host:-${SETUP_HOST:-$(hostname -f 2>/dev/null || hostname)}}"
mqtt_port="${MQTT_PORT:-${SETUP_MQTT_PORT:-1883}}"
mqtts_port="${MQTTS_PORT:-${SETUP_MQTTS_PORT:-8883}}"
prefix="${TOPIC_PREFIX:-${SETUP_TOPIC_PREFIX:-dtwin}}"
for port in "$mqtt_port" "$mqtts_port"; do
    [[ "$port" =~ ^[0-9]+$ ]] && [ "$port" -ge 1 ] && [ "$port" -le 65535 ] || die "'$port' is not a port number"
done
[ "$mqtt_port" != "$mqtts_port" ] || die "MQTT_PORT and MQTTS_PORT must differ"
[[ "$host" =~ ^[A-Za-z0-9.:-]+$ ]] || die "'$host' is not a host name or IP address"
[[ "$prefix" =~ ^[A-Za-z0-9_-]+$ ]] || die "'$prefix' is not a topic prefix (one topic level: A-Z a-z 0-9 _ -)"
umask 077

# --- certificates ------------------------------------------------------------------------
tls="$dir/tls"
if [ ! -f "$tls/ca.crt" ] || [ ! -f "$tls/ca.key" ]; then
    say "making a CA (tls/ca.crt, valid 10 years)"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=dtwin broker CA ($host)" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
    rm -f "$tls/server.crt"
fi
renew=""
if [ ! -f "$tls/server.crt" ] || [ ! -f "$tls/server.key" ]; then renew="no server certificate yet"
elif [ "${SETUP_HOST:-}" != "$host" ]; then renew="the host is now $host"
elif ! openssl x509 -in "$tls/server.crt" -noout -checkend $((30 * 86400)) >/dev/null; then renew="it expires within 30 days"
fi
if [ -n "$renew" ]; then
    say "making the server certificate for $host ($renew; valid 825 days)"
    # RSA: what cellular modems' TLS stacks (the SIM7000's among them) accept.
    if [[ "$host" =~ ^[0-9.]+$ || "$host" == *:* ]]; then name="IP:$host"; else name="DNS:$host"; fi
    san="subjectAltName=$name,DNS:localhost,IP:127.0.0.1"
    openssl req -newkey rsa:2048 -nodes -sha256 -subj "/CN=$host" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
    printf '%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$san" >"$tls/server.ext"
    openssl x509 -req -sha256 -days 825 -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
        -CAcreateserial -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
    rm -f "$tls/server.csr" "$tls/server.ext"
fi
chmod 644 "$tls/ca.crt" "$tls/server.crt"
chmod 600 "$tls/ca.key"

# --- credentials -------------------------------------------------------------------------
touch "$dir/passwd"
# USER's credentials in FILE (DTWIN_BROKER=mqtt://USER:password@127.0.0.1:port), made once;
# a later run keeps the password and follows a new port.
make_credentials() {
    local user="$1" file="$2" use="$3" password
    if [ ! -f "$file" ] || ! has_user "$dir" "$user"; then
        say "making the credentials of $user ($(basename "$file"))"
        password="$(new_password)"
        set_password "$dir" "$user" "$password"
        {
            echo "# $user's broker credentials, made by broker-config/setup.sh. Secret: keep it mode 600."
            echo "# Use:  set -a; . $file; set +a; $use"
            echo "DTWIN_BROKER=mqtt://$user:$password@127.0.0.1:$mqtt_port"
        } >"$file"
    else
        sed -i -E "s#^(DTWIN_BROKER=mqtt://[^@]*@127\.0\.0\.1:)[0-9]+\$#\1$mqtt_port#" "$file"
    fi
    chmod 600 "$file"
}
make_credentials "$BRIDGE_USER" "$dir/bridge.env" "dtwin bridge"
# People's and applications' tools: watch everything, ask for desired states.
make_credentials "$OPERATOR_USER" "$dir/operator.env" "dtwin inspect"

# --- access control ----------------------------------------------------------------------
cat >"$dir/acl" <<ACL
# dtwin's access control, written by broker-config/setup.sh (re-running it rewrites this file).
# Mosquitto denies whatever no line grants.

# Every device has its own user, named as the device (add-device.sh); %u is that user name.
# A device publishes only its own readings, status (its last will too) and SMS requests, and
# receives only its own commands: subscribing to anything wider delivers nothing else.
pattern write $prefix/%u/up
pattern write $prefix/%u/status
pattern write $prefix/%u/sms
pattern read $prefix/%u/down
# It may read its own twin (the retained document), never write it nor ask for a desired
# state: what a device wants is not what people want of it.
pattern read $prefix/%u/state

# The bridge reads every device's topics, commands every device, and owns $prefix/bridge/
# (its retained status and the dead letters, which an operator may watch with its credentials).
user $BRIDGE_USER
topic read $prefix/+/up
topic read $prefix/+/status
topic read $prefix/+/sms
topic write $prefix/+/down
topic readwrite $prefix/bridge/#
# The twins: requests in, each device's document (retained) and refusals out.
topic read $prefix/+/state/set
topic write $prefix/+/state
topic write $prefix/+/state/rejected

# The operator (operator.env): people's tools and applications watch the whole tree and ask
# for desired states; the bridge decides what reaches a device.
user $OPERATOR_USER
topic read $prefix/#
topic write $prefix/+/state/set
ACL

# --- the broker's configuration ----------------------------------------------------------
cat >"$dir/mosquitto.conf" <<CONF
# dtwin's production broker, written by broker-config/setup.sh for $host
# (re-running it rewrites this file; certificates and credentials are kept).
# Run:  mosquitto -c $dir/mosquitto.conf

# Authentication is set per listener so that only the devices' listener ties a client id to
# its user name (below).
per_listener_settings true

# The bridge, and tools on this machine: plain MQTT on loopback only, never reachable from
# outside. Credentials in bridge.env.
listener $mqtt_port 127.0.0.1
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl

# Devices: TLS 1.2 or newer on every interface; each device logs in with its own user name
# and password (add-device.sh) and checks the server against tls/ca.crt.
listener $mqtts_port
certfile $tls/server.crt
keyfile $tls/server.key
tls_version tlsv1.2
allow_anonymous false
password_file $dir/passwd
acl_file $dir/acl
# The client id becomes the user name: a device (or a stolen credential) cannot take over
# another device's session by connecting with its client id. The firmware uses its device
# name as client id already.
use_username_as_clientid true

# Persistence: retained statuses and the QoS 1 messages queued for an absent client (the
# bridge's persistent session while it restarts, a device's commands while it is offline)
# survive a broker restart. Saved on a clean stop and every 10 s; a crash can lose up to the
# last 10 s of what was queued (each save writes the whole store, so much more often costs
# real I/O with 100,000 messages queued).
persistence true
persistence_location $dir/var/
autosave_interval 10

# What a disconnected client may have queued. The default (1000) drops QoS 1 messages for a
# bridge that is away: 100 devices reporting every 10 s fill it in 100 s. 100,000 is almost
# 3 hours of that; the byte bound caps the broker's memory for it at 256 MiB.
max_queued_messages 100000
max_queued_bytes 268435456

# QoS 1 messages in flight to one client before the broker waits for acknowledgements. The
# bridge acknowledges each one as soon as it is in its spool (tens of microseconds), so 20
# (the default) keeps it busy; a device on a cellular link gets at most 20 unacknowledged
# commands at once.
max_inflight_messages 20

# The largest payload accepted. Larger than the bridge's maxPayload (256 KiB by default) so
# that the bridge, not the broker, refuses what is too big and dead-letters it where an
# operator sees it (the broker drops an over-limit message silently). The bridge's dead
# letters carry at most 192 KiB of a payload, so they fit too. Protects the broker's memory
# from a client gone wrong.
message_size_limit 1048576

# Send small packets (PUBACKs, commands) at once: with Nagle's algorithm a publisher waiting
# for each acknowledgement stalled about 10 ms per message (measured on the dev broker).
set_tcp_nodelay true

pid_file $dir/var/mosquitto.pid
log_dest file $dir/var/mosquitto.log
log_type error
log_type warning
log_type notice
connection_messages true
CONF
chmod 644 "$dir/mosquitto.conf"

{
    echo "# What broker-config/setup.sh was last run with (read by its next run and by add-device.sh)."
    echo "SETUP_HOST=$host"
    echo "SETUP_MQTT_PORT=$mqtt_port"
    echo "SETUP_MQTTS_PORT=$mqtts_port"
    echo "SETUP_TOPIC_PREFIX=$prefix"
} >"$dir/setup.env"
chmod 644 "$dir/setup.env"
hand_to_broker "$dir"
reload_broker "$dir" "; restart it to take new ports or certificates"

say "broker directory ready: $dir"
say "  start it:     mosquitto -c $dir/mosquitto.conf"
say "  add devices:  $here/add-device.sh $dir NAME"
say "  the bridge:   set -a; . $dir/bridge.env; set +a; dtwin bridge"
say "  people, apps: set -a; . $dir/operator.env; set +a; dtwin inspect"
say "  devices:      mqtts://$host:$mqtts_port, CA certificate $tls/ca.crt"
