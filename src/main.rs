//! The `flashdeal` binary: parse the command line, run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    flashdeal::cli::Cli::parse().run()
}
