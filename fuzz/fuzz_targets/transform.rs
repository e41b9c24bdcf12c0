//! Fuzz target: see `alinify_fuzz::harness::transform`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::transform(alinify_fuzz::scratch(), data);
});
