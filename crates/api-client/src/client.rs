//! The HTTP client: JSON requests to the gateway and the response envelope (api-contract.md §2).
//!
//! - Request URL = base with one trailing `/` removed + `/` + the path with one leading `/`
//!   removed; the base is `{api}{endpoint}/tool/{tool}` by plain concatenation, as the
//!   official clients build it (so an API URL ending in `/` gives `//jobs/v1/…`).
//! - 2xx: the body must be a JSON object; its `messages` (`info`, `warning`) come back in
//!   [`Reply::messages`] for the caller to show before its own output.
//! - 502, 503 and connection failures (refused, DNS, TLS handshake, connect timeout) are
//!   [`Error::ServiceDown`]; other 4xx are [`Error::User`], other statuses [`Error::Server`],
//!   with the message parsed by [`parse_error_body`].
//! - Timeouts: connect and read, 20 s by default ([`ClientOptions`]); no retries.

use std::time::Duration;

use api_types::envelope::{Health, Messages};
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::discovery::{ApiUrlSource, Discovery};
use crate::error::{Error, ResponseProblem, Result};
use crate::kubeconfig::Credentials;
use crate::tls;

pub use reqwest::Method;

/// The timeout of the envvars, builds and components clients (the jobs client's is 60 s,
/// `jobs.timeout` in the config).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The jobs client's timeout when the config has no `jobs.timeout`.
pub const JOBS_DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// A Toolforge service behind the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `/jobs/v1`.
    Jobs,
    /// `/envvars/v1`.
    Envvars,
    /// `/builds/v1`.
    Builds,
    /// `/components/v1`.
    Components,
}

impl Service {
    /// Every service.
    pub const ALL: [Service; 4] = [
        Service::Jobs,
        Service::Envvars,
        Service::Builds,
        Service::Components,
    ];

    /// The config section that may hold its endpoint (`jobs.jobs_endpoint` …).
    pub fn config_section(self) -> &'static str {
        match self {
            Service::Jobs => "jobs",
            Service::Envvars => "envvars",
            Service::Builds => "builds",
            Service::Components => "components",
        }
    }

    /// The key of the endpoint in its config section.
    pub fn endpoint_key(self) -> &'static str {
        match self {
            Service::Jobs => "jobs_endpoint",
            Service::Envvars => "envvars_endpoint",
            Service::Builds => "builds_endpoint",
            Service::Components => "components_endpoint",
        }
    }

    /// The endpoint when the config names none.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Service::Jobs => "/jobs/v1",
            Service::Envvars => "/envvars/v1",
            Service::Builds => "/builds/v1",
            Service::Components => "/components/v1",
        }
    }

    /// The name in "The <name> service seems to be down", as the official clients say it.
    pub fn down_name(self) -> &'static str {
        match self {
            Service::Jobs => "jobs",
            Service::Envvars => "envvars",
            Service::Builds => "build",
            Service::Components => "components",
        }
    }
}

/// How to build an [`ApiClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Timeout of connecting (DNS, TCP and TLS).
    pub connect_timeout: Duration,
    /// Timeout of each read; `None` for streams that may be quiet for long (`logs -f`).
    pub read_timeout: Option<Duration>,
    /// The client's name in the User-Agent, after `<namespace>@<host>:`.
    pub user_agent_name: String,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            connect_timeout: DEFAULT_TIMEOUT,
            read_timeout: Some(DEFAULT_TIMEOUT),
            user_agent_name: "toolforge-cli".to_owned(),
        }
    }
}

impl ClientOptions {
    /// The options the official client of `service` uses: the jobs client's timeout is
    /// `jobs.timeout` from the config (default 60 s), the others' 20 s (api-contract.md §1.8).
    pub fn for_service(config: &Config, service: Service) -> Result<ClientOptions> {
        let timeout = match service {
            Service::Jobs => config
                .get_seconds("jobs", "timeout")?
                .map_or(JOBS_DEFAULT_TIMEOUT, Duration::from_secs_f64),
            Service::Envvars | Service::Builds | Service::Components => DEFAULT_TIMEOUT,
        };
        Ok(ClientOptions {
            connect_timeout: timeout,
            read_timeout: Some(timeout),
            ..ClientOptions::default()
        })
    }

    /// These options without a read timeout, for streams that may stay quiet for long
    /// (`logs --follow`); connecting still times out.
    pub fn without_read_timeout(mut self) -> ClientOptions {
        self.read_timeout = None;
        self
    }
}

/// A successful answer: the body, and the messages to show before the command's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply<T> {
    /// The whole body, deserialized.
    pub body: T,
    /// `messages.info` and `messages.warning` (and `error`, which callers ignore on success).
    pub messages: Messages,
}

/// A client of one gateway, for one tool, with the discovered credentials.
///
/// Cloning is cheap (connections are shared).
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    api_url: String,
    tool: String,
    endpoints: [String; 4],
    read_timeout: Option<Duration>,
}

impl ApiClient {
    /// Builds a client from what was discovered: TLS settings and the client certificate,
    /// or the bearer token, the User-Agent, timeouts and the service endpoints.
    pub fn new(discovery: &Discovery, options: &ClientOptions) -> Result<ApiClient> {
        check_api_url(&discovery.api_url, &discovery.api_url_source)?;
        let mut endpoints: [String; 4] = Default::default();
        for (idx, service) in Service::ALL.into_iter().enumerate() {
            endpoints[idx] = discovery
                .config
                .get_str(service.config_section(), service.endpoint_key())?
                .unwrap_or(service.default_endpoint())
                .to_owned();
        }
        let tls = tls::client_config(&discovery.server_trust, &discovery.kubeconfig)?;
        let mut headers = HeaderMap::new();
        if let Credentials::Token(token) = &discovery.kubeconfig.credentials {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    Error::KubeconfigField {
                        path: discovery.kubeconfig.path.clone(),
                        field: format!("user {} token", discovery.kubeconfig.user),
                        expected: "usable in an HTTP header",
                    }
                })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let user_agent = format!(
            "{}@{}:{} toolforge-rs/{}",
            discovery.kubeconfig.namespace,
            discovery.hostname,
            options.user_agent_name,
            env!("CARGO_PKG_VERSION")
        );
        let mut builder = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .http1_only()
            .user_agent(user_agent)
            .default_headers(headers)
            .connect_timeout(options.connect_timeout);
        if let Some(read_timeout) = options.read_timeout {
            builder = builder.read_timeout(read_timeout);
        }
        let http = builder.build().map_err(Error::HttpClient)?;
        Ok(ApiClient {
            http,
            api_url: discovery.api_url.clone(),
            tool: discovery.tool.clone(),
            endpoints,
            read_timeout: options.read_timeout,
        })
    }

    /// The gateway's base URL.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The tool acted on.
    pub fn tool(&self) -> &str {
        &self.tool
    }

    /// A client of `service` for this tool, at `{api}{endpoint}/tool/{tool}`.
    pub fn service(&self, service: Service) -> ServiceClient {
        let idx = Service::ALL
            .iter()
            .position(|known| *known == service)
            .expect("Service::ALL lists every service");
        ServiceClient {
            base_url: format!("{}{}/tool/{}", self.api_url, self.endpoints[idx], self.tool),
            service,
            client: self.clone(),
        }
    }

    /// `GET {api}/healthz`. A 503 whose body is a health report (the gateway is degraded)
    /// is returned as such, not as [`Error::ServiceDown`].
    pub async fn health(&self) -> Result<Health> {
        let url = join_url(&self.api_url, "/healthz");
        let response = self.send(self.http.get(&url), &url, "API").await?;
        let status = response.status().as_u16();
        let body = self.read_body(response, &url).await?;
        if (status == 200 || status == 503)
            && let Ok(health) = serde_json::from_slice::<Health>(&body)
        {
            return Ok(health);
        }
        let reply: Reply<Health> = decode_reply(status, &body, &url, "API")?;
        Ok(reply.body)
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
        down_name: &'static str,
    ) -> Result<reqwest::Response> {
        request
            .send()
            .await
            .map_err(|err| self.transport_error(err, url, down_name))
    }

    async fn read_body(&self, response: reqwest::Response, url: &str) -> Result<Vec<u8>> {
        let status = response.status().as_u16();
        response
            .bytes()
            .await
            .map(|bytes| bytes.to_vec())
            .map_err(|err| self.read_error(err, url, status))
    }

    /// A failure while reading an answer's body: a read timeout, or a broken body.
    fn read_error(&self, err: reqwest::Error, url: &str, status: u16) -> Error {
        if err.is_timeout() {
            return Error::ReadTimeout {
                url: url.to_owned(),
                timeout: self.read_timeout.unwrap_or_default(),
                source: err,
            };
        }
        Error::InvalidResponse {
            url: url.to_owned(),
            status,
            source: ResponseProblem::Body(err),
        }
    }

    fn transport_error(&self, err: reqwest::Error, url: &str, down_name: &'static str) -> Error {
        if err.is_timeout() && !err.is_connect() {
            return Error::ReadTimeout {
                url: url.to_owned(),
                timeout: self.read_timeout.unwrap_or_default(),
                source: err,
            };
        }
        Error::ServiceDown {
            service: down_name,
            url: url.to_owned(),
            status: None,
            source: Some(err),
        }
    }
}

/// A client of one service for one tool; paths are relative to its base URL.
#[derive(Debug, Clone)]
pub struct ServiceClient {
    client: ApiClient,
    service: Service,
    base_url: String,
}

impl ServiceClient {
    /// `{api}{endpoint}/tool/{tool}`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL of `path` (see the module docs for the joining rule).
    pub fn url(&self, path: &str) -> String {
        join_url(&self.base_url, path)
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.request::<T, ()>(Method::GET, path, None).await
    }

    /// `DELETE path`, without a body.
    pub async fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<Reply<T>> {
        self.request::<T, ()>(Method::DELETE, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<Reply<T>> {
        self.request(Method::POST, path, Some(body)).await
    }

    /// Any method, with an optional JSON body (without one, `Content-Length: 0` is sent).
    pub async fn request<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<Reply<T>> {
        let url = self.url(path);
        let mut request = self.client.http.request(method, &url);
        request = match body {
            Some(body) => request.json(body),
            None => request.header(reqwest::header::CONTENT_LENGTH, 0),
        };
        let down_name = self.service.down_name();
        let response = self.client.send(request, &url, down_name).await?;
        let status = response.status().as_u16();
        let body = self.client.read_body(response, &url).await?;
        decode_reply(status, &body, &url, down_name)
    }

    /// `GET path`, answered line by line as the lines arrive (the logs endpoints send JSON
    /// lines). An error status is mapped as for [`ServiceClient::request`]. For a followed
    /// stream, build the client with [`ClientOptions::without_read_timeout`].
    pub async fn get_lines(&self, path: &str) -> Result<Lines> {
        let url = self.url(path);
        let down_name = self.service.down_name();
        let response = self
            .client
            .send(self.client.http.get(&url), &url, down_name)
            .await?;
        let status = response.status().as_u16();
        if !response.status().is_success() {
            let body = self.client.read_body(response, &url).await?;
            return Err(failure_error(status, &body, &url, down_name));
        }
        Ok(Lines {
            client: self.client.clone(),
            response: Some(response),
            buffer: Vec::new(),
            url,
            status,
        })
    }
}

/// The lines of a streamed answer ([`ServiceClient::get_lines`]).
#[derive(Debug)]
pub struct Lines {
    client: ApiClient,
    /// `None` once the body has ended.
    response: Option<reqwest::Response>,
    buffer: Vec<u8>,
    url: String,
    status: u16,
}

impl Lines {
    /// The next line, without its `\n` (or `\r\n`); `None` at the end of the body.
    /// A last line without a newline is returned too.
    pub async fn next_line(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(end) = self.buffer.iter().position(|byte| *byte == b'\n') {
                let mut line: Vec<u8> = self.buffer.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
            }
            let Some(response) = self.response.as_mut() else {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                let rest = std::mem::take(&mut self.buffer);
                return Ok(Some(String::from_utf8_lossy(&rest).into_owned()));
            };
            match response.chunk().await {
                Ok(Some(chunk)) => self.buffer.extend_from_slice(&chunk),
                Ok(None) => self.response = None,
                Err(err) => return Err(self.client.read_error(err, &self.url, self.status)),
            }
        }
    }
}

/// Maps a status and body to a [`Reply`] or the [`Error`] the contract says.
pub fn decode_reply<T: DeserializeOwned>(
    status: u16,
    body: &[u8],
    url: &str,
    down_name: &'static str,
) -> Result<Reply<T>> {
    if !(200..=299).contains(&status) {
        return Err(failure_error(status, body, url, down_name));
    }
    let invalid = |source| Error::InvalidResponse {
        url: url.to_owned(),
        status,
        source,
    };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| invalid(ResponseProblem::NotJson(err)))?;
    let serde_json::Value::Object(object) = &value else {
        return Err(invalid(ResponseProblem::NotObject));
    };
    let messages = match object.get("messages") {
        Some(messages) => {
            Messages::deserialize(messages).map_err(|err| invalid(ResponseProblem::Shape(err)))?
        }
        None => Messages::default(),
    };
    // From the text rather than from `value`, whose object sorts its keys: callers that
    // keep key order (the jobs CLI prints image fields in the server's order) see it.
    let body = serde_json::from_slice(body).map_err(|err| invalid(ResponseProblem::Shape(err)))?;
    Ok(Reply { body, messages })
}

/// The error that the failure `status` (not 2xx) stands for, with the message of `body`.
fn failure_error(status: u16, body: &[u8], url: &str, down_name: &'static str) -> Error {
    match status {
        502 | 503 => Error::ServiceDown {
            service: down_name,
            url: url.to_owned(),
            status: Some(status),
            source: None,
        },
        400..=499 => {
            let (message, messages) = parse_error_body(&String::from_utf8_lossy(body));
            Error::User {
                status,
                message,
                messages,
            }
        }
        _ => {
            let (message, messages) = parse_error_body(&String::from_utf8_lossy(body));
            Error::Server {
                status,
                message,
                messages,
            }
        }
    }
}

/// The message and the context messages (info, warnings) of an error body (§2.2):
/// a flat `error` list (joined with newlines; context = top-level `info`/`warning`), else a
/// nested `messages.error` list (joined; context = `messages.info`/`warning`), else a JSON
/// string, else the raw text.
pub fn parse_error_body(text: &str) -> (String, Messages) {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return (text.to_owned(), Messages::default());
    };
    if let serde_json::Value::String(message) = value {
        return (message, Messages::default());
    }
    let from = |holder: &serde_json::Value| -> Option<(String, Messages)> {
        let errors = string_list(holder.get("error")?)?;
        if errors.is_empty() {
            return None;
        }
        let context = Messages {
            info: holder.get("info").and_then(string_list).unwrap_or_default(),
            warning: holder
                .get("warning")
                .and_then(string_list)
                .unwrap_or_default(),
            error: Vec::new(),
        };
        Some((errors.join("\n"), context))
    };
    if let Some(found) = from(&value) {
        return found;
    }
    if let Some(found) = value.get("messages").and_then(from) {
        return found;
    }
    (text.to_owned(), Messages::default())
}

/// `base` with one trailing `/` removed + `/` + `path` with one leading `/` removed.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.strip_suffix('/').unwrap_or(base);
    let path = path.strip_prefix('/').unwrap_or(path);
    format!("{base}/{path}")
}

fn string_list(value: &serde_json::Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_owned))
        .collect()
}

fn check_api_url(url: &str, source: &ApiUrlSource) -> Result<()> {
    let valid = reqwest::Url::parse(url)
        .is_ok_and(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.has_host());
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidApiUrl {
            url: url.to_owned(),
            origin: source.to_string(),
        })
    }
}

#[cfg(test)]
mod tests;
