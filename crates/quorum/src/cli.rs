//! Placeholder: replaced by the real command.
use std::io::Write;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the command, writing the report to `out` and diagnostics to `err`; returns the process exit code.
pub fn run(_args: Args, _out: &mut dyn Write, _err: &mut dyn Write) -> i32 {
    2
}
