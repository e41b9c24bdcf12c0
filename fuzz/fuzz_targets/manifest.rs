//! Fuzz target: see `alinify_fuzz::harness::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::manifest(alinify_fuzz::scratch(), data);
});
