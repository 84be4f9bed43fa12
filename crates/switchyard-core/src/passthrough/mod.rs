//! Pass-through: every OpenAI or Anthropic endpoint the gateway does not serve itself (files,
//! uploads, batches, vector stores, images, audio, moderations, fine-tuning, ...), forwarded
//! to the provider configured for its path prefix (`passthrough:` in the config).
//!
//! A forwarded request keeps its method, path, query, headers and body bytes; the gateway adds
//! only what it owns: client authentication (the client's gateway key is checked and removed,
//! the provider's credentials put in its place), the request id, timeouts and the one log line.
//! Bodies stream both ways: the upload goes upstream as it arrives (counted against the route's
//! `max_body_size`, never buffered whole), and the answer (JSON, binary or server-sent events)
//! is relayed frame by frame, byte for byte. There is exactly one attempt: an upload is read
//! once and a non-idempotent call must not run twice, so nothing is retried blindly (the HTTP
//! client re-sends only a request that never left, on a stale pooled connection).
//!
//! Upstream answers are relayed with their status and body, except 401/403, whose bodies can
//! carry fragments of the provider key: those become the gateway's own 502.

mod body;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use http::header::{HeaderName, AUTHORIZATION, CONTENT_LENGTH};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;

use self::body::{LimitedUpload, Relay};
use crate::config::{Endpoint, PassthroughRoute, ProviderConfig, ProviderKind, Timeouts};
use crate::error::GatewayError;
use crate::http_client::OutBody;
use crate::pipeline::ctx::{Outcome, RequestCtx};
use crate::pipeline::{Gateway, Logged};
use crate::providers::{ClientApi, Operation};

/// Request headers never forwarded: the client's credentials for the gateway, and hop-by-hop
/// headers that describe the client's connection, not the request.
const DROPPED_REQUEST_HEADERS: [&str; 14] = [
    "authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "proxy-authorization",
    "host",
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
];

/// Response headers not relayed (hop-by-hop).
const DROPPED_RESPONSE_HEADERS: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Azure serves these OpenAI endpoints per deployment (`/openai/deployments/{name}/...`), so a
/// path without a deployment cannot be forwarded there.
const AZURE_PER_DEPLOYMENT: [&str; 6] = [
    "/images",
    "/audio",
    "/moderations",
    "/completions",
    "/embeddings",
    "/chat",
];

/// How one provider is reached for pass-through requests.
#[derive(Debug)]
pub(crate) struct Upstream {
    provider: Arc<str>,
    flavor: Flavor,
    /// The provider's API root (e.g. `https://api.openai.com/v1`).
    base: String,
    /// Credentials and configured extra headers, marked sensitive.
    headers: HeaderMap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Flavor {
    OpenAi,
    Azure { api_version: String },
    Anthropic,
}

/// One `passthrough:` entry, ready to serve.
#[derive(Debug)]
pub(crate) struct Target {
    prefix: String,
    upstream: Arc<Upstream>,
    max_body_size: u64,
}

/// The pass-through routes (longest prefix first) and the providers `DELETE /v1/models/{id}`
/// may be forwarded to.
#[derive(Debug, Default)]
pub(crate) struct Table {
    targets: Vec<Target>,
    model_delete: HashMap<String, Arc<Upstream>>,
}

impl Table {
    /// Builds the table from validated config; `mock_url` is the embedded mock's address.
    pub(crate) fn new(
        routes: &[PassthroughRoute],
        model_delete: &std::collections::BTreeSet<String>,
        providers: &std::collections::BTreeMap<String, Arc<ProviderConfig>>,
        mock_url: Option<&str>,
    ) -> Result<Self, GatewayError> {
        let mut upstreams: HashMap<String, Arc<Upstream>> = HashMap::new();
        let mut upstream = |p: &Arc<ProviderConfig>| -> Result<Arc<Upstream>, GatewayError> {
            if let Some(u) = upstreams.get(&*p.name) {
                return Ok(Arc::clone(u));
            }
            let u = Arc::new(Upstream::new(p, mock_url)?);
            upstreams.insert(p.name.to_string(), Arc::clone(&u));
            Ok(u)
        };
        let mut targets = Vec::with_capacity(routes.len());
        for r in routes {
            targets.push(Target {
                prefix: r.prefix.clone(),
                upstream: upstream(&r.provider)?,
                max_body_size: r.max_body_size,
            });
        }
        targets.sort_by_key(|t| std::cmp::Reverse(t.prefix.len()));
        let mut deletable = HashMap::new();
        for name in model_delete {
            if let Some(p) = providers.get(name) {
                deletable.insert(name.clone(), upstream(p)?);
            }
        }
        Ok(Self {
            targets,
            model_delete: deletable,
        })
    }

    /// The route for a request path (with or without the `/v1` prefix), matched at segment
    /// boundaries: `/v1/files` serves `/v1/files` and `/v1/files/...`, not `/v1/filesystem`.
    pub(crate) fn find(&self, path: &str) -> Option<&Target> {
        let path = v1_path(path);
        self.targets.iter().find(|t| {
            path.strip_prefix(t.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The Anthropic provider that answers `GET /v1/models` for Anthropic clients, if any.
    pub(crate) fn anthropic_models(&self) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.prefix == "/v1/models" && t.upstream.flavor == Flavor::Anthropic)
    }
}

impl Upstream {
    fn new(p: &ProviderConfig, mock_url: Option<&str>) -> Result<Self, GatewayError> {
        let bad = |what: &str| GatewayError::Internal(format!("provider `{}` has {what}", p.name));
        let base = match &p.endpoint {
            Endpoint::Url(u) => u.clone(),
            Endpoint::EmbeddedMock => mock_url
                .map(|m| format!("{m}/v1"))
                .ok_or_else(|| GatewayError::Internal("embedded mock is not running".into()))?,
        };
        let (flavor, auth): (Flavor, Option<(HeaderName, String)>) = match &p.kind {
            ProviderKind::OpenAi => (
                Flavor::OpenAi,
                p.api_key
                    .as_ref()
                    .map(|k| (AUTHORIZATION, format!("Bearer {}", k.expose()))),
            ),
            ProviderKind::Azure { api_version } => (
                Flavor::Azure {
                    api_version: api_version.clone(),
                },
                p.api_key
                    .as_ref()
                    .map(|k| (HeaderName::from_static("api-key"), k.expose().to_owned())),
            ),
            ProviderKind::Anthropic { .. } => (
                Flavor::Anthropic,
                p.api_key
                    .as_ref()
                    .map(|k| (HeaderName::from_static("x-api-key"), k.expose().to_owned())),
            ),
            _ => return Err(bad("a type that cannot serve pass-through requests")),
        };
        let mut headers = HeaderMap::new();
        for (name, value) in &p.headers {
            headers.insert(name.clone(), value.clone());
        }
        if let Some((name, text)) = auth {
            let mut value = HeaderValue::from_str(&text).map_err(|_| bad("an invalid api_key"))?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        if let ProviderKind::Anthropic { api_version } = &p.kind {
            let v = api_version
                .as_deref()
                .unwrap_or(switchyard_types::anthropic::API_VERSION);
            let v = HeaderValue::from_str(v).map_err(|_| bad("an invalid api_version"))?;
            headers.insert(HeaderName::from_static("anthropic-version"), v);
        }
        Ok(Self {
            provider: Arc::clone(&p.name),
            flavor,
            base,
            headers,
        })
    }

    /// The upstream URL for `rest` (the client's path after `/v1`) and the client's query.
    fn url(&self, rest: &str, query: Option<&str>) -> Result<http::Uri, GatewayError> {
        let url = match &self.flavor {
            Flavor::OpenAi | Flavor::Anthropic => match query {
                Some(q) => format!("{}{rest}?{q}", self.base),
                None => format!("{}{rest}", self.base),
            },
            Flavor::Azure { api_version } => {
                if let Some(p) = AZURE_PER_DEPLOYMENT
                    .iter()
                    .find(|p| rest == **p || rest.starts_with(&format!("{p}/")))
                {
                    return Err(GatewayError::Unsupported {
                        param: String::new(),
                        message: format!(
                            "The provider `{}` is Azure OpenAI, which serves `/v1{p}` per \
                             deployment (`/openai/deployments/<name>{p}`), so it cannot be \
                             passed through without one; call it through a model alias, or \
                             route `/v1{p}` to an OpenAI-type provider.",
                            self.provider
                        ),
                        code: "unsupported_endpoint",
                    });
                }
                let has_version =
                    query.is_some_and(|q| q.split('&').any(|kv| kv.starts_with("api-version=")));
                let mut url = format!("{}/openai{rest}", self.base);
                match (query, has_version) {
                    (Some(q), true) => url.push_str(&format!("?{q}")),
                    (Some(q), false) => url.push_str(&format!("?{q}&api-version={api_version}")),
                    (None, _) => url.push_str(&format!("?api-version={api_version}")),
                }
                url
            }
        };
        url.parse()
            .map_err(|e| GatewayError::Internal(format!("bad pass-through URL: {e}")))
    }
}

/// The path with the `/v1` prefix every route is written with (clients may leave it out).
fn v1_path(path: &str) -> std::borrow::Cow<'_, str> {
    if path == "/v1" || path.starts_with("/v1/") {
        std::borrow::Cow::Borrowed(path)
    } else {
        std::borrow::Cow::Owned(format!("/v1{path}"))
    }
}

/// The error shape for a path: Anthropic's for `/v1/messages/...` and for Anthropic clients
/// (an `anthropic-version` header), OpenAI's otherwise.
fn api_for(path: &str, headers: &HeaderMap) -> ClientApi {
    if v1_path(path).starts_with("/v1/messages") || headers.contains_key("anthropic-version") {
        ClientApi::Anthropic
    } else {
        ClientApi::OpenAi
    }
}

/// Serves one pass-through request to `target`.
pub(crate) async fn handle(gw: Arc<Gateway>, target: &Target, req: Request<Body>) -> Response {
    let path = v1_path(req.uri().path()).into_owned();
    let rest = path.strip_prefix("/v1").unwrap_or(&path).to_owned();
    forward(
        &gw,
        &target.upstream,
        &rest,
        target.max_body_size,
        req,
        "passthrough",
    )
    .await
}

/// `DELETE /v1/models/{id}` for a deployment `provider`/`model`: forwarded when the provider
/// allows it (`allow_model_delete`), else a 400 that says why.
pub(crate) async fn delete_model(
    gw: Arc<Gateway>,
    provider: &str,
    kind: &ProviderKind,
    model: &str,
    req: Request<Body>,
) -> Response {
    let Some(upstream) = gw.passthrough.model_delete.get(provider).cloned() else {
        let why = match kind {
            ProviderKind::OpenAi => format!(
                "deleting models is not allowed at provider `{provider}` (set \
                 `providers.{provider}.allow_model_delete: true` to forward it)"
            ),
            _ => format!("provider `{provider}` has no model deletion endpoint"),
        };
        return GatewayError::Unsupported {
            param: "model".into(),
            message: format!("`DELETE /v1/models/{{id}}` is not available for `{model}`: {why}."),
            code: "unsupported_endpoint",
        }
        .to_response();
    };
    let rest = format!("/models/{}", encode_segment(model));
    // A DELETE has no body worth the name.
    forward(&gw, &upstream, &rest, 64 * 1024, req, "model-delete").await
}

/// Percent-encodes one path segment (a model id may contain `/`).
fn encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Forwards `req` to `up` at `rest` (path after `/v1`), relaying the answer as it comes.
async fn forward(
    gw: &Gateway,
    up: &Upstream,
    rest: &str,
    max_body: u64,
    req: Request<Body>,
    rule: &'static str,
) -> Response {
    let api = api_for(req.uri().path(), req.headers());
    let mut ctx = crate::pipeline::start_ctx(gw, Operation::Passthrough, &req);
    ctx.path = Some(Arc::from(req.uri().path()));
    ctx.route_rule = Some(rule);
    let mut resp = match open(gw, &mut ctx, up, rest, max_body, req).await {
        Ok(resp) => resp,
        Err(err) => {
            let mut resp = err.to_response_for(api);
            ctx.log(resp.status().as_u16(), Outcome::Failed, Some(&err));
            resp.extensions_mut().insert(Logged);
            return resp;
        }
    };
    resp.extensions_mut().insert(Logged);
    resp
}

async fn open(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    up: &Upstream,
    rest: &str,
    max_body: u64,
    req: Request<Body>,
) -> Result<Response, GatewayError> {
    let (parts, body) = req.into_parts();
    crate::pipeline::authenticate(gw, ctx, &parts.headers)?;
    // The body is streamed through, never read here: attribution comes from the headers.
    crate::pipeline::admit_side(gw, ctx, &parts.headers, None, b"").await?;
    ctx.provider = Some(Arc::clone(&up.provider));
    let limit = usize::try_from(max_body).unwrap_or(usize::MAX);
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_body) {
        return Err(GatewayError::BodyTooLarge { limit });
    }
    let uri = up.url(rest, parts.uri.query())?;
    let mut headers = HeaderMap::with_capacity(parts.headers.len() + up.headers.len());
    for (name, value) in &parts.headers {
        if !DROPPED_REQUEST_HEADERS.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    for (name, value) in &up.headers {
        // The client's protocol headers (`anthropic-version`, `anthropic-beta`, `OpenAI-Beta`)
        // win over the provider's defaults; credentials were removed above, so the provider's
        // always apply.
        if name == "anthropic-version" && headers.contains_key(name) {
            continue;
        }
        headers.insert(name.clone(), value.clone());
    }
    let (upload, overflow) = LimitedUpload::new(body, max_body);
    let mut request = Request::new(OutBody::Stream(upload.boxed_unsync()));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;

    let t: Timeouts = gw.timeouts;
    let name = Arc::clone(&up.provider);
    let sent_at = tokio::time::Instant::now();
    let deadline = sent_at + t.total;
    let sent = gw.client.send(request, Some(t.connect));
    let response = match crate::pipeline::await_head(sent, &name, &t, sent_at).await {
        Ok(r) => r,
        // The upload was cut at the limit: that, not the broken exchange, is the answer.
        Err(_) if overflow.tripped() => return Err(GatewayError::BodyTooLarge { limit }),
        Err(e) => return Err(e),
    };
    let (up_parts, incoming) = response.into_parts();
    if matches!(
        up_parts.status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    ) {
        // The provider rejected the gateway's credentials; its body may echo the key.
        return Err(crate::providers::http_failure(
            &name,
            up_parts.status,
            &up_parts.headers,
            None,
            None,
        ));
    }
    ctx.ttft_ms = Some(ctx.elapsed_ms());
    let ctx_rule = ctx.route_rule;
    let mut resp = Response::new(Body::new(Relay::new(
        incoming,
        ctx.detach(),
        up_parts.status.as_u16(),
        name,
        t.stream_idle,
        deadline,
    )));
    *resp.status_mut() = up_parts.status;
    let h = resp.headers_mut();
    for (name, value) in &up_parts.headers {
        if !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()) {
            h.append(name.clone(), value.clone());
        }
    }
    if let Some(v) = up_parts
        .headers
        .get("x-request-id")
        .or_else(|| up_parts.headers.get("request-id"))
    {
        h.insert("x-switchyard-upstream-request-id", v.clone());
    }
    if let Ok(v) = HeaderValue::from_str(&up.provider) {
        h.insert("x-switchyard-provider", v);
    }
    if let Some(rule) = ctx_rule {
        h.insert("x-switchyard-route", HeaderValue::from_static(rule));
    }
    Ok(resp)
}

#[cfg(test)]
mod tests;
