# Shared by setup.sh, add-device.sh and remove-device.sh. Sourced, not run.

say() { printf '%s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The bridge's user name on the broker. Devices may not take it (nor `bridge`, the topic level
# that belongs to the bridge: dtwin/bridge/status and dtwin/bridge/deadletter).
BRIDGE_USER=dtwin-bridge
# People's and applications' user (operator.env): reads everything, asks for desired states.
OPERATOR_USER=dtwin-operator

require_tools() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null ||
            die "$tool is not installed (Debian: apt-get install mosquitto openssl)"
    done
}

# The broker directory made by setup.sh, as an absolute path.
broker_dir() {
    [ -n "${1:-}" ] || die "no broker directory given"
    [ -f "$1/mosquitto.conf" ] && [ -f "$1/passwd" ] && [ -f "$1/setup.env" ] ||
        die "$1 is not a broker directory made by broker-config/setup.sh (no mosquitto.conf, passwd or setup.env)"
    (cd "$1" && pwd)
}

# The device-name rule of the whole system (README: "Topic tree"), plus the two reserved names.
validate_device_name() {
    local name="$1"
    [[ "$name" =~ ^[A-Za-z0-9_-]{1,64}$ ]] ||
        die "'$name' is not a valid device name: use 1 to 64 of A-Z a-z 0-9 _ -"
    [ "$name" != "bridge" ] || die "'bridge' is reserved for the bridge's own topics (dtwin/bridge/...)"
    [ "$name" != "$BRIDGE_USER" ] || die "'$BRIDGE_USER' is the bridge's own user name"
    [ "$name" != "$OPERATOR_USER" ] || die "'$OPERATOR_USER' is the operator's user name (operator.env)"
    return 0
}

# A password of 24 letters and digits (about 143 bits): nothing a URL, a shell or an AT command
# string needs escaped.
new_password() {
    local password=""
    while [ ${#password} -lt 24 ]; do
        password+=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9')
    done
    printf '%s' "${password:0:24}"
}

has_user() { grep -q "^$2:" "$1/passwd"; }

# As root, mosquitto drops to the `mosquitto` user before it reads its password, ACL and key
# files and writes its state: hand those to that user, readable by no one else. (As any other
# user mosquitto keeps that user, who already owns them.)
hand_to_broker() {
    local dir="$1"
    chmod 600 "$dir/passwd" "$dir/tls/server.key"
    chmod 644 "$dir/acl"
    chmod 700 "$dir/var"
    if [ "$(id -u)" -eq 0 ] && id mosquitto >/dev/null 2>&1; then
        chown mosquitto: "$dir/passwd" "$dir/tls/server.key" "$dir/acl"
        chown -R mosquitto: "$dir/var"
    fi
}

# Sets (adds or replaces) USER's password in the password file, hashed by mosquitto_passwd.
# The password never appears on a command line (mosquitto_passwd's batch option would show it to every
# local user in the process list): it goes into a private temporary file that
# `mosquitto_passwd -U` hashes in place, and the hashed line joins the password file.
set_password() {
    local dir="$1" user="$2" password="$3" one rest
    one="$(mktemp "$dir/.passwd-new.XXXXXX")" rest="$(mktemp "$dir/.passwd-rest.XXXXXX")"
    chmod 600 "$one" "$rest"
    printf '%s:%s\n' "$user" "$password" >"$one"
    if ! mosquitto_passwd -U "$one" >/dev/null; then
        rm -f "$one" "$rest"
        die "mosquitto_passwd could not hash the password for $user"
    fi
    { grep -v "^$user:" "$dir/passwd" 2>/dev/null || true; cat "$one"; } >"$rest"
    rm -f "$one"
    mv "$rest" "$dir/passwd" || die "could not write $dir/passwd"
}

# A running broker rereads its password and ACL files on SIGHUP; a second argument is added
# to what is said when it ran.
reload_broker() {
    local dir="$1" more="${2:-}" pid
    pid=$(cat "$dir/var/mosquitto.pid" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -HUP "$pid"
        say "the running broker (pid $pid) has reloaded its password and ACL files$more"
    else
        say "no broker is running from $dir: it reads the change when it starts"
    fi
}

# The UNO sketch's secrets header (firmware/dtwin_uno/dtwin_secrets.h, included by config.h):
# the device, its password, the broker as devices reach it (the name its certificate carries)
# and the CA as a string the sketch keeps in flash (PROGMEM) and uploads to the modem.
# Written privately (it holds the password) and atomically.
write_arduino_header() {
    local file="$1" name="$2" password="$3" host="$4" port="$5" ca="$6" ca_name tmp
    openssl x509 -in "$ca" -noout >/dev/null 2>&1 || die "$ca is not a PEM certificate"
    ca_name="$(openssl x509 -in "$ca" -noout -subject -nameopt RFC2253 | sed -E 's/^subject=//; s/^.*CN=([^,]*).*$/\1/; s/["\\]//g')"
    tmp="$(mktemp "$file.XXXXXX")" || die "cannot write next to $file"
    chmod 600 "$tmp"
    {
        echo "// dtwin_secrets.h for device $name, written by broker-config/add-device.sh --arduino."
        echo "// Secret (the device's broker password): keep it private and out of git (.gitignore does)."
        echo "#pragma once"
        echo "#define DTWIN_DEVICE_NAME \"$name\""
        echo "#define DTWIN_MQTT_PASSWORD \"$password\""
        echo "#define DTWIN_BROKER_HOST \"$host\""
        echo "#define DTWIN_BROKER_PORT $port"
        echo "#define DTWIN_TLS 1"
        echo "#define DTWIN_BROKER_CA_NAME \"$ca_name\""
        echo "// $ca, $(wc -c <"$ca" | tr -d ' ') bytes; the sketch streams it to the modem (AT+CFSWFILE)."
        echo "#define DTWIN_BROKER_CA_PEM \\"
        sed -e 's/\r$//' -e 's/^\(.*\)$/    "\1\\n" \\/' "$ca"
        echo "    \"\""
    } >"$tmp" || { rm -f "$tmp"; die "could not write $file"; }
    mv "$tmp" "$file" || die "could not write $file"
}
