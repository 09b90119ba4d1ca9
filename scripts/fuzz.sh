#!/usr/bin/env bash
# Coverage-guided fuzzing of ferrovec-core's readers of untrusted bytes (libFuzzer through
# cargo fuzz; targets and seeds in rust/ferrovec-fuzz, described in docs/RELIABILITY.md).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]     (default: 15 s, every target)
#
# FUZZ_SANITIZER=address (default) or none: none runs 1.5 to 10 times more executions a second
# (by target), address also catches memory errors in unsafe code. The toolchain is stable:
# RUSTC_BOOTSTRAP=1 lets it take the sanitizer flags. Inputs found go to
# target/fuzz-corpus/<target> (kept between runs); a crash, an allocation over 256 MiB, or an
# input running over 10 s fails the script and leaves the input in
# rust/ferrovec-fuzz/artifacts/<target>/ (once fixed, keep it in
# rust/ferrovec-fuzz/regressions/<target>/, which cargo test replays).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-15}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(log manifest segment payload_index snapshot_archive filter)
sanitizer="${FUZZ_SANITIZER:-address}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install --locked cargo-fuzz@0.13.2
fi
export RUSTC_BOOTSTRAP=1
# Six binaries each link the whole core: without LTO they build in a fraction of the time.
export CARGO_PROFILE_RELEASE_LTO=false
opts=(--fuzz-dir rust/ferrovec-fuzz -a -s "$sanitizer" --release)
cargo fuzz build "${opts[@]}"

# Scratch stores go to memory when it can (each input opens a fresh copy of a small store).
work="$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/ferrovec-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
for t in "${targets[@]}"; do
  corpus="target/fuzz-corpus/$t"
  mkdir -p "$corpus" "rust/ferrovec-fuzz/artifacts/$t"
  seeds=("rust/ferrovec-fuzz/corpus/$t")
  [ -d "rust/ferrovec-fuzz/regressions/$t" ] && seeds+=("rust/ferrovec-fuzz/regressions/$t")
  FERROVEC_FUZZ_DIR="$work" cargo fuzz run "${opts[@]}" "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=256 -timeout=10 \
    -print_final_stats=1 >"$work/$t.log" 2>&1 || {
    grep -E -A40 'panicked|ERROR: libFuzzer|SUMMARY' "$work/$t.log" | head -80 >&2
    echo "fuzz: $t FAILED; the input is in rust/ferrovec-fuzz/artifacts/$t/" >&2
    exit 1
  }
  runs="$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$work/$t.log" | grep -oE '[0-9]+$')"
  cov="$(grep -oE 'cov: [0-9]+' "$work/$t.log" | tail -1 | grep -oE '[0-9]+')"
  echo "fuzz: $t: $runs executions in ${secs} s ($sanitizer), $cov coverage points, corpus $(ls "$corpus" | wc -l) inputs, no crash"
done
