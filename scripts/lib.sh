# Shared by scripts/run.sh and scripts/test.sh: installs what dtwin needs from Debian's packages.

# The Debian packages dtwin builds and tests with.
DTWIN_APT_PACKAGES=(mosquitto mosquitto-clients libmosquitto-dev pkg-config libsqlite3-dev openssl ca-certificates)

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# What the tests need on top: Python for moto's DynamoDB-compatible server and paho-mqtt (from
# PyPI); tmux, the real terminal the `dtwin inspect` tests read the screen of; the UNO
# toolchain, simavr and a host C++ compiler for the firmware's tests; Chromium and its driver,
# the real browser the dashboard's tests drive; systemd-analyze and dpkg-deb, which check the
# service's unit and build its package.
DTWIN_TEST_APT_PACKAGES=(python3 python3-venv tmux
    arduino-builder arduino-core-avr gcc-avr avr-libc simavr libsimavr-dev gcc g++ libc6-dev
    chromium chromium-driver systemd dpkg)

# Installs the packages that are missing (apt-get update only when something is); arguments
# name more packages than dtwin's own.
install_packages() {
    local missing=()
    for package in "${DTWIN_APT_PACKAGES[@]}" "$@"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "installing ${missing[*]} needs root (or sudo)"
        sudo="sudo"
    fi
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # The package starts a system-wide broker on port 1883 where systemd runs; dtwin's scripts
    # run their own, so stop it (harmless where there is no systemd).
    if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
        $sudo systemctl stop mosquitto || true
    fi
}

require_swift() {
    command -v swift >/dev/null || [ -x /opt/swift/usr/bin/swift ] ||
        die "Swift 6.1 or newer is needed (swift.org/install); it is not on PATH"
    command -v swift >/dev/null || export PATH="/opt/swift/usr/bin:$PATH"
}

# The deployment build: release, with the Swift runtime and Foundation linked into the
# executables (--static-swift-stdlib: the gateway needs no Swift toolchain, and the bridge maps
# fewer library pages), in a scratch folder of its own so it never invalidates the test build.
# Sets DTWIN_RELEASE_BIN to the folder holding `dtwin` and `dtwin-bench`.
build_release() {
    local flags=(-c release --static-swift-stdlib --scratch-path .build/deploy)
    # No run-time exclusivity checks in the deployment build, as the Swift standard library is
    # built: they were 10% of the bridge's instructions per message (issue 22, callgrind:
    # 131,600-140,500 -> 117,400-127,200), nearly all in SwiftNIO's buffers and event loops. The
    # debug build that the test suite runs keeps every check, and Swift 6's strict concurrency
    # rules out data races at compile time; what is left unchecked is a reentrant access in a
    # path the tests do not take.
    flags+=(-Xswiftc -enforce-exclusivity=unchecked)
    # Fewer pages mapped at every start (peak RSS, issue 22), measured on the idle bridge:
    # - lld with packed relative relocations (DT_RELR; glibc 2.36, Debian 12): the
    #   position-independent executable's 140,000 relative relocations take 28 kB instead of
    #   3.4 MB for the loader to read (39.1 -> 35.8 MB), and ASLR is kept;
    # - no dynamic symbol table of the executable's own 47,000 symbols, which the static
    #   runtime's link arguments ask for (-export-dynamic) and nothing here looks up: the
    #   loader and the runtime's dladdr searched 3 MB of it (a further 2-3 MB).
    # swift.org's toolchains ship lld; without it, the default linker and its defaults.
    if [ -x "$(dirname "$(readlink -f "$(command -v swift)")")/ld.lld" ] && ldd --version 2>/dev/null | head -1 | grep -qE ' 2\.(3[6-9]|[4-9][0-9])$'; then
        flags+=(-Xswiftc -use-ld=lld -Xlinker -z -Xlinker pack-relative-relocs -Xlinker --no-export-dynamic)
    fi
    say "building dtwin (release; the first build takes several minutes)"
    swift build "${flags[@]}" "$@"
    DTWIN_RELEASE_BIN="$(swift build "${flags[@]}" --show-bin-path)"
}

# The PyPI packages of scripts/test-requirements.txt (moto's server, paho-mqtt, pytest, cfn-lint,
# the SAM translator, boto3 and the Lambda layer's packages) in a virtual environment of their own
# under .build, found there by the tests. Installed again only when the requirements change.
install_test_tools() {
    local venv=.build/tools-venv requirements=scripts/test-requirements.txt
    local stamp="$venv/.requirements.sha256" wanted
    wanted="$(cat "$requirements" cloud/layer/requirements.txt | sha256sum | cut -d' ' -f1)"
    [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ] && return 0
    say "installing the test tools of $requirements from PyPI into $venv"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements" ||
        die "pip could not install $requirements (is PyPI reachable?)"
    echo "$wanted" >"$stamp"
}
