//! Fuzz target: see `alinify_fuzz::harness::elastix`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::elastix(alinify_fuzz::scratch(), data);
});
