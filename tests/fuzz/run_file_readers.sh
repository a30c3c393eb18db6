#!/usr/bin/env bash
# Fuzzes the file readers one after the other (at low priority: the machine may be shared), each
# for 1 M executions or 10 minutes, whichever comes first, growing the committed corpora under
# corpus/<target>/ (merged back small at the end). Run from the repository root:
#   bash tests/fuzz/run_file_readers.sh [seconds per target] [targets...]
# Needs cargo-fuzz (cargo install cargo-fuzz); RUSTC_BOOTSTRAP lets stable accept libFuzzer's
# flags. Built without a sanitizer (`-s none`): the readers are safe Rust, and libFuzzer's
# -rss_limit_mb still catches runaway allocations.
set -euo pipefail
secs=${1:-600}; shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(safetensors_header concept_file project_journal project_snapshot settings_file tokenizer_file)
export RUSTC_BOOTSTRAP=1
# tmpfs for the per-input scratch files where there is one (the targets fsync).
[ -d /dev/shm ] && export TMPDIR=/dev/shm
python3 tests/fuzz/make_seeds.py
for t in "${targets[@]}"; do
  mkdir -p "tests/fuzz/corpus/$t" "tests/fuzz/artifacts/$t"
  nice -n 15 cargo fuzz run --fuzz-dir tests/fuzz -s none "$t" "tests/fuzz/corpus/$t" -- \
    -runs=1000000 -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
    -artifact_prefix="tests/fuzz/artifacts/$t/" -print_final_stats=1 2>&1 | tee "tests/fuzz/artifacts/$t.log" | tail -n 25
  # Keep the corpus small: only inputs that add coverage.
  tmp=$(mktemp -d)
  nice -n 15 cargo fuzz run --fuzz-dir tests/fuzz -s none "$t" "$tmp" "tests/fuzz/corpus/$t" -- -merge=1 \
    -max_len=65536 >/dev/null 2>&1 && rm -rf "tests/fuzz/corpus/$t" && mv "$tmp" "tests/fuzz/corpus/$t"
done
