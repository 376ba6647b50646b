#!/usr/bin/env bash
# Builds dtwin's Debian package with dpkg-deb: the binary, the systemd unit, a default
# /etc/dtwin/dtwin.yaml (a conffile: an upgrade keeps the administrator's copy) and the
# broker-config tools.
#
#   packaging/build-deb.sh [--binary PATH] [--compression xz|gzip|none] [OUT_DIR]
#
# Without --binary it builds the deployment build (release, static Swift runtime) first.
# Writes OUT_DIR/dtwin_<version>_<arch>.deb (OUT_DIR defaults to .build/packages) and prints its path.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
binary="" out=".build/packages" compression="xz"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        --compression) compression="$2"; shift 2 ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) out="$1"; shift ;;
    esac
done
if [ -z "$binary" ]; then
    source scripts/lib.sh
    build_release --product dtwin
    binary="$DTWIN_RELEASE_BIN/dtwin"
fi
[ -x "$binary" ] || { echo "error: no dtwin executable at $binary" >&2; exit 1; }
command -v dpkg-deb >/dev/null || { echo "error: dpkg-deb is not installed (Debian: apt-get install dpkg)" >&2; exit 1; }

version="$("$binary" --version | awk '{print $NF}')"
arch="$(dpkg --print-architecture)"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
install -D -m 755 "$binary" "$stage/usr/bin/dtwin"
install -D -m 644 packaging/dtwin.service "$stage/lib/systemd/system/dtwin.service"
# dtwin@NAME.service: one instance of a group (README "Several instances"), the same unit with
# DTWIN_INSTANCE=NAME and the settings of /etc/dtwin/NAME.env (its http.port, when several
# instances share a machine); sharedGroup comes from dtwin.yaml or dtwin.env.
sed -e 's/^Description=dtwin: /Description=dtwin instance %i: /' -e '/^ExecStart=/i Environment=DTWIN_INSTANCE=%i' \
    -e '\|^EnvironmentFile=-/etc/dtwin/dtwin.env|a EnvironmentFile=-/etc/dtwin/%i.env' \
    packaging/dtwin.service >"$stage/lib/systemd/system/dtwin@.service"
chmod 644 "$stage/lib/systemd/system/dtwin@.service"
install -D -m 644 packaging/dtwin.yaml "$stage/etc/dtwin/dtwin.yaml"
for tool in setup.sh add-device.sh remove-device.sh lib.sh; do
    install -D -m 755 "broker-config/$tool" "$stage/usr/share/dtwin/broker-config/$tool"
done
chmod 644 "$stage/usr/share/dtwin/broker-config/lib.sh"
install -D -m 644 README.md "$stage/usr/share/doc/dtwin/README.md"
install -D -m 644 broker-config/README.md "$stage/usr/share/doc/dtwin/broker-config.md"
mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: dtwin
Version: $version
Architecture: $arch
Maintainer: dtwin developers <dtwin@example.org>
Depends: libmosquitto1, libsqlite3-0, ca-certificates
Recommends: mosquitto, openssl
Section: net
Priority: optional
Description: digital-twin gateway: MQTT devices to the cloud, SMS, twin state, dashboard
 dtwin bridges devices on a Mosquitto broker to an AWS Lambda / API Gateway upstream or its
 own twin table, keeps each device's desired and reported state, relays Twilio SMS and serves
 a live dashboard. Runs as the systemd service dtwin.service.
CONTROL
echo "/etc/dtwin/dtwin.yaml" >"$stage/DEBIAN/conffiles"
cat >"$stage/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ "$1" = configure ]; then
    [ -e /etc/dtwin/dtwin.env ] || { install -m 600 /dev/null /etc/dtwin/dtwin.env; }
    if [ -d /run/systemd/system ]; then systemctl daemon-reload || true; fi
fi
POSTINST
chmod 755 "$stage/DEBIAN/postinst"
mkdir -p "$out"
package="$out/dtwin_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Z"$compression" --build "$stage" "$package" >/dev/null
echo "$package"
