//! Tool pages (engineer H4b): create a tool, the tool page with maintainers, jobs,
//! webservice, envvar names and recent logs, kubeconfig download, the public tool list.
//!
//! | URL | who | what |
//! |---|---|---|
//! | `/tools/?q=&page=` | anyone | the tool list, searched by name, title, description and tags, 50 a page (`#tool-search-form`: `q`) |
//! | `/tools/create` | members, admins | `#tool-create-form`: `name`, `title`, `description`, `license`, `tags`, `is_webservice` |
//! | `/tools/api/toolname/{name}` | anyone | JSON `{"name","available","error"}`, 200 when available, 406 otherwise (as Striker) |
//! | `/tools/id/{tool}` | anyone; jobs, envvars, logs and the kubeconfig for maintainers and admins | the tool page |
//! | `/tools/id/{tool}/maintainers/add` | maintainers, admins | POST `#maintainer-add-form`: `member` (a user or a tool) |
//! | `/tools/id/{tool}/maintainers/remove` | maintainers, admins | POST `#maintainer-remove-<name>`: `member` |
//! | `/tools/id/{tool}/edit` | maintainers, admins | `#tool-edit-form`: the metadata |
//! | `/tools/id/{tool}/kubeconfig` | maintainers | POST `#kubeconfig-form`: the tool's kubeconfig with its certificate and key inline |
//!
//! Creating a tool goes through [`accounts::Accounts::create_tool`], the code path of
//! `toolforged admin tool create`, so the home, certificate and kubeconfig are made the
//! same way; the metadata is written right after. Who may act on a tool is what the API
//! gateway allows: its direct user maintainers, and admins (the kubeconfig download is
//! for maintainers only). Tool creation, maintainer changes and kubeconfig downloads are
//! written to the audit log with the user's name.

pub mod form;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use store::{NewAudit, PrincipalKind, ToolInfoUpdate, ToolStatus};

use crate::DashboardState;
use crate::page::{FlashLevel, Layout, PageError, redirect, render, render_with_status};
use crate::session::{CurrentUser, OptionalUser};
use crate::tools::form::{FieldError, MetadataInput};

/// Tools on one page of the list.
pub const PAGE_SIZE: u64 = 50;
/// Log lines on the tool page.
pub const LOG_LINES: usize = 50;
/// Striker's message for a name that breaks the rule.
pub const NAME_RULE_MESSAGE: &str = "Must start with a-z, end with a-z or 0-9, be 1-32 characters long, and can only contain lowercase a-z, 0-9, and - characters.";
/// Striker's message for a name that is taken.
pub const NAME_TAKEN_MESSAGE: &str = "Tool name is already in use.";

/// The tool pages' routes.
pub fn router() -> Router<DashboardState> {
    Router::new()
        .route("/tools", get(list_tools))
        .route("/tools/", get(list_tools))
        .route("/tools/create", get(show_create_tool).post(create_tool))
        .route("/tools/api/toolname/{name}", get(check_tool_name))
        .route("/tools/id/{tool}", get(show_tool))
        .route("/tools/id/{tool}/edit", get(show_edit_tool).post(edit_tool))
        .route("/tools/id/{tool}/maintainers/add", post(add_maintainer))
        .route(
            "/tools/id/{tool}/maintainers/remove",
            post(remove_maintainer),
        )
        .route("/tools/id/{tool}/kubeconfig", post(download_kubeconfig))
}

/// Whether `name` may be a new tool's name: `Err` with Striker's message when it breaks
/// the rule or is used by a tool or a user (they share one namespace).
pub async fn tool_name_problem(
    store: &store::Store,
    name: &str,
) -> Result<Option<&'static str>, store::Error> {
    if ::accounts::names::validate_tool_name(name).is_err() {
        return Ok(Some(NAME_RULE_MESSAGE));
    }
    if store.principal_kind(name).await?.is_some() {
        return Ok(Some(NAME_TAKEN_MESSAGE));
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------
// The list.

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<String>,
}

#[derive(Template)]
#[template(path = "tools/list.html")]
struct ToolListPage {
    page: Layout,
    query: String,
    tools: Vec<store::ToolSummary>,
    total: u64,
    page_number: u64,
    n_pages: u64,
    prev_url: Option<String>,
    next_url: Option<String>,
    can_create: bool,
}

async fn list_tools(
    State(state): State<DashboardState>,
    OptionalUser { page, user, .. }: OptionalUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, PageError> {
    let page_number = match query.page.as_deref().map(str::trim) {
        None | Some("") => 1,
        Some(text) => match text.parse::<u64>() {
            Ok(number) if number >= 1 => number,
            _ => {
                return Err(PageError::BadRequest(format!(
                    "'{text}' is not a page number: pages are numbered from 1."
                ))
                .with_layout(page));
            }
        },
    };
    let found = state
        .store
        .search_tools(
            &query.q,
            (page_number - 1).saturating_mul(PAGE_SIZE),
            PAGE_SIZE,
        )
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    let n_pages = found.total.div_ceil(PAGE_SIZE).max(1);
    let link = |number: u64| {
        let mut url = format!("/tools/?page={number}");
        if !query.q.trim().is_empty() {
            url.push_str("&q=");
            url.push_str(&percent_encode(query.q.trim()));
        }
        url
    };
    let can_create = user
        .as_ref()
        .is_some_and(|user| user.member || user.is_admin);
    render(&ToolListPage {
        query: query.q.trim().to_owned(),
        tools: found.tools,
        total: found.total,
        page_number,
        n_pages,
        prev_url: (page_number > 1).then(|| link(page_number - 1)),
        next_url: (page_number < n_pages).then(|| link(page_number + 1)),
        can_create,
        page,
    })
}

fn percent_encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

// ---------------------------------------------------------------------------------------
// Creating a tool.

#[derive(Template)]
#[template(path = "tools/create.html")]
struct CreateToolPage {
    page: Layout,
    form: CreateForm,
    licenses: Vec<store::License>,
    errors: Vec<FieldError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(flatten)]
    metadata: MetadataInput,
}

impl CreateToolPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        field_error(&self.errors, field)
    }
}

fn field_error<'a>(errors: &'a [FieldError], field: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|err| err.field == field)
        .map(|err| err.message.as_str())
}

async fn require_member(
    state: &DashboardState,
    user: &crate::page::SessionUser,
    page: &Layout,
) -> Result<(), PageError> {
    let member = state
        .is_member(&user.name)
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    if member {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "Only Toolforge members create tools: request membership at /tools/membership/apply first."
                .to_owned(),
        )
        .with_layout(page.clone()))
    }
}

async fn show_create_tool(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
) -> Result<Response, PageError> {
    require_member(&state, &user, &page).await?;
    let licenses = state
        .store
        .licenses()
        .await
        .map_err(|err| PageError::from(err).with_layout(page.clone()))?;
    render(&CreateToolPage {
        page,
        form: CreateForm::default(),
        licenses,
        errors: Vec::new(),
    })
}

async fn create_tool(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    axum::Form(form): axum::Form<CreateForm>,
) -> Result<Response, PageError> {
    require_member(&state, &user, &page).await?;
    let with_page = |err: store::Error| PageError::from(err).with_layout(page.clone());
    let licenses = state.store.licenses().await.map_err(with_page)?;
    let slugs: Vec<String> = licenses.iter().map(|l| l.slug.clone()).collect();
    let name = form.name.trim().to_owned();
    let mut errors = Vec::new();
    if let Some(problem) = tool_name_problem(&state.store, &name)
        .await
        .map_err(with_page)?
    {
        errors.push(FieldError {
            field: "name",
            message: problem.to_owned(),
        });
    }
    let mut input = form.metadata.clone();
    input.authors = user.name.clone();
    let metadata = match input.validate(&slugs) {
        Ok(metadata) if errors.is_empty() => metadata,
        Ok(_) => return create_form_again(page, form, licenses, errors),
        Err(more) => {
            errors.extend(more);
            return create_form_again(page, form, licenses, errors);
        }
    };
    let created = state
        .accounts
        .create_tool(&name, &user.name, &metadata.title, &metadata.description)
        .await;
    match created {
        Ok(_) => {}
        Err(::accounts::Error::Store(store::Error::NameTaken { .. })) => {
            // Taken between the check and the insert.
            errors.push(FieldError {
                field: "name",
                message: NAME_TAKEN_MESSAGE.to_owned(),
            });
            return create_form_again(page, form, licenses, errors);
        }
        Err(err) if err.is_refusal() => {
            errors.push(FieldError {
                field: "name",
                message: err.to_string(),
            });
            return create_form_again(page, form, licenses, errors);
        }
        Err(err) => {
            tracing::error!(tool = %name, error = %crate::page::error_chain(&err), "creating a tool from the dashboard failed");
            return Err(PageError::Internal.with_layout(page));
        }
    }
    let now = state.accounts.now();
    state
        .store
        .set_tool_info(
            &name,
            ToolInfoUpdate {
                title: &metadata.title,
                description: &metadata.description,
                info: &metadata.info,
            },
            now,
        )
        .await
        .map_err(with_page)?;
    audit(
        &state,
        &user.name,
        "tool create",
        &name,
        "from the dashboard",
    )
    .await;
    session
        .flash(FlashLevel::Success, &format!("Tool {name} created"))
        .await;
    Ok(redirect(&format!("/tools/id/{name}")))
}

fn create_form_again(
    page: Layout,
    form: CreateForm,
    licenses: Vec<store::License>,
    errors: Vec<FieldError>,
) -> Result<Response, PageError> {
    let status = if errors
        .iter()
        .any(|err| err.field == "name" && err.message == NAME_TAKEN_MESSAGE)
    {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    };
    render_with_status(
        status,
        &CreateToolPage {
            page,
            form,
            licenses,
            errors,
        },
    )
}

async fn check_tool_name(
    State(state): State<DashboardState>,
    Path(name): Path<String>,
) -> Response {
    let problem = match tool_name_problem(&state.store, &name).await {
        Ok(problem) => problem,
        Err(err) => {
            tracing::error!(error = %crate::page::error_chain(&err), "checking a tool name failed");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(serde_json::json!({"error": "internal error"})),
            )
                .into_response();
        }
    };
    let status = if problem.is_some() {
        StatusCode::NOT_ACCEPTABLE
    } else {
        StatusCode::OK
    };
    (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(serde_json::json!({
            "name": name,
            "available": problem.is_none(),
            "error": problem,
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------
// The tool page.

/// A job row of the tool page.
struct JobRow {
    name: String,
    kind: &'static str,
    image: String,
    command: String,
    status: String,
    status_long: String,
    published: bool,
}

/// A log line of the tool page.
struct LogRow {
    datetime: String,
    job: String,
    stream: String,
    message: String,
}

/// The webservice panel.
struct Webservice {
    url: String,
    /// The published job, if any.
    job: Option<String>,
    /// Replicas taking requests.
    serving: usize,
}

/// What only maintainers and admins see.
struct PrivatePanels {
    jobs: Vec<JobRow>,
    envvars: Vec<String>,
    logs: Vec<LogRow>,
    /// Why the panels are empty (no tool services in this dashboard).
    unavailable: Option<String>,
}

#[derive(Template)]
#[template(path = "tools/tool.html")]
struct ToolPage {
    page: Layout,
    tool: store::ToolWithInfo,
    license_name: Option<String>,
    maintainers: Vec<(String, PrincipalKind)>,
    webservice: Webservice,
    can_manage: bool,
    is_maintainer: bool,
    private: Option<PrivatePanels>,
    maintainer_error: Option<String>,
    member_value: String,
    api_url: String,
}

impl ToolPage {
    fn disabled(&self) -> bool {
        self.tool.tool.status == ToolStatus::Disabled
    }
}

struct Viewer<'a> {
    user: Option<&'a crate::page::SessionUser>,
}

async fn tool_page(
    state: &DashboardState,
    name: &str,
    viewer: Viewer<'_>,
    page: Layout,
) -> Result<ToolPage, PageError> {
    let with_page = |err: store::Error| PageError::from(err).with_layout(page.clone());
    let Some(tool) = state.store.tool_info(name).await.map_err(with_page)? else {
        return Err(PageError::NotFound.with_layout(page));
    };
    let maintainers = state.store.maintainers(name).await.map_err(with_page)?;
    let is_maintainer = viewer.user.is_some_and(|user| {
        maintainers
            .iter()
            .any(|(member, kind)| *kind == PrincipalKind::User && *member == user.name)
    });
    let can_manage = is_maintainer || viewer.user.is_some_and(|user| user.is_admin);
    let license_name = match &tool.info.license {
        Some(slug) => state
            .store
            .licenses()
            .await
            .map_err(with_page)?
            .into_iter()
            .find(|license| license.slug == *slug)
            .map(|license| format!("{} ({})", license.name, license.slug)),
        None => None,
    };
    let mut webservice = Webservice {
        url: webservice_url(state, &tool),
        job: None,
        serving: 0,
    };
    let private = if can_manage {
        Some(private_panels(state, name, &mut webservice).await?)
    } else if let Some(services) = &state.tool_services {
        // Everyone sees whether the webservice runs; only maintainers see the jobs.
        webservice.serving = services.engine.web_upstreams(name).len();
        None
    } else {
        None
    };
    Ok(ToolPage {
        page,
        tool,
        license_name,
        maintainers,
        webservice,
        can_manage,
        is_maintainer,
        private,
        maintainer_error: None,
        member_value: String::new(),
        api_url: state.accounts.config().public_api_url.clone(),
    })
}

/// The tool's public address: its webservice (with the toolinfo path), as the proxy
/// serves it.
pub fn webservice_url(state: &DashboardState, tool: &store::ToolWithInfo) -> String {
    let mut url = state.config.webservice_url(&tool.tool.name);
    url.push_str(&tool.info.suburl);
    url
}

async fn private_panels(
    state: &DashboardState,
    tool: &str,
    webservice: &mut Webservice,
) -> Result<PrivatePanels, PageError> {
    let Some(services) = &state.tool_services else {
        return Ok(PrivatePanels {
            jobs: Vec::new(),
            envvars: Vec::new(),
            logs: Vec::new(),
            unavailable: Some("The jobs service is not running in this dashboard.".to_owned()),
        });
    };
    let views = services.engine.list(tool).await.map_err(|err| {
        tracing::error!(tool, error = %crate::page::error_chain(&err), "listing a tool's jobs for its page failed");
        PageError::Internal
    })?;
    webservice.job = views
        .iter()
        .find(|view| view.spec.is_published())
        .map(|view| view.spec.name.clone());
    webservice.serving = services.engine.web_upstreams(tool).len();
    let jobs = views
        .into_iter()
        .map(|view| JobRow {
            kind: if view.spec.is_scheduled() {
                "scheduled"
            } else if view.spec.is_continuous() {
                "continuous"
            } else {
                "one-off"
            },
            published: view.spec.is_published(),
            name: view.spec.name,
            image: view.spec.image,
            command: view.spec.cmd,
            status: view.status.short,
            status_long: view.status.long,
        })
        .collect();
    let envvars = services.secrets.names(tool).await.map_err(|err| {
        tracing::error!(tool, error = %crate::page::error_chain(&err), "listing a tool's envvar names failed");
        PageError::Internal
    })?;
    let logs = services.logs.clone();
    let owned_tool = tool.to_owned();
    let page = tokio::task::spawn_blocking(move || {
        logs.query(
            &owned_tool,
            &jobs_engine::logs::LogQuery {
                limit: LOG_LINES,
                ..Default::default()
            },
        )
    })
    .await
    .map_err(|err| {
        tracing::error!(tool, error = %err, "reading a tool's logs failed");
        PageError::Internal
    })?;
    // Newest first from the query; the page reads top to bottom, oldest first.
    let logs = page
        .lines
        .into_iter()
        .rev()
        .map(|line| LogRow {
            datetime: line.datetime,
            job: line.container,
            stream: line.stream,
            message: line.message,
        })
        .collect();
    Ok(PrivatePanels {
        jobs,
        envvars,
        logs,
        unavailable: None,
    })
}

async fn show_tool(
    State(state): State<DashboardState>,
    OptionalUser { page, user, .. }: OptionalUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let viewer = Viewer {
        user: user.as_ref(),
    };
    let tool = tool_page(&state, &name, viewer, page).await?;
    render(&tool)
}

// ---------------------------------------------------------------------------------------
// Maintainers.

#[derive(Debug, Deserialize)]
struct MemberForm {
    #[serde(default)]
    member: String,
}

/// The tool page for a maintainer or admin, or the 403 (404 when there is no such tool).
async fn managed_tool(
    state: &DashboardState,
    name: &str,
    user: &crate::page::SessionUser,
    page: Layout,
) -> Result<ToolPage, PageError> {
    let tool = tool_page(state, name, Viewer { user: Some(user) }, page.clone()).await?;
    if !tool.can_manage {
        return Err(PageError::Forbidden(format!(
            "Only maintainers of {name} and admins may change it."
        ))
        .with_layout(page));
    }
    Ok(tool)
}

async fn add_maintainer(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<MemberForm>,
) -> Result<Response, PageError> {
    let mut tool = managed_tool(&state, &name, &user, page).await?;
    let member = form.member.trim().to_owned();
    let res = if member.is_empty() {
        Err((
            StatusCode::BAD_REQUEST,
            "Give the name of a user or a tool to add.".to_owned(),
        ))
    } else {
        match state
            .store
            .add_maintainer(&name, &member, state.accounts.now())
            .await
        {
            Ok(changed) => Ok(changed),
            Err(store::Error::NotFound { .. }) => Err((
                StatusCode::NOT_FOUND,
                format!("There is no user or tool named '{member}'."),
            )),
            Err(store::Error::Conflict(message)) => Err((StatusCode::CONFLICT, message)),
            Err(err) => return Err(PageError::from(err).with_layout(tool.page)),
        }
    };
    match res {
        Ok(true) => {
            audit(&state, &user.name, "tool add-maintainer", &name, &member).await;
            session
                .flash(FlashLevel::Success, "Maintainers updated")
                .await;
            Ok(redirect(&format!("/tools/id/{name}")))
        }
        Ok(false) => {
            session
                .flash(FlashLevel::Warning, "Maintainers unchanged")
                .await;
            Ok(redirect(&format!("/tools/id/{name}")))
        }
        Err((status, message)) => {
            tool.maintainer_error = Some(message);
            tool.member_value = member;
            render_with_status(status, &tool)
        }
    }
}

async fn remove_maintainer(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<MemberForm>,
) -> Result<Response, PageError> {
    let mut tool = managed_tool(&state, &name, &user, page).await?;
    let member = form.member.trim().to_owned();
    match state.store.remove_maintainer(&name, &member).await {
        Ok(()) => {
            audit(&state, &user.name, "tool remove-maintainer", &name, &member).await;
            session
                .flash(FlashLevel::Success, "Maintainers updated")
                .await;
            Ok(redirect(&format!("/tools/id/{name}")))
        }
        Err(store::Error::NotFound { .. }) => {
            session
                .flash(FlashLevel::Warning, "Maintainers unchanged")
                .await;
            Ok(redirect(&format!("/tools/id/{name}")))
        }
        Err(store::Error::Conflict(message)) => {
            tool.maintainer_error = Some(message);
            render_with_status(StatusCode::CONFLICT, &tool)
        }
        Err(err) => Err(PageError::from(err).with_layout(tool.page)),
    }
}

// ---------------------------------------------------------------------------------------
// Editing the metadata.

#[derive(Template)]
#[template(path = "tools/edit.html")]
struct EditToolPage {
    page: Layout,
    name: String,
    form: MetadataInput,
    licenses: Vec<store::License>,
    errors: Vec<FieldError>,
}

impl EditToolPage {
    fn error_for(&self, field: &str) -> Option<&str> {
        field_error(&self.errors, field)
    }
}

async fn show_edit_tool(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let tool = managed_tool(&state, &name, &user, page).await?;
    let licenses = state
        .store
        .licenses()
        .await
        .map_err(|err| PageError::from(err).with_layout(tool.page.clone()))?;
    let info = &tool.tool.info;
    let form = MetadataInput {
        title: tool.tool.tool.title.clone(),
        description: tool.tool.tool.description.clone(),
        license: info.license.clone().unwrap_or_default(),
        tags: info.tags.join(", "),
        authors: info.authors.join(", "),
        repository: info.repository.clone(),
        issues: info.issues.clone(),
        docs: info.docs.clone(),
        is_webservice: info.is_webservice.then(|| "on".to_owned()),
        suburl: info.suburl.clone(),
    };
    render(&EditToolPage {
        page: tool.page,
        name,
        form,
        licenses,
        errors: Vec::new(),
    })
}

async fn edit_tool(
    State(state): State<DashboardState>,
    CurrentUser {
        user,
        page,
        session,
    }: CurrentUser,
    Path(name): Path<String>,
    axum::Form(form): axum::Form<MetadataInput>,
) -> Result<Response, PageError> {
    let tool = managed_tool(&state, &name, &user, page).await?;
    let page = tool.page;
    let with_page = |err: store::Error| PageError::from(err).with_layout(page.clone());
    let licenses = state.store.licenses().await.map_err(with_page)?;
    let slugs: Vec<String> = licenses.iter().map(|l| l.slug.clone()).collect();
    let metadata = match form.validate(&slugs) {
        Ok(metadata) => metadata,
        Err(errors) => {
            return render_with_status(
                StatusCode::BAD_REQUEST,
                &EditToolPage {
                    page,
                    name,
                    form,
                    licenses,
                    errors,
                },
            );
        }
    };
    state
        .store
        .set_tool_info(
            &name,
            ToolInfoUpdate {
                title: &metadata.title,
                description: &metadata.description,
                info: &metadata.info,
            },
            state.accounts.now(),
        )
        .await
        .map_err(with_page)?;
    session
        .flash(FlashLevel::Success, &format!("Tool {name} updated"))
        .await;
    Ok(redirect(&format!("/tools/id/{name}")))
}

// ---------------------------------------------------------------------------------------
// The kubeconfig.

async fn download_kubeconfig(
    State(state): State<DashboardState>,
    CurrentUser { user, page, .. }: CurrentUser,
    Path(name): Path<String>,
) -> Result<Response, PageError> {
    let with_page = |err: store::Error| PageError::from(err).with_layout(page.clone());
    let Some(tool) = state.store.get_tool(&name).await.map_err(with_page)? else {
        return Err(PageError::NotFound.with_layout(page));
    };
    if !state
        .store
        .is_maintainer(&name, &user.name)
        .await
        .map_err(with_page)?
    {
        return Err(PageError::Forbidden(format!(
            "Only maintainers of {name} may download its credentials."
        ))
        .with_layout(page));
    }
    if tool.status == ToolStatus::Disabled {
        return Err(PageError::Conflict(format!(
            "{name} is disabled: its credentials are refused until an admin enables it again."
        ))
        .with_layout(page));
    }
    let home = state.accounts.tool_home(&name);
    let (cert, key) = match (
        std::fs::read_to_string(home.client_cert()),
        std::fs::read_to_string(home.client_key()),
    ) {
        (Ok(cert), Ok(key)) => (cert, key),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!(tool = %name, error = %err, "reading a tool's credentials for the kubeconfig download failed");
            return Err(PageError::Internal.with_layout(page));
        }
    };
    let kubeconfig = ::accounts::home::inline_kubeconfig(
        &name,
        &format!("tf-{name}"),
        &state.accounts.config().public_api_url,
        state.accounts.ca().cert_pem(),
        &cert,
        &key,
    );
    audit(&state, &user.name, "tool kubeconfig download", &name, "").await;
    Ok((
        [
            (header::CONTENT_TYPE, "application/yaml".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}-kubeconfig.yaml\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        kubeconfig,
    )
        .into_response())
}

/// Writes an audit record for a change already made; a failure is logged, not shown
/// (the change stands).
async fn audit(state: &DashboardState, actor: &str, action: &str, target: &str, detail: &str) {
    let entry = NewAudit {
        actor,
        action,
        target,
        detail,
        at: state.accounts.now(),
    };
    if let Err(err) = state.store.record_audit(&entry).await {
        tracing::error!(action, target, error = %crate::page::error_chain(&err), "writing an audit record failed");
    }
}

#[cfg(test)]
mod tests;
