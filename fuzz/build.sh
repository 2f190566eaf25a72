#!/bin/sh
# Builds the libFuzzer target for the file parsers: the PrecLabSupport and PrecLabFiles
# sources compiled as one module (their cross-module imports removed) plus
# fuzz/FuzzEntry.swift, with -sanitize=fuzzer,address. Prints the binary path.
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/.build/fuzz"
mkdir -p "$out/src"
rm -f "$out"/src/*.swift
for file in "$root"/Sources/PrecLabSupport/*.swift "$root"/Sources/PrecLabFiles/*.swift; do
  sed -e 's/^import PrecLabSupport$//' "$file" > "$out/src/$(basename "$(dirname "$file")")-$(basename "$file")"
done
cp "$root/fuzz/FuzzEntry.swift" "$out/src/"
swiftc -sanitize=fuzzer,address -parse-as-library -O -module-name PrecLabFuzz \
  "$out"/src/*.swift -o "$out/fuzz-files" >&2
echo "$out/fuzz-files"
