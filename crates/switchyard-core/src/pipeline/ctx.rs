//! Per-request state carried from stage to stage, and the one log line written at the end.

use std::sync::Arc;

use switchyard_types::openai::Usage;
use tokio::time::Instant;

use crate::config::Deployment;
use crate::error::{FailureKind, GatewayError};
use crate::providers::Operation;
use crate::telemetry::metrics::{Observation, RequestMetrics};
use crate::telemetry::otlp::{Finished, RequestTrace};

/// What the pipeline learned about a request so far.
#[derive(Debug)]
pub struct RequestCtx {
    /// The request id (client-supplied or generated).
    pub request_id: Arc<str>,
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
    /// A Responses API request's state (tenant, input items, replayed conversation).
    pub responses: Option<Arc<super::responses::Turn>>,
    /// Whether the log line was written; a context dropped without one logs itself as
    /// cancelled, so no request ever goes unrecorded.
    logged: bool,
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
            op,
            started: Instant::now(),
            principal: "anonymous",
            key_name: None,
            client_model: None,
            provider: None,
            upstream_model: None,
            provider_kind: None,
            route_rule: None,
            stream: false,
            ttft_ms: None,
            usage: None,
            abandoned: Vec::new(),
            resume: None,
            metrics: None,
            trace: None,
            responses: None,
            logged: false,
        }
    }

    /// Moves this context out (to a streaming body that logs when it ends), leaving an inert
    /// placeholder that will not log.
    pub fn detach(&mut self) -> Self {
        let mut placeholder = Self::new(Arc::clone(&self.request_id), self.op);
        placeholder.logged = true;
        let mut real = std::mem::replace(self, placeholder);
        // A raced attempt's context (see `fork`) becomes the real one once it streams.
        real.logged = false;
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
        c.stream = self.stream;
        c.abandoned = self.abandoned.clone();
        c.resume = self.resume.clone();
        c.metrics = self.metrics.clone();
        c.trace = self.trace.clone();
        c.responses = self.responses.clone();
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
        let mut old = std::mem::replace(self, winner);
        old.logged = true;
    }

    /// Records a failed attempt at `d` (for the response headers and the log line).
    pub fn note_failure(&mut self, d: &Deployment, err: &GatewayError) {
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason: err.kind().as_str(),
            attempted: true,
        });
    }

    /// Records that the request was answered with the alias's degradation message after `err`.
    pub fn note_degraded(&mut self, err: &GatewayError) {
        self.abandoned.push(Abandoned {
            deployment: "degraded".to_owned(),
            reason: err.kind().as_str(),
            attempted: false,
        });
    }

    /// Records an attempt at `d` that was sent and then abandoned (e.g. a hedge that lost).
    pub fn note_cancelled(&mut self, d: &Deployment, reason: &'static str) {
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason,
            attempted: true,
        });
    }

    /// Records that `d` was not tried again, and why.
    pub fn note_skip(&mut self, d: &Deployment, reason: &'static str) {
        self.abandoned.push(Abandoned {
            deployment: format!("{}/{}", d.provider.name, d.model),
            reason,
            attempted: false,
        });
    }

    /// Records that the request moves on to fallback alias `alias` after a failure of `kind`.
    pub fn note_fallback(&mut self, alias: &str, kind: FailureKind) {
        self.abandoned.push(Abandoned {
            deployment: format!("fallback:{alias}"),
            reason: kind.as_str(),
            attempted: false,
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

    /// Milliseconds since the request started.
    pub fn elapsed_ms(&self) -> f64 {
        self.started.elapsed().as_secs_f64() * 1000.0
    }

    /// Writes the request's single log line. Called exactly once per request, on every path.
    pub fn log(&mut self, status: u16, outcome: Outcome, error: Option<&GatewayError>) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        let usage = self.usage.unwrap_or_default();
        let has_usage = self.usage.is_some();
        let error_kind = error.map(|e| e.kind().as_str());
        let error_msg = error.map(ToString::to_string);
        let abandoned = self.abandoned_summary();
        macro_rules! line {
            ($lvl:ident) => {
                tracing::$lvl!(
                    target: "switchyard::request",
                    request_id = %self.request_id,
                    op = self.op.as_str(),
                    key = self.key_name.as_deref().unwrap_or(self.principal),
                    model = self.client_model.as_deref(),
                    provider = self.provider.as_deref(),
                    upstream_model = self.upstream_model.as_deref(),
                    route = self.route_rule,
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
                cost_usd: None,
                latency_s: self.started.elapsed().as_secs_f64(),
                ttft_s: self.ttft_ms.map(|ms| ms / 1000.0),
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
    }
}

impl Drop for RequestCtx {
    fn drop(&mut self) {
        // The handler future was dropped mid-request: the client went away (499, as nginx
        // records it).
        self.log(499, Outcome::ClientCancelled, None);
    }
}
