//! The `alinify` command: the GUI with no subcommand, headless tools otherwise.
//!
//! Exit status: 0 success, 2 bad input or usage, 1 other failure, 130 cancelled.

mod cli;

fn main() {
    std::process::exit(cli::run());
}
