#!/usr/bin/env bash
# Installs the byol-c build tree into a temporary prefix, then builds tests/out-of-tree against
# it (CMake package and pkg-config), loads the resulting plugin and lists it with byolctl.
set -euo pipefail
build_dir=$1
src_dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build_dir" --prefix "$tmp/prefix" >/dev/null
cmake -S "$src_dir" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/build" >/dev/null
plugin="$tmp/build/byol-backend-oot.so"
libdir=$(ls -d "$tmp"/prefix/lib* | head -n 1)

# The example augmentation op, built with its own five-line CMakeLists.txt.
example="$src_dir/../../plugins/examples/augment-invert"
cmake -S "$example" -B "$tmp/invert" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/invert" >/dev/null
invert="$tmp/invert/byol-augment-invert.so"

# A plugin may reference no byol_* symbol (it reaches the core only through the host table)
# and exports exactly one: the entry point.
for so in "$plugin" "$invert" "$libdir"/byol/plugins/*.so; do
  if nm -D --undefined-only "$so" | grep -q ' byol_'; then
    echo "FAIL: $so has undefined byol_* symbols"; exit 1
  fi
  exported=$(nm -D --defined-only "$so" | awk '$2 == "T" {print $3}')
  [ "$exported" = "byol_plugin_init" ] || { echo "FAIL: $so exports: $exported"; exit 1; }
done

LD_LIBRARY_PATH="$libdir" "$tmp/build/oot_embed" "$plugin" | grep -qx "oot 9.9.9" || { echo "FAIL: oot_embed"; exit 1; }

# invert (1 - x) then flip, with the installed standard plugin and the example one.
out=$(LD_LIBRARY_PATH="$libdir" "$tmp/build/oot_augment" "$tmp/invert" "$libdir/byol/plugins")
[ "$out" = "0.5 0.75 1 0.875 0 0.25" ] || { echo "FAIL: oot_augment printed '$out'"; exit 1; }

# pkg-config: an embedder compiled by hand from the installed .pc file.
PKG_CONFIG_PATH="$libdir/pkgconfig" cc -std=c11 -Wall -Werror -o "$tmp/embed_pc" \
  "$src_dir/oot_embed.c" $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --cflags --libs byol)
LD_LIBRARY_PATH="$libdir" "$tmp/embed_pc" "$plugin" | grep -qx "oot 9.9.9" || { echo "FAIL: pkg-config embedder"; exit 1; }

# The installed byolctl finds the installed blas plugin by itself, and the new one by path.
listing=$("$tmp/prefix/bin/byolctl" plugins --plugin-path "$tmp/build")
echo "$listing"
echo "$listing" | grep -Eq '^backend +blas ' || { echo "FAIL: installed byolctl does not list blas"; exit 1; }
echo "$listing" | grep -Eq '^backend +oot +9\.9\.9 ' || { echo "FAIL: byolctl does not list oot"; exit 1; }
echo "out-of-tree build: ok"
