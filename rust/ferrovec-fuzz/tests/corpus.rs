//! The fuzz targets on stable, under `cargo test`: every input the fuzzer once crashed on
//! replays without panic, every committed seed replays and reaches every reader (so the corpora stay meaningful as formats change: regenerate them with
//! `cargo run -p ferrovec-fuzz --example seeds`), and a random mutation harness over the
//! same store files (FERROVEC_MUTATIONS sets the count, default 300) finds no panic.

use std::path::Path;

use ferrovec_fuzz::{template, with_file, Reached, Rng, TARGETS};

fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(kind)
        .join(target);
    if kind == "regressions" && !dir.exists() {
        return Vec::new();
    }
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.expect("entry").path();
            let name = p
                .file_name()
                .and_then(|n| n.to_str())
                .expect("name")
                .to_string();
            (name, std::fs::read(&p).expect("read a seed"))
        })
        .collect();
    out.sort();
    out
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    inputs("corpus", target)
}

#[test]
fn inputs_that_once_crashed_now_replay_without_panic() {
    // Each file in regressions/<target>/ is an input the fuzzer found to panic, kept after
    // the fix; replaying it must not panic (whatever it reaches).
    let mut replayed = 0;
    for (target, run) in TARGETS {
        for (_, bytes) in inputs("regressions", target) {
            run(&bytes);
            replayed += 1;
        }
    }
    assert!(replayed > 0, "the regression inputs are missing");
}

#[test]
fn every_seed_reaches_every_reader() {
    for (target, run) in TARGETS {
        let seeds = corpus(target);
        assert!(!seeds.is_empty(), "no seeds for {target}");
        for (name, bytes) in seeds {
            assert_eq!(
                run(&bytes),
                Reached::Used,
                "{target}/{name}: a seed must open and serve every read (stale seeds? regenerate them)"
            );
        }
    }
}

#[test]
fn seeds_cut_short_are_refused_or_repaired_without_panic() {
    // A log cut short is a torn tail: the store cuts it and serves the records before it. Any
    // other file cut short must be noticed (the filter target's inputs have no checksums).
    for (target, run) in TARGETS.iter().filter(|(t, _)| *t != "filter") {
        for (name, bytes) in corpus(target) {
            let reached = run(&bytes[..bytes.len() * 2 / 3]);
            if *target == "log" {
                assert_eq!(reached, Reached::Used, "{target}/{name} cut to two thirds");
            } else {
                assert_ne!(reached, Reached::Used, "{target}/{name} cut to two thirds");
            }
        }
    }
}

fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    match rng.below(5) {
        0 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(bytes.len().max(1));
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
        }
        1 => {
            // An extreme value where a length or count may be (u32/u64 fields).
            let at = rng.below(bytes.len().max(1)) & !3;
            let v: [u8; 8] = match rng.below(3) {
                0 => [0xff; 8],
                1 => [0; 8],
                _ => (u64::MAX / 3).to_le_bytes(),
            };
            for (k, b) in v.iter().enumerate() {
                if let Some(x) = bytes.get_mut(at + k) {
                    *x = *b;
                }
            }
        }
        2 => {
            let keep = rng.below(bytes.len() + 1);
            bytes.truncate(keep);
        }
        3 => bytes.extend((0..1 + rng.below(300)).map(|_| rng.next_u64() as u8)),
        _ => {
            // Rewrite a header-sized prefix at random.
            for b in bytes.iter_mut().take(64) {
                if rng.below(4) == 0 {
                    *b = rng.next_u64() as u8;
                }
            }
        }
    }
}

#[test]
fn mutated_files_give_errors_never_panics() {
    let count: usize = std::env::var("FERROVEC_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let t = template();
    assert!(t.files.len() >= 9, "{:?}", t.files);
    let mut rng = Rng::new(2026);
    let mut reached = [0usize; 3];
    for _ in 0..count {
        let victim = &t.files[rng.below(t.files.len())];
        let mut bytes = std::fs::read(t.root.join(victim)).expect("read");
        mutate(&mut bytes, &mut rng);
        // Half the time, make the checksums agree, so the damage reaches the decoders.
        let name = victim.to_str().expect("name");
        if !name.ends_with(".snapshot") && rng.below(2) == 0 {
            ferrovec_fuzz::reseal(&mut bytes, ferrovec_fuzz::is_log(name));
        }
        reached[with_file(victim, &bytes) as usize] += 1;
    }
    eprintln!(
        "mutations: {count} over {} files, no panic (refused {}, opened {}, served every read {})",
        t.files.len(),
        reached[0],
        reached[1],
        reached[2]
    );
}
