#!/usr/bin/env bash
# Long coverage-guided fuzz runs with AFL++ (cargo-afl), one target after the
# other on one core, niced. Never part of CI: `cargo test` only replays the
# committed corpora (tests/fuzz_corpora.rs).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]     (default: 600 s, every target)
#   MERGE=1 fuzz/run.sh …   also keep what found new coverage in fuzz/corpus/<target>/
#
# Needs cargo-afl (`cargo install cargo-afl`, which builds AFL++ for this
# toolchain; `cargo afl config --build` if it did not). Findings stay under
# fuzz/out/<target>/default/{crashes,hangs}; a crash reproduces with
# `fuzz/target/release/<target> < FILE`.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-600}"
shift || true
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
  targets=(observations otlp_protobuf otlp_json authzen webhook commands policies schema)
fi
if ! cargo afl --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-afl is missing: cargo install cargo-afl (see README, Faults and fuzzing)" >&2
  exit 1
fi
nice -n 19 cargo afl build --release --quiet
mkdir -p out
# A shared machine: no CPU pinning, no core-dump tuning, a plain log instead of the UI.
export AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
printf '%-14s %12s %8s %8s %8s %8s\n' target execs execs/s paths coverage crashes
for target in "${targets[@]}"; do
  out="out/$target"
  rm -rf "$out"
  nice -n 19 cargo afl fuzz -V "$seconds" -i "corpus/$target" -o "$out" "target/release/$target" \
    > "out/$target.log" 2>&1 || true
  stats="$out/default/fuzzer_stats"
  field() { sed -n "s/^$1 *: //p" "$stats"; }
  printf '%-14s %12s %8s %8s %8s %8s\n' "$target" "$(field execs_done)" "$(field execs_per_sec)" \
    "$(field corpus_count)" "$(field bitmap_cvg)" "$(field saved_crashes)"
  if [ "${MERGE:-0}" = 1 ]; then
    # The first 50 small inputs that found new coverage (AFL++ marks them
    # `+cov`): the corpora are committed. (afl-cmin would minimise better but
    # hangs under this machine's Python.)
    find "$out/default/queue" -type f -name '*+cov*' -size -4k | sort | head -n 50 | while read -r file; do
      cp "$file" "corpus/$target/found-$(sha1sum "$file" | cut -c1-12)"
    done
  fi
done
