# shellcheck shell=bash
# The Debian/Ubuntu packages Gala needs to build, test, run locally and
# benchmark, installed when missing. Sourced by scripts/up and scripts/test.

GALA_PACKAGES=(
    build-essential autoconf automake libtool pkg-config            # toolchain
    libpq-dev libcjson-dev libcurl4-openssl-dev                     # libraries
    libsodium-dev libssl-dev check
    postgresql pgbouncer nginx openssl curl                         # the local stack
    python3-aiosmtpd                                                # SMTP sink (tests/fakes)
    wrk                                                             # bench/run
)

# For the libFuzzer targets (scripts/fuzz, and its smoke run in scripts/test).
GALA_FUZZ_PACKAGES=(clang libclang-rt-dev)

# Install the missing packages, GALA_PACKAGES and any given as arguments,
# with apt-get when root; otherwise print the exact command and fail. On a
# system without dpkg, say so and carry on: configure names any library
# that is still missing.
gala_install_deps() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null; then
        echo "deps: not a Debian/Ubuntu system; install the equivalents of: ${GALA_PACKAGES[*]} $*" >&2
        return 0
    fi
    for p in "${GALA_PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    if [[ $EUID -ne 0 ]]; then
        echo "deps: missing packages; run this, then try again:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        return 1
    fi
    echo "deps: installing ${missing[*]}" >&2
    # Package scripts must not try to start services or ask questions.
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
}
