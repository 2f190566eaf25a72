#!/bin/sh
# Builds the libFuzzer target for the file parsers: the PrecLabSupport and PrecLabFiles
# sources compiled as one module (their cross-module imports removed) plus
# fuzz/FuzzEntry.swift, with -sanitize=fuzzer,address, linked with the C CRC folding of
# CPrecLabKernels (imported through a module map written here). Prints the binary path.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.build/fuzz"
mkdir -p "$out/src"
rm -f "$out"/src/*.swift
for file in "$root"/Sources/PrecLabSupport/*.swift "$root"/Sources/PrecLabFiles/*.swift; do
  sed -e 's/^import PrecLabSupport$//' "$file" > "$out/src/$(basename "$(dirname "$file")")-$(basename "$file")"
done
cp "$root/fuzz/FuzzEntry.swift" "$out/src/"
kernels="$root/Sources/CPrecLabKernels"
mkdir -p "$out/modules"
printf 'module CPrecLabKernels {\n    umbrella header "%s"\n    export *\n}\n' \
  "$kernels/include/CPrecLabKernels.h" > "$out/modules/module.modulemap"
clang -O2 -fsanitize=address -I"$kernels/include" -c "$kernels/crc32_fold.c" -o "$out/crc32_fold.o" >&2
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name PrecLabFuzz -I "$out/modules" \
  "$out"/src/*.swift "$out/crc32_fold.o" -o "$out/fuzz-files" >&2
echo "$out/fuzz-files"
