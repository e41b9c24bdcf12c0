//! The `alinify` command: the GUI with no subcommand, headless tools otherwise.
//!
//! Exit status: 0 success, 2 bad input or usage, 1 other failure, 130 cancelled.

mod cli;

fn main() {
    quiet_headless_vulkan();
    std::process::exit(cli::run());
}

/// Mesa's Vulkan device-select layer looks for a Wayland display while it lists adapters, and
/// on a machine without a desktop session (a Slurm node, ssh) libwayland then prints
/// `error: XDG_RUNTIME_DIR is invalid or not set in the environment.` twice, a false error in
/// every log. Without that folder and without a display there is nothing to select by, so the
/// layer is switched off (`NODEVICE_SELECT=1`), unless the person set that variable.
fn quiet_headless_vulkan() {
    let runtime_dir_ok =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|d| std::path::Path::new(&d).is_dir());
    let display = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()));
    if !runtime_dir_ok && !display && std::env::var_os("NODEVICE_SELECT").is_none() {
        // SAFETY: the first thing `main` does, while this is the only thread.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}
