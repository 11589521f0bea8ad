#!/usr/bin/env bash
# Type-checks snap for Windows and macOS on a Linux machine: `cargo check`
# of the library and the binary for each target given, and for macOS of the
# tests and benches too (the integration tests drive Unix file systems and
# are not built for Windows). Default targets: x86_64-pc-windows-gnu and
# aarch64-apple-darwin, what .ci/run checks. Nothing is linked, so no
# target SDK is needed.
#
# rustup cannot fetch another target's standard library here, so std is
# compiled from source (-Zbuild-std) with Debian's Rust, whose
# rust-web-src package ships that source. C code of dependencies (zstd,
# blake3) is compiled with mingw-w64 for Windows; for targets without a C
# toolchain here, a stand-in compiler writes empty objects, which a check
# never links.
#
# usage: ci/cross-check.sh [TARGET...]
# env:   SNAP_CROSS_DIR  where builds are kept between runs (default
#                        ~/.cache/snap-cross; a cold Windows check takes
#                        about 15 minutes on 2 cores, a warm one seconds)
set -euo pipefail
cd "$(dirname "$0")/.."
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(x86_64-pc-windows-gnu aarch64-apple-darwin)
dir=${SNAP_CROSS_DIR:-$HOME/.cache/snap-cross}
mkdir -p "$dir/bin"

need=(rustc-web cargo-web rust-web-src gcc-mingw-w64-x86-64)
if ! dpkg -s "${need[@]}" >/dev/null 2>&1; then
  echo "Installing Debian's Rust with its std source, and mingw-w64 (once)..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The stand-in C compiler: every object or archive it is asked for is
# created empty.
cat > "$dir/bin/nocc" <<'EOF'
#!/bin/sh
out_next=
for arg in "$@"; do
  if [ -n "$out_next" ]; then : > "$arg"; out_next=; continue; fi
  case "$arg" in
    -o) out_next=1 ;;
    -out:*|-OUT:*|/out:*|/OUT:*) : > "${arg#*:}" ;;
    -o?*) : > "${arg#-o}" ;;
    -Fo?*|/Fo?*) : > "${arg#??o}" ;;
  esac
done
exit 0
EOF
chmod +x "$dir/bin/nocc"

# Debian's toolchain rather than rustup's, with -Z flags allowed.
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
for t in x86_64_pc_windows_msvc aarch64_apple_darwin x86_64_apple_darwin; do
  export "CC_$t=$dir/bin/nocc"
done
export AR_x86_64_pc_windows_msvc=$dir/bin/nocc
export AR_aarch64_apple_darwin=ar AR_x86_64_apple_darwin=ar

status=0
for t in "${targets[@]}"; do
  what=(--workspace --all-targets)
  case "$t" in *windows*) what=(--workspace) ;; esac
  echo "== cargo check --target $t ${what[*]}" >&2
  cargo check -Zbuild-std=std,panic_abort --target "$t" --target-dir "$dir/target" \
    "${what[@]}" || status=1
done
exit $status
