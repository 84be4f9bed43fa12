//! The Responses API's model-addressed sub-resources: `POST /v1/responses/input_tokens` (how
//! many input tokens a request would use) and `POST /v1/responses/compact` (a conversation
//! compacted by the model). Unlike the stored-response endpoints they name no response but a
//! `model`, so they are routed by it like a create: to an OpenAI-type deployment they go
//! byte-faithfully (only the model replaced). On a translated deployment, `input_tokens` is
//! answered by the provider's own counter where it has one (Anthropic's `count_tokens`,
//! Gemini's `countTokens`, given the request translated as a create would be, the gateway-kept conversation of a
//! `previous_response_id` included); everything else gets a 400 naming the endpoint and the
//! deployment rather than a made-up answer.

use std::sync::Arc;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderValue, Method, Request};
use http_body_util::Full;
use serde_json::Value;
use switchyard_types::json::replace_top_level_string;
use tokio::time::Instant;

use super::ctx::{Outcome, RequestCtx};
use super::{Gateway, Logged};
use crate::config::Deployment;
use crate::error::GatewayError;
use crate::providers::{Exchange, Operation, Provider, UpstreamRequest};

/// Which sub-resource was called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    /// `POST /v1/responses/input_tokens`.
    InputTokens,
    /// `POST /v1/responses/compact`.
    Compact,
}

impl Sub {
    /// The path under `/v1/responses/`.
    fn tail(self) -> &'static str {
        match self {
            Self::InputTokens => "input_tokens",
            Self::Compact => "compact",
        }
    }

    /// What the endpoint does, for error messages.
    fn feature(self) -> &'static str {
        match self {
            Self::InputTokens => "input token counting",
            Self::Compact => "conversation compaction",
        }
    }
}

/// Serves a sub-resource; always answers, and logs once.
pub async fn sub_resource(gw: Arc<Gateway>, which: Sub, req: Request<Body>) -> Response {
    let mut ctx = super::start_ctx(&gw, Operation::ResponsesResource, &req);
    let mut resp = match serve(&gw, &mut ctx, which, req).await {
        Ok(resp) => {
            let outcome = if resp.status().is_success() {
                Outcome::Completed
            } else {
                Outcome::Failed
            };
            ctx.log(resp.status().as_u16(), outcome, None);
            resp
        }
        Err(err) => {
            let resp = err.to_response();
            ctx.log(resp.status().as_u16(), Outcome::Failed, Some(&err));
            resp
        }
    };
    resp.extensions_mut().insert(Logged);
    resp
}

async fn serve(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    which: Sub,
    req: Request<Body>,
) -> Result<Response, GatewayError> {
    let (parts, body) = req.into_parts();
    super::authenticate(gw, ctx, &parts.headers)?;
    let body = super::read_body(body, &parts.headers, gw.max_body_size).await?;
    let parsed: Value =
        serde_json::from_slice(&body).map_err(|e| GatewayError::InvalidJson(e.to_string()))?;
    let Some(obj) = parsed.as_object() else {
        return Err(GatewayError::InvalidJson(
            "the request body must be a JSON object".into(),
        ));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) => m.clone(),
        Some(_) => {
            return Err(GatewayError::InvalidField {
                param: "model".into(),
                message: "`model` must be a string".into(),
            })
        }
        None => {
            return Err(GatewayError::InvalidField {
                param: "model".into(),
                message: format!(
                    "`model` is required: the gateway routes `POST /v1/responses/{}` by it",
                    which.tail()
                ),
            })
        }
    };
    ctx.client_model = Some(model.clone());
    super::admit_side(gw, ctx, &parts.headers, Some(&model), &body).await?;
    let route = gw.router.route(&model)?;
    ctx.route_rule = Some(route.rule);
    let d = route
        .candidates
        .first()
        .ok_or_else(|| GatewayError::Internal(format!("no deployment serves `{model}`")))?;
    ctx.provider = Some(Arc::clone(&d.provider.name));
    ctx.upstream_model = Some(Arc::clone(&d.model));
    ctx.provider_kind = Some(d.provider.kind.genai_name());
    let provider =
        gw.providers.get(&d.provider.name).cloned().ok_or_else(|| {
            GatewayError::Internal(format!("no adapter for `{}`", d.provider.name))
        })?;
    let (mut request, mut reply) = if provider.serves_responses() {
        let body = replace_top_level_string(&body, "model", &d.model)
            .ok_or_else(|| GatewayError::Internal("validated body lost its model".into()))?;
        let up = provider.responses_resource(&Method::POST, which.tail())?;
        let mut request = Request::builder()
            .method(up.method)
            .uri(up.uri)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        *request.headers_mut() = up.headers;
        (request, None)
    } else {
        let counted = match which {
            Sub::InputTokens => {
                translated_count(gw, ctx, &provider, d, &parts.headers, &body).await?
            }
            Sub::Compact => None,
        };
        let Some(up) = counted else {
            return Err(not_offered(which, d, &model));
        };
        let mut request = Request::post(up.uri)
            .body(Full::new(up.body))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        *request.headers_mut() = up.headers;
        (request, Some(up.reply))
    };
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let t = d.timeouts;
    let name = Arc::clone(provider.name());
    let sent_at = Instant::now();
    let deadline = sent_at + t.total;
    let sent = gw.client.request_within(request, Some(t.connect));
    let response = super::await_head(sent, &name, &t, sent_at).await?;
    let (head, incoming) = response.into_parts();
    let ok = head.status.is_success();
    let limit = if ok {
        super::MAX_RESPONSE_BODY
    } else {
        super::MAX_ERROR_BODY
    };
    let raw = super::read_upstream(incoming, limit, deadline, &name, t.total, !ok).await?;
    if !ok {
        return Err(provider.classify_error(head.status, &head.headers, &raw));
    }
    let raw = match &mut reply {
        // The provider's own count, as OpenAI's object.
        Some(reply) => reply.body(&raw)?.body,
        None => {
            crate::providers::check_json(&name, &raw, "response")?;
            raw
        }
    };
    let mut resp = Response::new(Body::from(raw));
    *resp.status_mut() = head.status;
    let content_type = head
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    let serving = super::serving_headers(ctx, &head.headers);
    resp.headers_mut().extend(serving);
    resp.headers_mut().insert(CONTENT_TYPE, content_type);
    Ok(resp)
}

/// The 400 for a sub-resource the deployment cannot answer.
fn not_offered(which: Sub, d: &Deployment, model: &str) -> GatewayError {
    let offered_by = match which {
        Sub::InputTokens => "OpenAI-type, Anthropic and Gemini deployments",
        Sub::Compact => "only OpenAI-type deployments",
    };
    GatewayError::Unsupported {
        param: "model".into(),
        message: format!(
            "`POST /v1/responses/{}` ({}) is not offered by the deployment `{}/{}` (provider \
             type `{}`) that serves the model `{model}`: the gateway translates the Responses \
             API for it and cannot express this endpoint; {offered_by} offer it.",
            which.tail(),
            which.feature(),
            d.provider.name,
            d.model,
            d.provider.kind.genai_name(),
        ),
        code: "unsupported_endpoint",
    }
}

/// The provider's own token count for a translated deployment, when it has one: the request
/// as a create on `d` would send it, after the conversation the gateway keeps for its
/// `previous_response_id` (a previous response kept by another provider cannot be counted
/// here: the error says where it is).
async fn translated_count(
    gw: &Gateway,
    ctx: &RequestCtx,
    provider: &Arc<dyn Provider>,
    d: &Deployment,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Result<Option<UpstreamRequest>, GatewayError> {
    let client_model: Arc<str> = Arc::from(ctx.client_model.as_deref().unwrap_or_default());
    let continued = switchyard_types::json::top_level_value(body, "previous_response_id")
        .and_then(|span| body.get(span))
        .is_some_and(|v| v != b"null");
    let body = if continued {
        let (turn, pinned) = super::responses::prepare(gw, ctx, body).await?;
        if let Some(keeper) = pinned {
            super::responses::pin(&mut vec![d.clone()], &keeper, &client_model)?;
        }
        super::responses::attempt_body(Some(&turn), body, false)?.into_owned()
    } else {
        body.to_vec()
    };
    let x = Exchange {
        op: Operation::Responses,
        body: &body,
        headers,
        model: &d.model,
        client_model: &client_model,
    };
    provider.responses_input_tokens(&x).transpose()
}
