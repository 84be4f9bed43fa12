//! The HTTP surface: routes, the request-id edge, graceful shutdown.
//!
//! Routes are thin: `/v1/chat/completions`, `/v1/embeddings` (OpenAI's API) and `/v1/messages`
//! (Anthropic's) hand the request to [`crate::pipeline::handle`]; everything else here is local (models list, health, errors).
//! Each route is also served without the `/v1` prefix, because SDK users often set the base URL
//! to the server root.

pub mod error;
mod request_id;

use std::collections::HashMap;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::auth::Authenticator;
use crate::capabilities::CapabilityTable;
use crate::config::{Config, Endpoint};
use crate::error::GatewayError;
use crate::pipeline::{self, Gateway, Logged};
use crate::providers::{self, ClientApi, Operation};
use crate::resilience::Health;
use crate::routing::Router;
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::otlp::Tracer;

/// The request id, stored in request extensions by the edge middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

/// Shared state of the HTTP handlers.
#[derive(Clone)]
struct AppState {
    gw: Arc<Gateway>,
    created: u64,
}

/// A gateway ready to serve: the pipeline state plus the embedded mock, if one was started.
pub struct Prepared {
    gw: Arc<Gateway>,
    shutdown_timeout: Duration,
    mock: Option<tokio::task::JoinHandle<()>>,
}

impl Prepared {
    /// Builds the pipeline from a validated config, starting the built-in mock provider on a
    /// loopback port if any provider uses it.
    pub async fn new(config: Config) -> Result<Self, std::io::Error> {
        let needs_mock = config
            .providers
            .values()
            .any(|p| p.endpoint == Endpoint::EmbeddedMock);
        let mock = if needs_mock {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let addr = listener.local_addr()?;
            // The mock lives as long as the gateway; `Drop for Prepared` aborts it.
            let task = tokio::spawn(async move {
                if let Err(e) =
                    switchyard_mock::serve(listener, switchyard_mock::MockConfig::default()).await
                {
                    tracing::error!(error = %e, "embedded mock provider stopped");
                }
            });
            Some((format!("http://{addr}"), task))
        } else {
            None
        };
        let (mock_url, mock) = mock.unzip();
        let mut adapters = HashMap::new();
        for p in config.providers.values() {
            let adapter = providers::build(p, mock_url.as_deref())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            adapters.insert(Arc::clone(&p.name), adapter);
        }
        let metrics = {
            let deployments: Vec<_> = config
                .models
                .values()
                .flat_map(|a| a.deployments.iter())
                .map(|d| (Arc::clone(&d.provider.name), Arc::clone(&d.model)))
                .collect();
            RequestMetrics::new(
                config.models.keys().map(String::as_str),
                deployments.iter().map(|(p, m)| (&**p, &**m)),
            )
        };
        let gw = Gateway {
            auth: Arc::new(Authenticator::new(config.auth.clone())),
            router: Arc::new(
                Router::new(config.models, config.providers, config.server.timeouts)
                    .with_capabilities(CapabilityTable::new(config.capabilities)),
            ),
            providers: Arc::new(adapters),
            client: crate::http_client::build(config.server.timeouts.connect),
            timeouts: config.server.timeouts,
            max_body_size: config.server.max_body_size,
            health: Arc::new(Health::new(config.resilience)),
            metrics: Arc::new(metrics),
            // In memory until the persistent store lands: lost on restart.
            responses: Arc::new(crate::responses_state::MemoryResponseStore::default()),
            tracer: config
                .telemetry
                .otlp
                .map(|o| Tracer::start(o, config.server.timeouts.connect)),
        };
        Ok(Self {
            gw: Arc::new(gw),
            shutdown_timeout: config.server.shutdown_timeout,
            mock,
        })
    }

    /// Serves on `listener`, on the current runtime, until `shutdown` resolves; then stops
    /// accepting, lets in-flight requests and streams finish for up to
    /// `server.shutdown_timeout`, and returns. Used by tests and embedders.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.spawn_health_checks(rx.clone());
        let server = serve_until(listener, Arc::clone(&self.gw), rx);
        tokio::pin!(server);
        tokio::select! {
            res = &mut server => return res,
            () = shutdown => {}
        }
        tracing::info!(deadline = ?self.shutdown_timeout, "shutting down: no new connections, draining in-flight requests");
        let _ = tx.send(true);
        let drained = tokio::time::timeout(self.shutdown_timeout, server).await;
        self.flush().await;
        finish_drain(drained, self.shutdown_timeout)
    }

    /// Sends what the exporters still hold, after the last request finished.
    async fn flush(&self) {
        if let Some(t) = &self.gw.tracer {
            t.flush(Duration::from_secs(5)).await;
        }
    }

    /// Starts the active health checks on the current runtime, when configured; they stop with
    /// `stop`.
    fn spawn_health_checks(&self, stop: tokio::sync::watch::Receiver<bool>) {
        if let Some(cfg) = self.gw.health.config().health_checks {
            let gw = Arc::new(self.gw.for_worker());
            tokio::spawn(pipeline::probe::run(gw, cfg, stop));
        }
    }

    /// Serves with one single-threaded runtime per listener, each on its own thread with its
    /// own upstream connection pool (the nginx worker model): a request is accepted, proxied and
    /// answered on one thread, so no cross-thread wake-ups sit on the hot path. The listeners
    /// share one address through `SO_REUSEPORT` (see [`bind_workers`]), and the kernel spreads
    /// connections across them. Shutdown works as for [`Prepared::serve`].
    pub async fn serve_workers(
        self,
        listeners: Vec<std::net::TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        self.spawn_health_checks(stop_rx.clone());
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::channel::<std::io::Result<()>>(listeners.len().max(1));
        let workers = listeners.len();
        for (i, std_listener) in listeners.into_iter().enumerate() {
            let gw = Arc::new(self.gw.for_worker());
            let stop = stop_rx.clone();
            let done = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("switchyard-worker-{i}"))
                .spawn(move || {
                    let result = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|rt| {
                            rt.block_on(async move {
                                let listener = TcpListener::from_std(std_listener)?;
                                serve_until(listener, gw, stop).await
                            })
                        });
                    let _ = done.blocking_send(result);
                })?;
        }
        drop(done_tx);
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut shutdown => {}
            early = done_rx.recv() => {
                return match early {
                    Some(Err(e)) => Err(e),
                    _ => Err(std::io::Error::other("a worker stopped unexpectedly")),
                };
            }
        }
        tracing::info!(deadline = ?self.shutdown_timeout, workers, "shutting down: no new connections, draining in-flight requests");
        let _ = stop_tx.send(true);
        let drained = tokio::time::timeout(self.shutdown_timeout, async {
            let mut result = Ok(());
            while let Some(r) = done_rx.recv().await {
                if r.is_err() {
                    result = r;
                }
            }
            result
        })
        .await;
        self.flush().await;
        finish_drain(drained, self.shutdown_timeout)
    }
}

fn finish_drain(
    drained: Result<std::io::Result<()>, tokio::time::error::Elapsed>,
    deadline: Duration,
) -> std::io::Result<()> {
    match drained {
        Ok(res) => {
            tracing::info!("drained; bye");
            res
        }
        Err(_) => {
            tracing::warn!(
                ?deadline,
                "shutdown deadline passed with requests still in flight; closing them"
            );
            Ok(())
        }
    }
}

/// Binds `count` listening sockets to `addr` with `SO_REUSEPORT`, one per worker. Binding
/// happens up front so an address in use is reported before anything starts. Must be called
/// inside a tokio runtime.
pub fn bind_workers(addr: SocketAddr, count: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let mut out = Vec::with_capacity(count);
    let mut bound = addr;
    for _ in 0..count.max(1) {
        let socket = if bound.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        #[cfg(unix)]
        socket.set_reuseport(true)?;
        socket.set_nodelay(true)?;
        socket.bind(bound)?;
        let listener = socket.listen(1024)?;
        bound = listener.local_addr()?;
        out.push(listener.into_std()?);
    }
    Ok(out)
}

/// Serves `listener` until `stop` turns true, then drains gracefully.
async fn serve_until(
    listener: TcpListener,
    gw: Arc<Gateway>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Stream events are small writes; Nagle's algorithm would hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(gw))
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stop| *stop).await;
        })
        .into_future()
        .await
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if let Some(task) = &self.mock {
            task.abort();
        }
    }
}

/// Builds the router over a prepared pipeline.
fn app(gw: Arc<Gateway>) -> axum::Router {
    let state = AppState {
        gw,
        created: providers::unix_now(),
    };
    axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/messages", post(messages))
        .route("/v1/responses", post(responses))
        .route("/responses", post(responses))
        .route(
            "/v1/responses/{id}",
            get(response_retrieve).delete(response_delete),
        )
        .route(
            "/responses/{id}",
            get(response_retrieve).delete(response_delete),
        )
        .route("/v1/responses/{id}/cancel", post(response_cancel))
        .route("/responses/{id}/cancel", post(response_cancel))
        .route("/v1/responses/{id}/input_items", get(response_input_items))
        .route("/responses/{id}/input_items", get(response_input_items))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/models/{id}", get(model))
        .route("/models/{id}", get(model))
        .route("/health", get(health))
        .route("/health/deployments", get(deployments_health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(middleware::from_fn(accept))
}

/// The edge: assigns the request id, opens the request span, stamps `x-request-id` on every
/// response, and logs requests the pipeline did not log itself.
async fn accept(mut req: Request<Body>, next: Next) -> Response {
    let id: Arc<str> = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| Arc::from(request_id::new_id()), Arc::from);
    req.extensions_mut().insert(RequestId(Arc::clone(&id)));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let started = tokio::time::Instant::now();
    let mut resp = next.run(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if resp.extensions().get::<Logged>().is_none() && path != "/health" {
        tracing::info!(
            target: "switchyard::request",
            request_id = %id,
            method = %method,
            path = %path,
            status = resp.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1000.0,
            "request finished"
        );
    }
    resp
}

async fn chat(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw, Operation::ChatCompletions, req).await
}

async fn embeddings(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw, Operation::Embeddings, req).await
}

async fn messages(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw, Operation::Messages, req).await
}

async fn responses(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw, Operation::Responses, req).await
}

async fn response_retrieve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw, pipeline::responses::Resource::Retrieve, id, req).await
}

async fn response_delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw, pipeline::responses::Resource::Delete, id, req).await
}

async fn response_cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw, pipeline::responses::Resource::Cancel, id, req).await
}

async fn response_input_items(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw, pipeline::responses::Resource::InputItems, id, req).await
}

/// The error shape for a path: Anthropic's under `/v1/messages`, OpenAI's elsewhere.
fn api_of(path: &str) -> ClientApi {
    let p = path.strip_prefix("/v1").unwrap_or(path);
    if p == "/messages" || p.starts_with("/messages/") {
        ClientApi::Anthropic
    } else {
        ClientApi::OpenAi
    }
}

fn model_object(id: &str, created: u64) -> serde_json::Value {
    serde_json::json!({"id": id, "object": "model", "created": created, "owned_by": "switchyard"})
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut resp = (status, Bytes::from(body)).into_response();
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

async fn models(State(s): State<AppState>, req: Request<Body>) -> Response {
    if let Err(e) = s.gw.auth.authenticate(req.headers()) {
        return e.to_response();
    }
    let data: Vec<_> =
        s.gw.router
            .alias_names()
            .map(|a| model_object(a, s.created))
            .collect();
    json(
        StatusCode::OK,
        &serde_json::json!({"object": "list", "data": data}),
    )
}

/// The circuit breaker state of every deployment used so far (same auth as the API: it names
/// providers and models).
async fn deployments_health(State(s): State<AppState>, req: Request<Body>) -> Response {
    if let Err(e) = s.gw.auth.authenticate(req.headers()) {
        return e.to_response();
    }
    let data: Vec<_> =
        s.gw.health
            .snapshot()
            .into_iter()
            .map(|h| {
                serde_json::json!({
                    "provider": &*h.provider,
                    "model": &*h.model,
                    "breaker": h.state.as_str(),
                    "times_opened": h.opened,
                })
            })
            .collect();
    json(StatusCode::OK, &serde_json::json!({"deployments": data}))
}

/// Prometheus metrics: the resilience stage's per-deployment series and the per-request series
/// (same auth as the API). Labels are configured names only, a bounded set.
async fn metrics(State(s): State<AppState>, req: Request<Body>) -> Response {
    if let Err(e) = s.gw.auth.authenticate(req.headers()) {
        return e.to_response();
    }
    let deployments: Vec<_> =
        s.gw.router
            .deployments()
            .into_iter()
            .map(|d| (Arc::clone(&d.provider.name), Arc::clone(&d.model)))
            .collect();
    let mut body = s.gw.health.render_metrics(&deployments);
    s.gw.metrics.render(&mut body);
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn model(State(s): State<AppState>, Path(id): Path<String>, req: Request<Body>) -> Response {
    if let Err(e) = s.gw.auth.authenticate(req.headers()) {
        return e.to_response();
    }
    if s.gw.router.alias_names().any(|a| a == id) {
        return json(StatusCode::OK, &model_object(&id, s.created));
    }
    GatewayError::ModelNotFound {
        model: id,
        available: s.gw.router.alias_names().map(str::to_owned).collect(),
    }
    .to_response()
}

async fn health() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn not_found(req: Request<Body>) -> Response {
    let path = req.uri().path();
    GatewayError::RouteNotFound {
        method: req.method().to_string(),
        path: path.to_owned(),
    }
    .to_response_for(api_of(path))
}

async fn method_not_allowed(req: Request<Body>) -> Response {
    let path = req.uri().path();
    GatewayError::MethodNotAllowed {
        method: req.method().to_string(),
        path: path.to_owned(),
    }
    .to_response_for(api_of(path))
}
