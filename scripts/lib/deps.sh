# shellcheck shell=bash
# The Debian/Ubuntu packages Gala needs to build, test, run locally and
# benchmark, installed when missing, and the npm packages of the API
# documentation page. Sourced by scripts/up and scripts/test.

GALA_PACKAGES=(
    build-essential autoconf automake libtool pkg-config            # toolchain
    libpq-dev libcjson-dev libcurl4-openssl-dev                     # libraries
    libsodium-dev libssl-dev check
    postgresql pgbouncer nginx openssl curl                         # the local stack
    python3-aiosmtpd                                                # SMTP sink (tests/fakes)
    python3-stripe                                                  # the Stripe fake's tests check its signatures with it
    chromium                                                        # the docs page's test
    wrk                                                             # bench/run
    prometheus                                                      # promtool checks /metrics and the alert rules
    cppcheck clang-tidy                                             # tests/static
)
# npm brings Swagger UI (docs/ui/package-lock.json); a Node.js from
# elsewhere (NodeSource) has its own npm, which Debian's would conflict with.
command -v npm >/dev/null || GALA_PACKAGES+=(npm)

# Where the npm packages go: configure finds them there (--with-node-modules).
GALA_NODE_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GALA_NODE_DIR=$GALA_NODE_REPO/.local/node

# For the libFuzzer targets (scripts/fuzz, and its smoke run in scripts/test).
GALA_FUZZ_PACKAGES=(clang libclang-rt-dev)

# For tests/package/check_deb: it builds the Debian package from a clone and
# lints it (scripts/test with GALA_PACKAGE_TEST=1).
GALA_PACKAGE_TEST_PACKAGES=(git debhelper lintian)

# Install the missing packages, GALA_PACKAGES and any given as arguments,
# with apt-get when root; otherwise print the exact command and fail. On a
# system without dpkg, say so and carry on: configure names any library
# that is still missing.
gala_install_deps() {
    local missing=() p
    if ! command -v dpkg-query >/dev/null; then
        echo "deps: not a Debian/Ubuntu system; install the equivalents of: ${GALA_PACKAGES[*]} $*" >&2
    else
        for p in "${GALA_PACKAGES[@]}" "$@"; do
            dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
        done
    fi
    if [[ ${#missing[@]} -gt 0 ]]; then
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
    fi
    gala_install_node_modules
}

# The exact versions and hashes of docs/ui/package-lock.json, into
# .local/node/node_modules, again only when the lock file changed. No
# package's install script runs (swagger-ui-dist's dependency would report
# the install to its vendor): Gala uses their files alone.
gala_install_node_modules() {
    local ui=$GALA_NODE_REPO/docs/ui
    if cmp -s "$ui/package-lock.json" "$GALA_NODE_DIR/package-lock.json" &&
        [[ -f $GALA_NODE_DIR/node_modules/swagger-ui-dist/swagger-ui-bundle.js ]]; then
        return 0
    fi
    command -v npm >/dev/null || { echo "deps: npm not found (install Debian's npm)" >&2; return 1; }
    echo "deps: npm ci in $GALA_NODE_DIR (docs/ui/package-lock.json)" >&2
    mkdir -p "$GALA_NODE_DIR"
    cp "$ui/package.json" "$ui/package-lock.json" "$GALA_NODE_DIR/"
    (cd "$GALA_NODE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
}
