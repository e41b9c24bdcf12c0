//! Shared set-up of the fuzz targets: a scratch folder and the bounded pixel limit.

pub mod harness;

use std::path::Path;
use std::sync::OnceLock;

/// The folder the targets write their inputs to (in memory where `/dev/shm` exists), made once
/// per process. It also lowers the pixel limit to [`harness::FUZZ_MAX_PIXELS`], so a header
/// that claims a big image is refused instead of exhausting libFuzzer's memory limit.
pub fn scratch() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        // SAFETY: set once, before any target code runs, while the process has one thread.
        unsafe { std::env::set_var("ALINIFY_MAX_PIXELS", harness::FUZZ_MAX_PIXELS.to_string()) };
        let shm = Path::new("/dev/shm");
        let builder = tempfile::Builder::new()
            .prefix("alinify-fuzz-")
            .tempdir_in(shm);
        builder
            .or_else(|_| tempfile::tempdir())
            .expect("a scratch folder")
    })
    .path()
}
