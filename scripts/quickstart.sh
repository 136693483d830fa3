#!/usr/bin/env bash
# Builds isovec, installs the default model, indexes the bundled corpus and searches it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release
isovec=./target/release/isovec
$isovec model fetch
store=${ISOVEC_DEMO_STORE:-isovec-demo}
$isovec index --store "$store" fixtures/corpus.jsonl
for query in "how do vaccines protect people" "cheap ways to travel by train" "what grows well in a shady garden"; do
  echo
  echo "search: $query"
  $isovec search --store "$store" -k 3 "$query"
done
echo
echo "with a metadata filter: topic=space AND year>=2015"
$isovec search --store "$store" -k 3 --filter "topic=space AND year>=2015" "pictures of distant galaxies"
