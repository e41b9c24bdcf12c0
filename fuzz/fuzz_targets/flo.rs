//! Fuzz target: see `alinify_fuzz::harness::flo`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    alinify_fuzz::harness::flo(alinify_fuzz::scratch(), data);
});
