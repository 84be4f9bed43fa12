//! The record kept for every request, built from the pipeline's [`RequestCtx`] when the
//! request's one log line is written.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::policy::{truncate_utf8, BodyPolicy};
use crate::error::{GatewayError, UpstreamErrorKind};
use crate::pipeline::ctx::{Outcome, RequestCtx};
use crate::providers::ClientApi;

/// One request, successful or not, as stored.
///
/// The names the request's context already holds shared (the request id, the key's name, the
/// provider, the model) are shared here too, and fixed names are borrowed: a record is built
/// on a request thread and freed on the writer's, and every string copied into it was an
/// allocation there and a cross-thread free here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Unique id of this record (UUID v7), the store's key and the spill dedup key: the request
    /// id when the gateway generated it, a new id otherwise (clients may send the same
    /// `x-request-id` twice, and a classifier judge's call shares its client request's id).
    pub id: Arc<str>,
    /// The request id (`x-request-id`, the client's or a generated one).
    pub request_id: Arc<str>,
    /// When the gateway started handling it, Unix milliseconds.
    pub started_at: i64,
    /// `anonymous`, `master` or `virtual_key`.
    pub principal: Cow<'static, str>,
    /// The virtual key's name, when one was used (never the key).
    pub key_name: Option<Arc<str>>,
    /// Team the request is attributed to.
    pub team: Option<String>,
    /// End user the request is attributed to.
    pub user: Option<String>,
    /// Free-form tags.
    pub tags: Vec<String>,
    /// `openai` or `anthropic`: the API the client spoke.
    pub client_api: Cow<'static, str>,
    /// `chat.completions`, `embeddings` or `messages`.
    pub operation: Cow<'static, str>,
    /// The model name the client asked for (an alias or `provider/model`).
    pub alias: Option<String>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Provider of the deployment that answered (or was last tried).
    pub provider: Option<Arc<str>>,
    /// Upstream model of that deployment.
    pub model: Option<Arc<str>>,
    /// `provider/model` that answered, when one did.
    pub deployment: Option<String>,
    /// The routing rule that chose it.
    pub route: Option<Cow<'static, str>>,
    /// Every deployment considered, in order: failed, skipped and the one that answered.
    pub attempts: Vec<Attempt>,
    /// HTTP status sent to the client (499 when the client went away first).
    pub status: u16,
    /// `completed`, `failed`, `upstream_error` (a stream that broke) or `client_cancelled`.
    pub outcome: Cow<'static, str>,
    /// The error's kind, when the request failed.
    pub error_kind: Option<Cow<'static, str>>,
    /// The error's message, without any body content.
    pub error_message: Option<String>,
    /// Prompt tokens (cached ones included), when the provider reported usage.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Prompt tokens served from the provider's cache.
    pub cached_tokens: Option<u64>,
    /// Cost in nano-dollars (1e-9 USD), integer so sums are exact; `None` when unknown.
    pub cost_nanos: Option<i64>,
    /// Whether `cost_nanos` is known (priced model with reported usage).
    pub cost_known: bool,
    /// Total time in the gateway, milliseconds.
    pub latency_ms: f64,
    /// Time until the first byte of the answer was ready, milliseconds.
    pub ttft_ms: Option<f64>,
    /// What the response cache did (`hit`, `miss`, ...), for the cache feature.
    pub cache_outcome: Option<String>,
    /// What the guardrails did (`passed`, `blocked:<rule>`, ...), for the guardrail feature.
    pub guardrail_outcome: Option<String>,
    /// The body policy applied (`none`, `full`, `redacted`, `truncate:N`).
    pub body_policy: Cow<'static, str>,
    /// The request body, as the policy allows.
    pub request_body: Option<String>,
    /// The response body (for streams: the assembled text), as the policy allows.
    pub response_body: Option<String>,
    /// Whether a body was cut by the policy or the size cap.
    pub bodies_truncated: bool,
    /// Whether the token counts (and so the cost) are the gateway's estimate: the provider
    /// reported no usage (a stream without `stream_options.include_usage`).
    #[serde(default)]
    pub usage_estimated: bool,
}

/// One deployment a request went to or passed over.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// `provider/model` (or `fallback:<alias>`, `degraded` for those steps).
    pub deployment: String,
    /// Whether a request was actually sent.
    pub sent: bool,
    /// The upstream's HTTP status, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it did not serve (error kind or skip reason); `None` for the one that answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    /// From sending to the failure (or, for the one that answered, to the end), milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
}

impl Attempt {
    /// The attempts as the JSON array stored in the `attempts` column: the same text
    /// `serde_json` gives (members in field order, absent options left out, a non-finite
    /// latency as `null`), written directly. Serde's generic path cost the request log's
    /// writer more than a thousand instructions per record, for a list that is almost always
    /// one attempt.
    pub fn list_json(attempts: &[Attempt]) -> String {
        let mut out = String::with_capacity(16 + attempts.len() * 96);
        out.push('[');
        for (i, a) in attempts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"deployment\":");
            push_json_str(&mut out, &a.deployment);
            out.push_str(if a.sent {
                ",\"sent\":true"
            } else {
                ",\"sent\":false"
            });
            if let Some(status) = a.status {
                out.push_str(",\"status\":");
                crate::push_decimal(&mut out, u64::from(status));
            }
            if let Some(kind) = &a.error_kind {
                out.push_str(",\"error_kind\":");
                push_json_str(&mut out, kind);
            }
            if let Some(ms) = a.latency_ms {
                out.push_str(",\"latency_ms\":");
                // serde_json's own number text (and `null` for a NaN or an infinity).
                out.push_str(&serde_json::Value::from(ms).to_string());
            }
            out.push('}');
        }
        out.push(']');
        out
    }
}

/// Appends `s` as a JSON string literal: as it is when nothing in it needs escaping (names of
/// deployments and error kinds), through `serde_json` otherwise.
fn push_json_str(out: &mut String, s: &str) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&switchyard_types::json::encode_string(s));
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// The bodies a request's record may keep, gathered along the way. Empty (and free) unless the
/// request log is on and the alias's policy keeps bodies.
#[derive(Debug, Default, Clone)]
pub struct Bodies {
    /// The policy in force (the alias's once the model is known, the default before).
    pub policy: BodyPolicy,
    /// The most bytes kept of a body.
    pub cap: usize,
    /// The client's request body.
    pub request: Option<Bytes>,
    /// A complete (non-streamed) response body.
    pub response: Option<Bytes>,
    /// The assembled text of a streamed answer, at most `cap` bytes.
    pub stream_text: Option<String>,
    /// Whether the streamed text went past `cap`.
    pub stream_cut: bool,
}

impl Bodies {
    /// Whether a streamed answer's text should be gathered.
    pub fn wants_response(&self) -> bool {
        self.policy.keeps()
    }

    /// Adds the text of the client-dialect stream bytes `written` to the assembled answer,
    /// up to the cap.
    pub fn note_stream(&mut self, api: ClientApi, written: &[u8]) {
        let limit = self.policy.limit(self.cap);
        let text = self.stream_text.get_or_insert_with(String::new);
        if text.len() >= limit {
            self.stream_cut |= !written.is_empty();
            return;
        }
        for line in written.split(|b| *b == b'\n') {
            let Some(data) = line
                .strip_prefix(b"data: ")
                .or_else(|| line.strip_prefix(b"data:"))
            else {
                continue;
            };
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
                continue;
            };
            let piece = match api {
                ClientApi::OpenAi => v["choices"][0]["delta"]["content"].as_str(),
                ClientApi::Anthropic => v["delta"]["text"].as_str(),
            };
            if let Some(piece) = piece {
                let room = limit.saturating_sub(text.len());
                let (kept, cut) = truncate_utf8(piece, room);
                text.push_str(kept);
                if cut {
                    self.stream_cut = true;
                    return;
                }
            }
        }
    }
}

/// The message of an error, safe for logs and the store: never a fragment of a request or
/// response body (parser messages quote the offending value; upstream parse errors quote the
/// provider's body), never a credential.
pub fn safe_error_message(err: &GatewayError) -> String {
    match err {
        GatewayError::InvalidJson(_) => "the request body is not valid JSON".into(),
        GatewayError::InvalidField { param, .. } if param.is_empty() => {
            "invalid request body".into()
        }
        GatewayError::InvalidField { param, .. } => format!("invalid value for `{param}`"),
        GatewayError::Upstream(u) => match &u.kind {
            UpstreamErrorKind::Malformed(_) => {
                format!("upstream `{}`: returned a malformed response", u.provider)
            }
            _ => err.to_string(),
        },
        _ => err.to_string(),
    }
}

impl Record {
    /// Builds the record of a finished request. `cost_nanos` is the request's price when known.
    pub fn from_ctx(
        ctx: &RequestCtx,
        status: u16,
        outcome: Outcome,
        error: Option<&GatewayError>,
    ) -> Self {
        let latency_ms = ctx.elapsed_ms();
        let started_at = crate::store::unix_millis() - latency_ms.round() as i64;
        let degraded = ctx.abandoned.iter().any(|a| a.deployment == "degraded");
        // The deployment answered when its answer (or the start of its stream) was delivered.
        let answered = !degraded
            && match outcome {
                Outcome::Completed | Outcome::StreamError => ctx.provider.is_some(),
                Outcome::ClientCancelled => ctx.ttft_ms.is_some(),
                Outcome::Failed => false,
            };
        let mut attempts: Vec<Attempt> = ctx
            .abandoned
            .iter()
            .map(|a| Attempt {
                deployment: a.deployment.clone(),
                sent: a.attempted,
                status: a.status,
                error_kind: Some(a.reason.to_owned()),
                latency_ms: a.latency_ms,
            })
            .collect();
        let current = ctx.deployment_name();
        let attempt_ms = ctx
            .attempt_started
            .map(|t| t.elapsed().as_secs_f64() * 1000.0);
        let in_flight = outcome == Outcome::ClientCancelled && ctx.attempt_started.is_some();
        if let Some(d) = current.as_ref().filter(|_| answered || in_flight) {
            attempts.push(Attempt {
                deployment: d.clone(),
                sent: true,
                // A stream's status line went out as 200 whatever happened after.
                status: answered.then_some(if ctx.stream || status == 499 {
                    200
                } else {
                    status
                }),
                error_kind: if answered {
                    error.map(|e| e.kind().as_str().to_owned())
                } else {
                    Some("client_cancelled".to_owned())
                },
                latency_ms: attempt_ms,
            });
        }
        let deployment = current.filter(|_| answered);
        let usage = ctx.usage;
        let (request_body, req_cut) = ctx.bodies.request.as_deref().map_or((None, false), |b| {
            ctx.bodies.policy.apply(b, ctx.bodies.cap)
        });
        let (response_body, resp_cut) = match (&ctx.bodies.response, &ctx.bodies.stream_text) {
            (Some(b), _) => ctx.bodies.policy.apply(b, ctx.bodies.cap),
            (None, Some(text)) => {
                let (t, cut) = ctx.bodies.policy.apply(text.as_bytes(), ctx.bodies.cap);
                (t, cut || ctx.bodies.stream_cut)
            }
            (None, None) => (None, false),
        };
        let a = &ctx.attribution;
        let team = a.team.as_deref().map(str::to_owned);
        let user = a.user.as_deref().map(str::to_owned);
        let tags: Vec<String> = a.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        // Nano-dollars, an integer, so sums over many records stay exact.
        let cost_nanos: Option<i64> = ctx.cost_usd().map(crate::budgets::usd_to_nanos);
        Self {
            // A generated request id is unique, and is the record's id too; otherwise a new id,
            // time-ordered like a UUIDv7, without a syscall for randomness per record.
            id: if ctx.request_id_unique {
                Arc::clone(&ctx.request_id)
            } else {
                crate::server::request_id::new_id().into()
            },
            request_id: Arc::clone(&ctx.request_id),
            started_at,
            principal: Cow::Borrowed(ctx.principal),
            key_name: ctx.key_name.clone(),
            team,
            user,
            tags,
            client_api: Cow::Borrowed(match ctx.op.client_api() {
                ClientApi::OpenAi => "openai",
                ClientApi::Anthropic => "anthropic",
            }),
            operation: Cow::Borrowed(ctx.op.as_str()),
            alias: ctx.client_model.clone(),
            stream: ctx.stream,
            provider: ctx.provider.clone(),
            model: ctx.upstream_model.clone(),
            deployment,
            route: ctx.route_rule.map(Cow::Borrowed),
            attempts,
            status,
            outcome: Cow::Borrowed(outcome.as_str()),
            error_kind: error.map(|e| Cow::Borrowed(e.kind().as_str())),
            error_message: error.map(safe_error_message),
            prompt_tokens: usage.map(|u| u.prompt_tokens),
            completion_tokens: usage.map(|u| u.completion_tokens),
            cached_tokens: usage.map(|u| u.cached_tokens),
            cost_known: cost_nanos.is_some(),
            cost_nanos,
            latency_ms,
            ttft_ms: ctx.ttft_ms,
            cache_outcome: ctx.cache.as_ref().map(|c| c.outcome.as_str().to_owned()),
            guardrail_outcome: ctx.guardrail_outcome(),
            body_policy: ctx.bodies.policy.name(),
            request_body,
            response_body,
            bodies_truncated: req_cut || resp_cut,
            usage_estimated: ctx.usage_estimated,
        }
    }
}
