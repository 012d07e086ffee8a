//! The webservice extension of the jobs API (`/jobs/v1/tool/{tool}/webservice`), as our
//! CLI and the dashboard call it: show, start, stop and restart the tool's webservice, and
//! list the webservice types.
//!
//! API Boundary: the requests and answers are `api_types::jobs::Webservice*`; errors are
//! mapped as every other request of [`ServiceClient`] (a refused request is
//! [`crate::Error::User`] with the server's message).

use api_types::jobs::{WebserviceRequest, WebserviceResponse, WebserviceTypesResponse};

use crate::client::{Method, Reply, ServiceClient};
use crate::error::Result;

/// The webservice calls of a jobs [`ServiceClient`] (`api.service(Service::Jobs)`).
#[derive(Debug, Clone, Copy)]
pub struct WebserviceApi<'a> {
    jobs: &'a ServiceClient,
}

impl<'a> WebserviceApi<'a> {
    /// The webservice calls on `jobs`, a client of the jobs service.
    pub fn new(jobs: &'a ServiceClient) -> WebserviceApi<'a> {
        WebserviceApi { jobs }
    }

    /// `GET /webservice`: the tool's webservice (`None` when it has none) and its URL.
    pub async fn show(&self) -> Result<Reply<WebserviceResponse>> {
        self.jobs.get("/webservice").await
    }

    /// `POST /webservice`: starts the webservice `request` describes.
    pub async fn start(&self, request: &WebserviceRequest) -> Result<Reply<WebserviceResponse>> {
        self.jobs.post("/webservice", request).await
    }

    /// `DELETE /webservice`: stops the webservice (refused with 404 when none runs).
    pub async fn stop(&self) -> Result<Reply<WebserviceResponse>> {
        self.jobs.delete("/webservice").await
    }

    /// `POST /webservice/restart`: a rolling restart; answers once it is done.
    pub async fn restart(&self) -> Result<Reply<WebserviceResponse>> {
        self.jobs
            .request::<WebserviceResponse, ()>(Method::POST, "/webservice/restart", None)
            .await
    }

    /// `POST /webservice/restart` with `request`: a rolling restart onto the definition
    /// `request` describes (its type, command, cpu, memory, replicas); answers once done.
    pub async fn restart_with(
        &self,
        request: &WebserviceRequest,
    ) -> Result<Reply<WebserviceResponse>> {
        self.jobs.post("/webservice/restart", request).await
    }

    /// `GET /webservice/types`: every type, sorted by name, with whether it can be served.
    pub async fn types(&self) -> Result<Reply<WebserviceTypesResponse>> {
        self.jobs.get("/webservice/types").await
    }
}
