//! Fuzz target: see `alinify_fuzz::harness::image`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::image(alinify_fuzz::scratch(), data);
});
