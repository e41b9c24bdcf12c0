//! Integration tests: the `alinify` binary end to end, on data the tests generate.

mod accurate;
mod analyze;
mod bad_input;
mod batch;
mod cli;
mod common;
mod demons;
mod fast;
mod features;
mod formats;
mod fuzz_regressions;
mod gpu;
mod network;
mod periodic;
mod points;
mod reliability;
