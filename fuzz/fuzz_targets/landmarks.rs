//! Fuzz target: see `alinify_fuzz::harness::landmarks`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::landmarks(alinify_fuzz::scratch(), data);
});
