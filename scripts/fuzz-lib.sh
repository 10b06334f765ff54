# Shared by the fuzzing scripts (scripts/fuzz-cores, scripts/fuzz-build,
# scripts/fuzz-qemu, scripts/check-asan): the clang toolchain they need,
# installed the way ./configure installs the build's own packages.
#
# SPDX-License-Identifier: GPL-2.0-or-later

FUZZ_CLANG_PACKAGES="clang-14 libclang-rt-14-dev"
FUZZ_CC=clang-14
FUZZ_CXX=clang++-14

fuzz_note() {
    echo "$(basename "$0"): $*"
}

fuzz_die() {
    echo "$(basename "$0"): error: $*" >&2
    exit 1
}

fuzz_as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

# Does clang-14 build and link a libFuzzer+ASan+UBSan program?  That needs
# the compiler and the compiler-rt runtimes (libclang-rt-14-dev).
fuzz_clang_works() {
    local dir ok=1
    command -v "$FUZZ_CC" >/dev/null 2>&1 || return 1
    dir=$(mktemp -d)
    printf '%s\n' '#include <stdint.h>' '#include <stddef.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
        '{ (void)d; (void)n; return 0; }' > "$dir/t.c"
    "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$dir/t.c" -o "$dir/t" \
        >/dev/null 2>&1 && ok=0
    rm -rf "$dir"
    return $ok
}

# Make sure the toolchain is there, installing its Debian packages when we
# may (root or password-less sudo): apt-get install, and once more after an
# apt-get update if the lists were stale.  The system's apt sources are used
# as they are, never edited.  Returns 1 when clang is absent and cannot be
# installed; the caller decides whether that is a skip or an error.
fuzz_need_clang() {
    local log=${1:-/dev/null}
    fuzz_clang_works && return 0
    if ! fuzz_as_root true 2>/dev/null; then
        fuzz_note "clang missing and no root to install it: apt-get install $FUZZ_CLANG_PACKAGES"
        return 1
    fi
    fuzz_note "installing $FUZZ_CLANG_PACKAGES"
    fuzz_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
            $FUZZ_CLANG_PACKAGES >"$log" 2>&1 ||
        { fuzz_as_root apt-get -q update >/dev/null 2>&1 &&
          fuzz_as_root env DEBIAN_FRONTEND=noninteractive apt-get -q install -y \
            $FUZZ_CLANG_PACKAGES >>"$log" 2>&1; } ||
        { fuzz_note "apt-get install $FUZZ_CLANG_PACKAGES failed (see $log)"; return 1; }
    fuzz_clang_works
}
