//! Fuzz target: see `alinify_fuzz::harness::preset`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::preset(alinify_fuzz::scratch(), data);
});
