#!/usr/bin/env bash
# Fills the corpus of each target (policy/corpus/policy_parse/, runtime/corpus/<target>/) with seeds: sample
# policies, sample arguments of the rich world, and the example components (built by `cargo build -p are-tests`;
# set ALL=1 to include the two 1+ MiB ones as well).
set -euo pipefail
cd "$(dirname "$0")"
root=..
guests="$root/target/guests/wasm32-wasip2/release"

mkdir -p policy/corpus/policy_parse runtime/corpus/json_to_val runtime/corpus/load_component

cp seeds/policy_parse/*.toml policy/corpus/policy_parse/

# json_to_val inputs are one byte choosing the function, then JSON: every sample goes to every function.
functions=13
for sample in seeds/json_to_val/*.json; do
    name=$(basename "$sample" .json)
    for ((i = 0; i < functions; i++)); do
        { printf "\\x$(printf %02x "$i")"; cat "$sample"; } > "runtime/corpus/json_to_val/$name-$i"
    done
done

if ! ls "$guests"/*.wasm > /dev/null 2>&1; then
    echo "no guest components in $guests: run \`cargo build -p are-tests\` first" >&2
    exit 1
fi
for wasm in "$guests"/*.wasm; do
    size=$(stat -c %s "$wasm")
    if [[ "${ALL:-0}" == 1 || "$size" -le 300000 ]]; then
        cp "$wasm" runtime/corpus/load_component/
    fi
done

cp "$root/example-tools/hostile/table.wat" runtime/corpus/load_component/table.wat
for dir in policy/corpus/policy_parse runtime/corpus/json_to_val runtime/corpus/load_component; do
    echo "$(basename "$dir"): $(ls "$dir" | wc -l) seeds"
done
