#!/usr/bin/env bash
# Static analysis of src/, a test of make check: cppcheck (warning and
# portability) and clang-tidy (the checks of tests/static/clang-tidy.yaml,
# each finding an error) must find nothing. A false positive is suppressed
# inline, next to a comment that says why.
#
# Exits 77 (automake's "skipped") when a tool is missing: scripts/lib/deps.sh
# installs both. GALA_STATIC_CHECK=skip skips it too (scripts/test's
# sanitizer pass: the sources are the same). Reads GALA_SRCDIR, GALA_BUILDDIR
# (for autoconf.h) and GALA_LIB_CFLAGS (the libraries' -I flags), which
# make check exports.
set -euo pipefail
src=${GALA_SRCDIR:?GALA_SRCDIR must name the source directory}
build=${GALA_BUILDDIR:?GALA_BUILDDIR must name the build directory}

if [[ ${GALA_STATIC_CHECK:-} == skip ]]; then
    echo "SKIP: GALA_STATIC_CHECK=skip"
    exit 77
fi
for tool in cppcheck clang-tidy; do
    if ! command -v "$tool" >/dev/null; then
        echo "SKIP: $tool is not installed (scripts/lib/deps.sh installs it)"
        exit 77
    fi
done

jobs=$(nproc 2>/dev/null || echo 2)
status=0

echo "== $(cppcheck --version): --enable=warning,portability"
cppcheck --enable=warning,portability --std=c11 --library=posix --inline-suppr \
    --error-exitcode=1 --quiet -j "$jobs" \
    -I "$build" -I "$src/src" -DHAVE_CONFIG_H "$src/src" || status=1

echo "== $(clang-tidy --version | grep -m1 -o 'version [0-9.]*'): $src/tests/static/clang-tidy.yaml"
# One file per process, as many at once as there are CPUs. clang-tidy says
# how many warnings it hid (those of system headers) on stderr: noise.
read -r -a lib_cflags <<<"${GALA_LIB_CFLAGS:-}"
set +e
find "$src/src" -name '*.c' -print0 | sort -z |
    xargs -0 -P "$jobs" -I '{}' clang-tidy --quiet --config-file="$src/tests/static/clang-tidy.yaml" \
        '{}' -- -std=c11 -DHAVE_CONFIG_H -I "$build" -I "$src/src" "${lib_cflags[@]}" 2>&1 |
    grep -v -E '^[0-9]+ warnings? (and [0-9]+ errors? )?generated\.$'
tidy=${PIPESTATUS[2]}
set -e
[[ $tidy -eq 0 ]] || status=1

if [[ $status -eq 0 ]]; then
    echo "static analysis: clean"
else
    echo "static analysis: findings above"
fi
exit "$status"
