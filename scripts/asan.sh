#!/usr/bin/env bash
# The core's unit and integration tests (the concurrency stress, the multi-handle protocol,
# power loss, I/O faults, recovery, search) under AddressSanitizer and LeakSanitizer, through
# the stable toolchain (RUSTC_BOOTSTRAP=1 lets it take -Zsanitizer). Arguments go to the test
# binaries, e.g. `bash scripts/asan.sh stress`; FERROVEC_STRESS_SECS lengthens the stress test.
# Its own target directory, so the normal build is not thrown away.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=address" RUSTDOCFLAGS="-Zsanitizer=address"
export CARGO_TARGET_DIR=target/asan
export LSAN_OPTIONS="suppressions=$PWD/rust/ferrovec-core/tests/lsan.supp"
cargo test -p ferrovec-core --target x86_64-unknown-linux-gnu --locked --lib --test it -- "$@"
