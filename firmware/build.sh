#!/usr/bin/env bash
# Builds the UNO sketch headless and checks that it fits with headroom: flash at most 75% of
# the 32,256 bytes the bootloader leaves, static RAM at most 70% of 2,048 bytes (the rest is
# the stack's). Prints both; exits 1 above either.
#
#   firmware/build.sh [BUILD_DIR] [-DNAME=VALUE ...]    (default BUILD_DIR: firmware/build)
#
# Extra -D flags override config.h (the simulation build uses them). Needs Debian's
# arduino-builder, arduino-core-avr, gcc-avr and avr-libc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
build="${1:-$here/build}"
shift || true
for tool in arduino-builder avr-size; do
    command -v "$tool" >/dev/null ||
        { echo "error: $tool is missing (apt-get install arduino-builder arduino-core-avr gcc-avr avr-libc)" >&2; exit 1; }
done
mkdir -p "$build"
# -DDECIMAL_DIG: Debian's arduino-core-avr WString.cpp needs it and gcc-avr 5.4 defines it
# for C only. The builder's own platform.txt (ctags) is in /usr/share/arduino-builder.
flags="-DDECIMAL_DIG=__DECIMAL_DIG__ $*"
arduino-builder -compile -quiet -hardware /usr/share/arduino/hardware -hardware /usr/share/arduino-builder \
    -tools /usr/share/arduino-builder -fqbn arduino:avr:uno -prefs="compiler.cpp.extra_flags=$flags" \
    -build-path "$build" "$here/dtwin_uno/dtwin_uno.ino" >"$build/builder.log" 2>&1 ||
    { cat "$build/builder.log" >&2; echo "error: the sketch did not build" >&2; exit 1; }
elf="$build/dtwin_uno.ino.elf"
read -r text data bss _ < <(avr-size "$elf" | tail -1)
flash=$((text + data)) ram=$((data + bss))
flash_limit=$((32256 * 75 / 100)) ram_limit=$((2048 * 70 / 100))
printf 'flash: %d of 32256 bytes (%d%%; limit %d, 75%%)\n' "$flash" $((flash * 100 / 32256)) "$flash_limit"
printf 'static RAM: %d of 2048 bytes (%d%%; limit %d, 70%%)\n' "$ram" $((ram * 100 / 2048)) "$ram_limit"
[ "$flash" -le "$flash_limit" ] || { echo "error: the sketch needs more flash than the headroom allows" >&2; exit 1; }
[ "$ram" -le "$ram_limit" ] || { echo "error: the sketch's static RAM leaves too little for the stack" >&2; exit 1; }
echo "$elf"
