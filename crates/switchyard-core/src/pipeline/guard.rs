//! The guardrail stage: the input check runs after attribution and before anything reads the
//! prompt for its own purposes (token counts, the cache key, routing, the upstream), so a
//! redacted request is redacted everywhere, the request log included; the output check runs
//! on a complete answer before it is cached or relayed. See [`crate::guardrails`].
//!
//! Output rules apply to complete answers only: a stream is relayed as it is made, so its text
//! is never held back for checking.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::header::CONTENT_LENGTH;

use super::ctx::RequestCtx;
use crate::error::GatewayError;
use crate::guardrails::{Guardrails, Stage, Verdict};

/// Checks the request body; returns the body to serve (the same, or with matches redacted).
pub(super) fn input(
    g: &Guardrails,
    ctx: &mut RequestCtx,
    model: &str,
    body: Bytes,
) -> Result<Bytes, GatewayError> {
    if !g.applies(Stage::Input, model) {
        return Ok(body);
    }
    match settle(ctx, Stage::Input, g.check_request(ctx.op, model, &body))? {
        Some(redacted) => {
            if ctx.bodies.request.is_some() {
                ctx.bodies.request = Some(redacted.clone());
            }
            Ok(redacted)
        }
        None => Ok(body),
    }
}

/// Checks a complete answer; returns it as it is, with matches redacted, or the refusal.
pub(super) async fn output(
    g: &Guardrails,
    ctx: &mut RequestCtx,
    model: &str,
    resp: Response,
) -> Result<Response, GatewayError> {
    if !resp.status().is_success() || !g.applies(Stage::Output, model) {
        return Ok(resp);
    }
    let (mut parts, body) = resp.into_parts();
    // A complete answer's body is one buffer already: this takes it back, it reads nothing.
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| GatewayError::Internal(format!("answer body: {e}")))?;
    let verdict = g.check_response(ctx.op, model, &bytes);
    let body = match settle(ctx, Stage::Output, verdict)? {
        Some(redacted) => {
            parts.headers.remove(CONTENT_LENGTH);
            if ctx.bodies.response.is_some() {
                ctx.bodies.response = Some(redacted.clone());
            }
            // The cache keeps what the client received.
            if let Some(fill) = ctx.cache.as_mut().and_then(|n| n.fill.as_mut()) {
                fill.body = redacted.clone();
            }
            redacted
        }
        None => bytes,
    };
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// Notes what fired on the context (record and metrics) and turns a block into the refusal.
/// Returns the rewritten body when rules redacted it.
fn settle(
    ctx: &mut RequestCtx,
    stage: Stage,
    verdict: Verdict,
) -> Result<Option<Bytes>, GatewayError> {
    let fired = ctx.guardrails.get_or_insert_with(Vec::new);
    match verdict {
        Verdict::Pass => Ok(None),
        Verdict::Redacted { body, rules } => {
            fired.extend(rules.into_iter().map(|r| (r, "redact", stage.as_str())));
            Ok(Some(body))
        }
        Verdict::Blocked { rule, what, stage } => {
            let message = match stage {
                Stage::Input => format!(
                    "The request was blocked by the gateway's guardrail `{rule}`: it contains \
                     {what}."
                ),
                Stage::Output => format!(
                    "The answer was blocked by the gateway's guardrail `{rule}`: it contains \
                     {what}."
                ),
            };
            fired.push((rule, "block", stage.as_str()));
            Err(GatewayError::GuardrailBlocked { message })
        }
    }
}
