//! The `flashdeal` binary: parse the command line, run the command.

use clap::Parser;

fn main() -> std::process::ExitCode {
    flashdeal::cli::Cli::parse().run()
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks (duplicate flags, bad defaults, env
    /// names) over every subcommand.
    #[test]
    fn the_command_line_is_well_formed() {
        flashdeal::cli::Cli::command().debug_assert();
    }
}
