//! Reading what the user types, as the official envvars client's `click.prompt` calls do
//! (api-contract.md §4.3), and the decisions taken on the answers.
//!
//! - `create NAME` without a value: from a terminal, the prompt
//!   `Enter the value of your envvar (Hit Ctrl+C to cancel): ` until a non-empty line comes;
//!   otherwise all of standard input, verbatim (trailing newline kept, empty is `""`).
//!   Unlike the official client, what is typed is not echoed: it is a secret.
//! - `delete NAME` without `--yes-im-sure`: `Are you sure you want to delete NAME? (this
//!   can't be undone) [yN]: `, one line; empty means no; `y`, `yes`, `true`, `1` (any case)
//!   mean yes. The line is read from standard input whether or not it is a terminal.
//! - End of input or Ctrl+C at a prompt aborts (click's `Aborted!`).
//!
//! Reading is blocking, so it runs on tokio's blocking pool while Ctrl+C is awaited: the
//! terminal's echo must be restored before the process ends.

use std::io::Read;

/// The text of the value prompt (a `: ` follows).
pub const VALUE_PROMPT: &str = "Enter the value of your envvar (Hit Ctrl+C to cancel)";

/// Where `create` takes the value from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueSource<'a> {
    /// The command line's `ENVVAR_VALUE`.
    Argument(&'a str),
    /// A prompt on the terminal.
    Prompt,
    /// All of standard input.
    Stdin,
}

/// Where the value of `create` comes from: the argument, else the terminal, else stdin.
pub fn value_source(argument: Option<&str>, stdin_is_terminal: bool) -> ValueSource<'_> {
    match (argument, stdin_is_terminal) {
        (Some(value), _) => ValueSource::Argument(value),
        (None, true) => ValueSource::Prompt,
        (None, false) => ValueSource::Stdin,
    }
}

/// What a prompt does with a line read (`None`: the input ended).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Take this answer.
    Take(String),
    /// Ask again (an empty line to a prompt without a default).
    AskAgain,
    /// Stop: `Aborted!`, exit 1.
    Abort,
}

/// The value prompt's handling of a line: empty asks again, as click does without a default.
pub fn value_answer(line: Option<&str>) -> Answer {
    match line {
        None => Answer::Abort,
        Some("") => Answer::AskAgain,
        Some(value) => Answer::Take(value.to_owned()),
    }
}

/// Whether the answer to the delete confirmation is yes; an empty line takes the default,
/// `no`. Only these exact words count: ` y` (with a space) is no, as in the official client.
pub fn delete_confirmed(line: &str) -> bool {
    let answer = if line.is_empty() { "no" } else { line };
    matches!(answer.to_lowercase().as_str(), "y" | "1" | "yes" | "true")
}

/// What reading a line gave.
#[derive(Debug)]
pub enum LineRead {
    /// The line, without its `\n` (a last line without one is a line too).
    Line(String),
    /// The input ended before any character.
    End,
    /// Ctrl+C.
    Interrupted,
}

/// Reads one line from standard input, as Python's `input()` does, without echo when
/// `hidden` and standard input is a terminal. Ctrl+C is [`LineRead::Interrupted`].
pub async fn read_line(hidden: bool) -> std::io::Result<LineRead> {
    let echo = if hidden { EchoOff::new()? } else { None };
    let reading = tokio::task::spawn_blocking(read_line_blocking);
    let read = tokio::select! {
        read = reading => read.map_err(std::io::Error::other)?,
        interrupted = tokio::signal::ctrl_c() => interrupted.map(|()| LineRead::Interrupted),
    };
    if let Some(echo) = echo {
        echo.restore()?;
    }
    read
}

/// All of standard input, verbatim, as text.
pub fn read_all() -> std::io::Result<String> {
    let mut value = String::new();
    std::io::stdin().lock().read_to_string(&mut value)?;
    Ok(value)
}

fn read_line_blocking() -> std::io::Result<LineRead> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    let mut stdin = std::io::stdin().lock();
    loop {
        match stdin.read(&mut byte) {
            Ok(0) if line.is_empty() => return Ok(LineRead::End),
            Ok(0) => break,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
    }
    String::from_utf8(line)
        .map(LineRead::Line)
        .map_err(|err| std::io::Error::new(std::io::ErrorKind::InvalidData, err))
}

/// The terminal's settings before echo was turned off; [`EchoOff::restore`] puts them back.
struct EchoOff {
    saved: nix::sys::termios::Termios,
}

impl EchoOff {
    /// Turns echo off on standard input's terminal; `None` when it is not a terminal.
    fn new() -> std::io::Result<Option<EchoOff>> {
        use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};

        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return Ok(None);
        };
        let mut silent = saved.clone();
        silent.local_flags.remove(LocalFlags::ECHO);
        tcsetattr(&stdin, SetArg::TCSAFLUSH, &silent).map_err(std::io::Error::from)?;
        Ok(Some(EchoOff { saved }))
    }

    fn restore(self) -> std::io::Result<()> {
        nix::sys::termios::tcsetattr(
            std::io::stdin(),
            nix::sys::termios::SetArg::TCSAFLUSH,
            &self.saved,
        )
        .map_err(std::io::Error::from)
    }
}
