//! Webservices: what `toolforge webservice <type> start` runs, as a continuous job named
//! after the tool, published (the tool's web address routes to it), on port 8000 (the
//! original's Service port; as root each replica has its own network namespace, without
//! root the runtime gives each replica its own `$PORT`, so commands always use `$PORT`).

/// The port a webservice listens on inside its network namespace.
pub const WEBSERVICE_PORT: u16 = 8000;

/// The server of a webservice type, as the image catalog describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server<'a> {
    /// `~/www/python/src/app.py` with a WSGI `app`, run by the venv's python when
    /// `~/www/python/venv/bin/python` exists, else by `python` (the image's).
    Python { python: &'a str },
    /// `~/public_html` served by `php -S`.
    Php { php: &'a str },
    /// `npm start` in `~/www/js`.
    Js,
    /// The given command.
    Generic { command: &'a str },
}

/// The WSGI server: the standard library's wsgiref made threaded, on `0.0.0.0:$PORT`,
/// logging each request to standard error (the job's logs).
const WSGI_SERVER: &str = "import os, sys
sys.path.insert(0, os.getcwd())
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIServer, make_server
class Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
from app import app
print('serving ~/www/python/src/app.py on port', os.environ['PORT'], file=sys.stderr, flush=True)
make_server('0.0.0.0', int(os.environ['PORT']), app, server_class=Server).serve_forever()";

/// The files in the tool home a type needs (relative to it), checked before it starts.
pub fn required_file(server: &Server<'_>) -> Option<&'static str> {
    match server {
        Server::Python { .. } => Some("www/python/src/app.py"),
        Server::Php { .. } => Some("public_html"),
        Server::Js => Some("www/js/package.json"),
        Server::Generic { .. } => None,
    }
}

/// The shell command of the webservice's job.
pub fn command(server: &Server<'_>) -> String {
    match server {
        Server::Python { python } => format!(
            "cd \"$HOME/www/python/src\" && if [ -x \"$HOME/www/python/venv/bin/python\" ]; then PY=\"$HOME/www/python/venv/bin/python\"; else PY={}; fi; exec \"$PY\" -u -c {}",
            shell_quote(python),
            shell_quote(WSGI_SERVER)
        ),
        Server::Php { php } => format!(
            "exec {} -S \"0.0.0.0:$PORT\" -t \"$HOME/public_html\"",
            shell_quote(php)
        ),
        Server::Js => "cd \"$HOME/www/js\" && exec npm start".to_owned(),
        Server::Generic { command } => (*command).to_owned(),
    }
}

/// `text` as one single-quoted shell word.
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_python_layout_prefers_the_venv_and_serves_port_from_the_environment() {
        let command = command(&Server::Python {
            python: "/usr/bin/python3.11",
        });
        assert!(
            command.starts_with(
                "cd \"$HOME/www/python/src\" && if [ -x \"$HOME/www/python/venv/bin/python\" ]"
            ),
            "{command}"
        );
        assert!(
            command.contains("else PY='/usr/bin/python3.11'"),
            "{command}"
        );
        assert!(
            command.contains("int(os.environ['\\''PORT'\\''])"),
            "{command}"
        );
    }

    #[test]
    fn php_serves_public_html_and_generic_runs_the_command() {
        assert_eq!(
            command(&Server::Php {
                php: "/usr/bin/php8.2"
            }),
            "exec '/usr/bin/php8.2' -S \"0.0.0.0:$PORT\" -t \"$HOME/public_html\""
        );
        assert_eq!(
            command(&Server::Generic {
                command: "python3 -m http.server $PORT"
            }),
            "python3 -m http.server $PORT"
        );
        assert_eq!(required_file(&Server::Js), Some("www/js/package.json"));
    }
}
