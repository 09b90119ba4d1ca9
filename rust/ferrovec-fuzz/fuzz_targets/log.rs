#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ferrovec_fuzz::log(data);
});
