//! Per-request state carried from stage to stage, and the one log line written at the end.

use std::sync::Arc;

use switchyard_types::openai::Usage;
use tokio::time::Instant;

use crate::attribution::Attribution;
use crate::config::Deployment;
use crate::error::{FailureKind, GatewayError};
use crate::providers::Operation;
use crate::telemetry::metrics::{GuardrailTrigger, Observation, RequestMetrics};
use crate::telemetry::otlp::{Finished, RequestTrace};

/// What the pipeline learned about a request so far.
#[derive(Debug)]
pub struct RequestCtx {
    /// The request id (client-supplied or generated).
    pub request_id: Arc<str>,
    /// Whether `request_id` was generated for this request and this context is the request's
    /// own (set only where a request enters the pipeline): its record is then keyed by the
    /// request id, which saves the store an index entry per record (see migration 7).
    pub request_id_unique: bool,
    /// The API operation.
    pub op: Operation,
    /// When the gateway started handling it.
    pub started: Instant,
    /// Who called (key name, never the key).
    pub principal: &'static str,
    /// Name of the virtual key, when one was used.
    pub key_name: Option<Arc<str>>,
    /// The model name the client sent.
    pub client_model: Option<String>,
    /// The serving provider.
    pub provider: Option<Arc<str>>,
    /// The upstream model.
    pub upstream_model: Option<Arc<str>>,
    /// The serving provider's GenAI name (`openai`, `aws.bedrock`, ...), for traces.
    pub provider_kind: Option<&'static str>,
    /// Routing rule that chose the deployment.
    pub route_rule: Option<&'static str>,
    /// The full routing explanation (`rule:vip>alias:latency`), when richer than `route_rule`;
    /// `x-switchyard-route` and the log line show it.
    pub route_explain: Option<Arc<str>>,
    /// Who and what the request is for (team, user, tags).
    pub attribution: Attribution,
    /// The price of the deployment that served (or last tried) the request, when known.
    pub price: Option<crate::pricing::Price>,
    /// How the classifier labelled the prompt, when the alias routes by label.
    pub classifier: Option<ClassifierNote>,
    /// The request in flight at the deployment being tried (counts down when dropped).
    pub(crate) inflight: Option<crate::routing::stats::InFlight>,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// Time until the first byte of the answer was ready for the client.
    pub ttft_ms: Option<f64>,
    /// Usage reported by the provider.
    pub usage: Option<Usage>,
    /// Deployments that did not serve the request, in order, and why.
    pub abandoned: Vec<Abandoned>,
    /// How to continue a stream that breaks, for aliases with `stream_resume`.
    pub resume: Option<Arc<super::stream::ResumePlan>>,
    /// Where the finished request is counted for `/metrics` (set by the pipeline; contexts
    /// built outside it, e.g. in unit tests, count nowhere).
    pub metrics: Option<Arc<RequestMetrics>>,
    /// The request's trace, when traces are exported and the client's trace is sampled.
    pub trace: Option<RequestTrace>,
    /// When the current upstream attempt was sent (for per-attempt latency in the record).
    pub attempt_started: Option<Instant>,
    /// The bodies the request log may keep (empty unless the alias's policy keeps them).
    pub bodies: crate::reqlog::Bodies,
    /// The request log the record goes to, when it is on.
    pub reqlog: Option<Arc<crate::reqlog::ReqLog>>,
    /// The request path, for pass-through requests (whose operation says little).
    pub path: Option<Arc<str>>,
    /// A Responses API request's state (tenant, input items, replayed conversation).
    pub responses: Option<Arc<super::responses::Turn>>,
    /// A chat completion to record as stored (`store: true`), for its tenant.
    pub stored_chat: Option<Arc<super::stored_chat::Keep>>,
    /// The store record of the virtual key that called, when it is a store key.
    pub virtual_key: Option<Arc<crate::keys::KeyRecord>>,
    /// The rate-limit state to report in `x-ratelimit-*` headers.
    pub rate_info: Option<crate::limits::RateInfo>,
    /// The request's rate-limit admission, settled with its real usage when it is logged.
    pub admission: Option<crate::limits::Admission>,
    /// The prompt token estimate made at admission (routing's), for usage the provider does
    /// not report.
    pub prompt_estimate: Option<u64>,
    /// Whether `usage` is the gateway's estimate rather than the provider's report.
    pub usage_estimated: bool,
    /// The cost reserved on the request's budgets, settled when the request is logged. Shared
    /// with the raced attempts of a hedged request, so whichever context logs settles it.
    pub budget: Option<crate::budgets::SharedHold>,
    /// The cheaper alias a budget's soft cap sent the request to, if one did.
    pub budget_downgrade: Option<Arc<str>>,
    /// What the response cache did, when it applies to the request; a complete answer to keep
    /// rides here from the attempt that made it to where the request ends.
    pub cache: Option<crate::cache::Note>,
    /// The guardrail rules that fired, when any rule applies to the request (empty: it passed).
    pub guardrails: Option<Vec<GuardrailTrigger>>,
    /// Whether the log line was written; a context dropped without one logs itself as
    /// cancelled, so no request ever goes unrecorded.
    logged: bool,
}

/// The classifier's verdict on a request, for the log line.
#[derive(Debug, Clone)]
pub struct ClassifierNote {
    /// The label used.
    pub label: &'static str,
    /// Who labelled: `heuristic`, `judge`, `cache` or `default` (the judge failed).
    pub by: &'static str,
    /// What the judge's call cost, USD (recorded apart from the request's own cost).
    pub cost_usd: Option<f64>,
}

/// A deployment that did not serve a request.
#[derive(Debug, Clone)]
pub struct Abandoned {
    /// `provider/model`.
    pub deployment: String,
    /// The error kind of the failed attempt, or why it was not (re)tried.
    pub reason: &'static str,
    /// Whether a request was actually sent.
    pub attempted: bool,
    /// The upstream's HTTP status, when it answered with one.
    pub status: Option<u16>,
    /// Milliseconds from sending the attempt to its failure.
    pub latency_ms: Option<f64>,
}

/// How a request ended, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A complete answer was delivered.
    Completed,
    /// The request failed before any answer byte was sent.
    Failed,
    /// A stream broke after bytes were sent; an error event closed it.
    StreamError,
    /// The client went away before the answer finished; the upstream call was cancelled.
    ClientCancelled,
}

impl Outcome {
    /// Stable snake_case name (log lines, metrics, the request log).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::StreamError => "upstream_error",
            Self::ClientCancelled => "client_cancelled",
        }
    }
}

impl RequestCtx {
    /// Starts the context for a request.
    pub fn new(request_id: Arc<str>, op: Operation) -> Self {
        Self {
            request_id,
            request_id_unique: false,
            op,
            started: Instant::now(),
            principal: "anonymous",
            key_name: None,
            client_model: None,
            provider: None,
            upstream_model: None,
            provider_kind: None,
            route_rule: None,
            route_explain: None,
            attribution: Attribution::default(),
            price: None,
            classifier: None,
            inflight: None,
            stream: false,
            ttft_ms: None,
            usage: None,
            abandoned: Vec::new(),
            resume: None,
            metrics: None,
            trace: None,
            attempt_started: None,
            bodies: crate::reqlog::Bodies::default(),
            reqlog: None,
            path: None,
            responses: None,
            stored_chat: None,
            virtual_key: None,
            rate_info: None,
            admission: None,
            prompt_estimate: None,
            usage_estimated: false,
            budget: None,
            budget_downgrade: None,
            cache: None,
            guardrails: None,
            logged: false,
        }
    }

    /// Moves this context out (to a streaming body that logs when it ends), leaving an inert
    /// placeholder that will not log.
    pub fn detach(&mut self) -> Self {
        let mut placeholder = Self::new(Arc::clone(&self.request_id), self.op);
        placeholder.logged = true;
        placeholder.budget_downgrade = self.budget_downgrade.clone();
        // The response headers say what the cache did.
        placeholder.cache = self.cache.clone();
        let mut real = std::mem::replace(self, placeholder);
        // A raced attempt's context (see `fork`) becomes the real one once it streams.
        real.logged = false;
        // The response headers are stamped from the context left behind.
        self.rate_info = real.rate_info.clone();
        real
    }

    /// A copy for one of two raced attempts (hedging). It never logs by itself: the winner's is
    /// adopted by the request (see [`RequestCtx::adopt`]), the loser's is dropped silently.
    pub fn fork(&self) -> Self {
        let mut c = Self::new(Arc::clone(&self.request_id), self.op);
        c.started = self.started;
        c.principal = self.principal;
        c.key_name = self.key_name.clone();
        c.client_model = self.client_model.clone();
        c.route_rule = self.route_rule;
        c.route_explain = self.route_explain.clone();
        c.attribution = self.attribution.clone();
        c.classifier = self.classifier.clone();
        c.stream = self.stream;
        c.abandoned = self.abandoned.clone();
        c.resume = self.resume.clone();
        c.metrics = self.metrics.clone();
        c.trace = self.trace.clone();
        c.bodies = self.bodies.clone();
        c.reqlog = self.reqlog.clone();
        c.responses = self.responses.clone();
        c.stored_chat = self.stored_chat.clone();
        c.virtual_key = self.virtual_key.clone();
        c.rate_info = self.rate_info.clone();
        c.budget_downgrade = self.budget_downgrade.clone();
        c.prompt_estimate = self.prompt_estimate;
        c.budget = self.budget.clone();
        c.cache = self.cache.clone();
        c.guardrails = self.guardrails.clone();
        c.logged = true;
        c
    }

    /// Takes over the winning attempt's context. When it streamed, its body logs the request
    /// (the adopted context is the inert placeholder); otherwise this context logs as usual.
    pub fn adopt(&mut self, mut winner: RequestCtx, streamed: bool) {
        let abandoned = std::mem::take(&mut self.abandoned);
        winner.logged = streamed;
        if !streamed {
            winner.abandoned = abandoned;
        }
        // The rate-limit admission was made once, for the request: it stays with it.
        winner.admission = self.admission.take();
        let mut old = std::mem::replace(self, winner);
        old.logged = true;
    }

    /// Records a failed attempt at `d` (for the response headers and the log line).
    pub fn note_failure(&mut self, d: &Deployment, err: &GatewayError) {
        let status = match err {
            GatewayError::Upstream(crate::error::UpstreamError {
                kind: crate::error::UpstreamErrorKind::Http { status, .. },
                ..
            }) => Some(status.as_u16()),
            _ => None,
        };
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason: err.kind().as_str(),
            attempted: true,
            status,
            latency_ms: self.attempt_ms(),
        });
    }

    /// Records that the request was answered with the alias's degradation message after `err`.
    pub fn note_degraded(&mut self, err: &GatewayError) {
        self.abandoned.push(Abandoned {
            deployment: "degraded".to_owned(),
            reason: err.kind().as_str(),
            attempted: false,
            status: None,
            latency_ms: None,
        });
    }

    /// Records an attempt at `d` that was sent and then abandoned (e.g. a hedge that lost).
    pub fn note_cancelled(&mut self, d: &Deployment, reason: &'static str) {
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason,
            attempted: true,
            status: None,
            latency_ms: self.attempt_ms(),
        });
    }

    /// Records that `d` was not tried again, and why.
    pub fn note_skip(&mut self, d: &Deployment, reason: &'static str) {
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason,
            attempted: false,
            status: None,
            latency_ms: None,
        });
    }

    /// Records that the request moves on to fallback alias `alias` after a failure of `kind`.
    pub fn note_fallback(&mut self, alias: &str, kind: FailureKind) {
        self.abandoned.push(Abandoned {
            deployment: format!("fallback:{alias}"),
            reason: kind.as_str(),
            attempted: false,
            status: None,
            latency_ms: None,
        });
    }

    /// Upstream attempts made: the failed ones plus the one that served, if any.
    pub fn attempts(&self, served: bool) -> usize {
        self.abandoned.iter().filter(|a| a.attempted).count() + usize::from(served)
    }

    /// The attempts that were sent and failed: (`provider/model`, error kind).
    pub fn failed_attempts(&self) -> Vec<(String, &'static str)> {
        self.abandoned
            .iter()
            .filter(|a| a.attempted)
            .map(|a| (a.deployment.clone(), a.reason))
            .collect()
    }

    /// `provider/model=reason,...` for the abandoned deployments, or `None`.
    pub fn abandoned_summary(&self) -> Option<String> {
        if self.abandoned.is_empty() {
            return None;
        }
        let parts: Vec<String> = self
            .abandoned
            .iter()
            .map(|a| format!("{}={}", a.deployment, a.reason))
            .collect();
        Some(parts.join(","))
    }

    /// Milliseconds since the current attempt was sent.
    fn attempt_ms(&self) -> Option<f64> {
        self.attempt_started
            .map(|t| t.elapsed().as_secs_f64() * 1000.0)
    }

    /// What the request cost in USD: the provider's usage at the serving deployment's price.
    /// `None` when there is no usage or no known price (never counted as free).
    pub fn cost_usd(&self) -> Option<f64> {
        Some(self.price?.cost_of(&self.usage?))
    }

    /// Milliseconds since the request started.
    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// `provider/model` of the serving deployment, once one is chosen: the
    /// `x-switchyard-deployment` header and the record's `deployment`. Concatenated rather than
    /// `format!`ted: the formatter's machinery cost more than the copy, on every request.
    pub fn deployment_name(&self) -> Option<String> {
        let (p, m) = (self.provider.as_deref()?, self.upstream_model.as_deref()?);
        let mut d = String::with_capacity(p.len() + 1 + m.len());
        d.push_str(p);
        d.push('/');
        d.push_str(m);
        Some(d)
    }

    /// What the guardrails did, as the record's `guardrail_outcome`: `passed`, or each rule that
    /// fired as `<stage>:<action>:<rule>`, comma-separated in the order they fired.
    pub fn guardrail_outcome(&self) -> Option<String> {
        let fired = self.guardrails.as_ref()?;
        if fired.is_empty() {
            return Some("passed".to_owned());
        }
        let mut out = String::new();
        for (rule, action, stage) in fired {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(stage);
            out.push(':');
            out.push_str(action);
            out.push(':');
            out.push_str(rule);
        }
        Some(out)
    }

    /// The route as `x-switchyard-route` shows it.
    pub fn route_label(&self) -> Option<&str> {
        self.route_explain.as_deref().or(self.route_rule)
    }

    /// Writes the request's single log line. Called exactly once per request, on every path.
    pub fn log(&mut self, status: u16, outcome: Outcome, error: Option<&GatewayError>) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        if let Some(admission) = self.admission.take() {
            let used = self.usage.map(|u| u.prompt_tokens + u.completion_tokens);
            admission.settle(used, outcome == Outcome::Failed);
        }
        if let Some(note) = self.cache.as_mut() {
            // An answer a budget sent to a cheaper alias is not what the body asked for.
            let ok = outcome == Outcome::Completed && self.budget_downgrade.is_none();
            note.settle(status, ok);
        }
        if let (Some(f), Some(ttft)) = (&self.inflight, self.ttft_ms) {
            // Time to first token of the attempt that served, not of the whole request.
            let since = f.started().saturating_duration_since(self.started);
            let ms = ttft - since.as_secs_f64() * 1000.0;
            f.stats().record_ttft(ms, Instant::now());
        }
        let tags = self.attribution.tags_summary();
        let classifier = self.classifier.as_ref();
        let usage = self.usage.unwrap_or_default();
        let has_usage = self.usage.is_some();
        let error_kind = error.map(|e| e.kind().as_str());
        // Never a body fragment or a secret in the log line (parser errors quote values).
        let error_msg = error.map(crate::reqlog::safe_error_message);
        let abandoned = self.abandoned_summary();
        let cost_usd = self.cost_usd();
        // Priced, served and reported usage: a cost; otherwise the line says it is unknown.
        let cost_known = cost_usd.is_some();
        if let Some(hold) = self.budget.take().and_then(|h| h.lock().take()) {
            hold.settle(cost_usd.map(crate::budgets::usd_to_nanos));
        }
        macro_rules! line {
            ($lvl:ident) => {
                tracing::$lvl!(
                    target: "switchyard::request",
                    request_id = %self.request_id,
                    op = self.op.as_str(),
                    path = self.path.as_deref(),
                    key = self.key_name.as_deref().unwrap_or(self.principal),
                    model = self.client_model.as_deref(),
                    provider = self.provider.as_deref(),
                    upstream_model = self.upstream_model.as_deref(),
                    route = self.route_label(),
                    team = self.attribution.team.as_deref(),
                    user = self.attribution.user.as_deref(),
                    tags = tags.as_deref(),
                    classifier = classifier.map(|c| c.label),
                    classifier_by = classifier.map(|c| c.by),
                    classifier_cost_usd = classifier.and_then(|c| c.cost_usd),
                    abandoned = abandoned.as_deref(),
                    stream = self.stream,
                    status,
                    outcome = outcome.as_str(),
                    error_kind,
                    error = error_msg.as_deref(),
                    latency_ms = self.elapsed_ms(),
                    ttft_ms = self.ttft_ms,
                    prompt_tokens = has_usage.then_some(usage.prompt_tokens),
                    completion_tokens = has_usage.then_some(usage.completion_tokens),
                    cost_usd,
                    cost_known,
                    usage_estimated = self.usage_estimated,
                    budget_downgrade = self.budget_downgrade.as_deref(),
                    "request finished"
                )
            };
        }
        match error {
            Some(GatewayError::Internal(_)) => line!(error),
            Some(_) if status >= 500 => line!(warn),
            _ => line!(info),
        }
        if let Some(metrics) = &self.metrics {
            metrics.observe(&Observation {
                alias: self.client_model.as_deref(),
                provider: self.provider.as_deref(),
                model: self.upstream_model.as_deref(),
                outcome: outcome.as_str(),
                error_kind,
                usage: self.usage,
                cost_usd: self.cost_usd(),
                latency_s: self.started.elapsed().as_secs_f64(),
                ttft_s: self.ttft_ms.map(|ms| ms / 1000.0),
                cache: self.cache.as_ref().map(|c| c.outcome.as_str()),
                guardrails: self.guardrails.as_deref().unwrap_or_default(),
            });
        }
        if let Some(trace) = self.trace.take() {
            trace.finish(Finished {
                operation: self.op.genai_name(),
                request_id: &self.request_id,
                request_model: self.client_model.as_deref(),
                response_model: self.upstream_model.as_deref(),
                provider_kind: self.provider_kind,
                status,
                outcome: outcome.as_str(),
                error: error.map(|e| (e.kind().as_str(), e.to_string())),
                tokens: self.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
                stream: self.stream,
                route: self.route_rule,
            });
        }
        // The record goes out with the line, on the same exactly-once path.
        if let Some(reqlog) = &self.reqlog {
            reqlog.submit(crate::reqlog::Record::from_ctx(
                self, status, outcome, error,
            ));
        }
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        // The handler future was dropped mid-request: the client went away (499, as nginx
        // records it).
        self.log(499, Outcome::ClientCancelled, None);
    }
}
