//! Showing the info and warnings that come with an answer, as the official clients do:
//! each info line on standard output, each warning on standard error after `Warning: `.
//! They come before the command's own output (api-contract.md §2.1).

use std::io::Write;

/// Prints `info` to `stdout` and `warnings` to `stderr`.
pub fn show(
    info: &[String],
    warnings: &[String],
    stdout: &mut impl Write,
    stderr: &mut impl Write,
) -> std::io::Result<()> {
    for line in info {
        writeln!(stdout, "{line}")?;
    }
    for line in warnings {
        writeln!(stderr, "Warning: {line}")?;
    }
    Ok(())
}
