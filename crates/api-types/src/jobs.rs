//! The jobs API's wire shapes (api-contract.md §3.1), exactly the keys the pinned
//! official client knows, plus the v2 `status` object when asked for.

use serde::{Deserialize, Serialize};

use crate::envelope::Messages;

/// The body of `POST /jobs/` (run) and `PATCH /jobs/` (load): every key, `null` when unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub struct JobRequestBody {
    pub name: String,
    #[serde(default)]
    pub imagename: Option<String>,
    #[serde(default)]
    pub cmd: Option<String>,
    #[serde(default)]
    pub filelog: Option<bool>,
    #[serde(default)]
    pub filelog_stdout: Option<String>,
    #[serde(default)]
    pub filelog_stderr: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub emails: Option<String>,
    #[serde(default)]
    pub retry: Option<i64>,
    #[serde(default)]
    pub continuous: Option<bool>,
    #[serde(default)]
    pub schedule: Option<String>,
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub port: Option<i64>,
    #[serde(default)]
    pub health_check: Option<HealthCheckBody>,
    #[serde(default)]
    pub mount: Option<String>,
    #[serde(default)]
    pub timeout: Option<i64>,
    /// Extension (not sent by the pinned official client): route the tool's web address
    /// to this continuous job's port (`toolforge jobs run --publish`).
    #[serde(default)]
    pub publish: Option<bool>,
}

/// A health check: `{"type": "script", "script": …}` or `{"type": "http", "path": …}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct HealthCheckBody {
    #[serde(rename = "type", alias = "health_check_type", default)]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub script: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A job as the API returns it ("DefinedJob").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DefinedJob {
    pub name: String,
    pub cmd: String,
    pub imagename: String,
    pub image: String,
    pub image_state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule_actual: Option<String>,
    /// Present (and `true`) only for continuous jobs: any non-null value means continuous
    /// to the pinned client.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub continuous: Option<bool>,
    pub filelog: bool,
    pub filelog_stdout: Option<String>,
    pub filelog_stderr: Option<String>,
    pub emails: String,
    pub retry: u8,
    pub mount: String,
    pub memory: String,
    pub cpu: String,
    pub port: Option<u16>,
    pub replicas: Option<u32>,
    /// Only when set: `null` would be dumped and break `load`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    pub health_check: Option<HealthCheckBody>,
    pub status_short: String,
    pub status_long: String,
    /// The v2 status, only with `include_status=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatusBody>,
    /// Extension, only with `include_status=true` (the pinned client would warn about
    /// an unknown key in `dump`): whether the tool's web address routes to this job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish: Option<bool>,
}

/// The richer status our CLI asks for with `include_status=true`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct JobStatusBody {
    pub short: String,
    pub long: String,
    /// `restarted (N)`, `exitcode X`.
    pub messages: Vec<String>,
    /// Seconds the current run has been going.
    pub duration: Option<i64>,
    /// When the last run started (RFC 3339).
    pub last_run: Option<String>,
    /// Whether the running replicas run the current definition.
    pub up_to_date: bool,
}

/// `{"job": …, "messages": …}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobResponse {
    pub job: DefinedJob,
    pub messages: Messages,
}

/// `{"jobs": […], "messages": …}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobListResponse {
    pub jobs: Vec<DefinedJob>,
    pub messages: Messages,
}

/// The answer to PATCH.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobApplyResponse {
    pub messages: Messages,
    pub job_changed: bool,
}

/// `{"messages": …}`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct MessagesResponse {
    pub messages: Messages,
}

/// One image of `GET /images/`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageBody {
    pub shortname: String,
    pub image: String,
}

/// `{"images": […], "messages": …}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ImageListResponse {
    pub images: Vec<ImageBody>,
    pub messages: Messages,
}

/// One row of the quota table.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotaItem {
    pub name: String,
    pub limit: String,
    pub used: Option<String>,
}

/// One table of the quota.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotaCategory {
    pub name: String,
    pub items: Vec<QuotaItem>,
}

/// `{"categories": […]}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Quota {
    pub categories: Vec<QuotaCategory>,
}

/// `{"quota": …, "messages": …}`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuotaResponse {
    pub quota: Quota,
    pub messages: Messages,
}

/// One line of the log stream.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogLineBody {
    pub pod: String,
    pub container: String,
    pub datetime: String,
    pub message: String,
}

/// The body of `POST /webservice` (start), an extension of the jobs API used by our CLI
/// and the dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebserviceRequest {
    /// `generic`, `buildservice`, or an image with a webservice variant (`python3.11`).
    #[serde(rename = "type")]
    pub kind: String,
    /// The command of a `generic` webservice (its extra arguments).
    #[serde(default)]
    pub extra_args: Option<String>,
    /// The image of a `generic` webservice (default `bookworm`).
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
    #[serde(default)]
    pub replicas: Option<i64>,
    #[serde(default)]
    pub mount: Option<String>,
    #[serde(default)]
    pub buildservice_image: Option<String>,
}

/// A running (or starting) webservice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebserviceBody {
    #[serde(rename = "type")]
    pub kind: String,
    /// The continuous job that serves it (named after the tool).
    pub job: String,
    pub image: String,
    pub cmd: String,
    pub replicas: u32,
    pub cpu: String,
    pub memory: String,
    pub mount: String,
    /// `running`, or the job's status while it is not.
    pub state: String,
    /// Replicas that take requests now.
    pub serving_replicas: u32,
}

/// `{"webservice": … | null, "url": …, "messages": …}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebserviceResponse {
    pub webservice: Option<WebserviceBody>,
    /// The tool's public web address.
    pub url: String,
    #[serde(default)]
    pub messages: Messages,
}

/// One webservice type of `GET /webservice/types`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebserviceTypeBody {
    /// `generic`, `buildservice`, or an image with a webservice variant (`python3.11`).
    pub name: String,
    /// Whether the type is deprecated (the original marks them `(DEPRECATED)`).
    pub deprecated: bool,
    /// `None` when this platform can serve it, else why not.
    pub unavailable: Option<String>,
}

/// `{"types": […], "messages": …}`: every webservice type, sorted by name.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebserviceTypesResponse {
    pub types: Vec<WebserviceTypeBody>,
    #[serde(default)]
    pub messages: Messages,
}
