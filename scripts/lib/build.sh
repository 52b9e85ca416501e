# shellcheck shell=bash
# Build Gala out of tree. Sourced by scripts/up, scripts/test and bench/run.

# gala_build SRCDIR BUILDDIR [configure options...]
# Generates configure when the checkout has none, configures BUILDDIR when it
# is new or was configured with other options, then runs make -j2.
gala_build() {
    local src=$1 build=$2
    shift 2
    if [[ ! -x $src/configure || ! -f $src/Makefile.in ]]; then
        echo "build: autoreconf -fi" >&2
        (cd "$src" && autoreconf -fi)
    fi
    mkdir -p "$build"
    local have=''
    [[ -x $build/config.status ]] && have=$("$build/config.status" --config | tr -d "'")
    if [[ ! -f $build/Makefile || $have != "$*" ]]; then
        echo "build: configuring $build ($*)" >&2
        (cd "$build" && "$(realpath --relative-to="$build" "$src")/configure" "$@")
    fi
    make -C "$build" -j2
}
