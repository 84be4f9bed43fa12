//! The HTTP surface: routes, the request-id edge, graceful shutdown.
//!
//! Routes are thin: `/v1/chat/completions`, `/v1/embeddings` (OpenAI's API) and `/v1/messages`
//! (Anthropic's) hand the request to [`crate::pipeline::handle`]; everything else here is local (models list, health, errors).
//! Each route is also served without the `/v1` prefix, because SDK users often set the base URL
//! to the server root.

pub mod error;
pub mod reload;
pub(crate) mod request_id;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
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

use crate::config::{Config, Endpoint};
use crate::error::GatewayError;
use crate::pipeline::{self, Gateway, Logged};
use crate::providers::{self, ClientApi, Operation};
use crate::resilience::Health;
use crate::telemetry::metrics::RequestMetrics;
use crate::telemetry::otlp::Tracer;

/// The request id, stored in request extensions by the edge middleware.
#[derive(Debug, Clone)]
pub struct RequestId {
    /// The id: the client's `x-request-id`, or one the edge generated.
    pub id: Arc<str>,
    /// Set while an id the edge generated (so no other request has it) is not yet taken as a
    /// record's id; see [`RequestId::claim_record_id`].
    unclaimed: Option<Arc<AtomicBool>>,
}

impl RequestId {
    fn new(id: Arc<str>, generated: bool) -> Self {
        Self {
            id,
            unclaimed: generated.then(|| Arc::new(AtomicBool::new(true))),
        }
    }

    /// Whether the caller may key its record by the request id: true once, for a generated id.
    /// The request log stores a record at most once per id, so a second record under the same
    /// id would be skipped as a replay; a claim that succeeds once can never let that happen,
    /// whatever handler asks.
    pub fn claim_record_id(&self) -> bool {
        self.unclaimed
            .as_ref()
            .is_some_and(|u| u.swap(false, std::sync::atomic::Ordering::Relaxed))
    }
}

/// Shared state of the HTTP handlers (one per worker).
#[derive(Clone)]
struct AppState {
    current: Arc<reload::WorkerGateway>,
    created: u64,
}

impl AppState {
    /// The gateway for a new request (the latest reloaded config).
    fn gw(&self) -> Arc<Gateway> {
        self.current.get()
    }
}

/// A gateway ready to serve: the pipeline state plus the embedded mock, if one was started.
pub struct Prepared {
    gw: Arc<Gateway>,
    mock_url: Option<String>,
    shutdown_timeout: Duration,
    mock: Option<tokio::task::JoinHandle<()>>,
    /// The request log, flushed after the drain.
    reqlog: Option<Arc<crate::reqlog::ReqLog>>,
    /// The `/admin/...` routes, and the listener of their own when `admin.listen` is set.
    admin: (axum::Router, Option<std::net::TcpListener>),
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
        let reqlog = if config.request_log.enabled {
            let log = crate::reqlog::ReqLog::start(config.request_log.clone(), &config.store)
                .await
                .map_err(|e| {
                    std::io::Error::other(format!(
                        "request log store ({}): {e}",
                        config.store.describe()
                    ))
                })?;
            Some(log)
        } else {
            None
        };
        // One store handle for everything that keeps state: the request log's, or opened
        // for the others when the log is off.
        let store = match reqlog.as_ref() {
            Some(log) => log.store().clone(),
            None => crate::store::Store::open(&config.store)
                .await
                .map_err(|e| {
                    std::io::Error::other(format!("store ({}): {e}", config.store.describe()))
                })?,
        };
        let keys = if config.keys.enabled {
            let cache = crate::keys::KeyCache::start(
                crate::keys::KeyStore::new(store.clone()),
                config.keys.refresh,
            )
            .await
            .map_err(|e| std::io::Error::other(format!("virtual keys: {e}")))?;
            Some(cache)
        } else {
            None
        };
        let limits = Arc::new(crate::limits::Limits::start(config.limits.clone()).await);
        // Whenever keys can carry budgets of their own, the budget module exists to enforce them.
        let budgets = (config.keys.enabled || !config.budgets.limits.is_empty())
            .then(|| crate::budgets::Budgets::new(&config.budgets, Some(store.clone())));
        if let (Some(budgets), Some(keys)) = (&budgets, &keys) {
            budgets.follow_keys(keys);
        }
        let stored_chat = Arc::new(crate::stored_chat::ChatCompletionStore::new(
            store.clone(),
            crate::stored_chat::ChatCompletionStore::DEFAULT_TTL,
        ));
        let responses = Arc::new(crate::responses_state::PersistentResponseStore::new(
            store,
            crate::responses_state::PersistentResponseStore::DEFAULT_TTL,
        ));
        let admin_routes = crate::admin::Admin::new(
            &config.admin,
            reqlog.as_ref().map(|l| l.store().clone()),
            reqlog.clone(),
        )
        .with_keys(keys.clone())
        .with_budgets(budgets.clone())
        .router();
        let admin_listener = match config.admin.listen {
            Some(addr) => Some(std::net::TcpListener::bind(addr).and_then(|l| {
                l.set_nonblocking(true)?;
                Ok(l)
            })?),
            None => None,
        };
        let server = config.server.clone();
        let resilience = config.resilience;
        let metrics = Arc::new(RequestMetrics::default());
        reload::MetricNames::of(&config).apply(&metrics);
        let tracer = config
            .telemetry
            .otlp
            .clone()
            .map(|o| Tracer::start(o, server.timeouts.connect));
        let passthrough = crate::passthrough::Table::new(
            &config.passthrough,
            &config.model_delete,
            &config.providers,
            mock_url.as_deref(),
        )
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        let cache = crate::cache::Cache::new(&config.cache).map(Arc::new);
        let parts =
            reload::build_parts(config, mock_url.as_deref()).map_err(std::io::Error::other)?;
        let guardrails = parts.guardrails.clone();
        let gw = Gateway {
            auth: Arc::clone(&parts.auth),
            router: Arc::clone(&parts.router),
            providers: Arc::clone(&parts.providers),
            client: crate::http_client::build(server.timeouts.connect),
            timeouts: server.timeouts,
            max_body_size: server.max_body_size,
            health: Arc::new(Health::new(resilience)),
            metrics,
            tracer,
            passthrough: Arc::new(passthrough),
            live: Arc::new(reload::Live::new(parts)),
            generation: 0,
            reqlog: reqlog.clone(),
            responses,
            stored_chat,
            keys,
            limits,
            budgets,
            cache,
            guardrails,
        };
        Ok(Self {
            gw: Arc::new(gw),
            mock_url,
            shutdown_timeout: server.shutdown_timeout,
            mock,
            reqlog,
            admin: (admin_routes, admin_listener),
        })
    }

    /// A handle that swaps a new config into this gateway once it serves (SIGHUP in the
    /// binary; tests call it directly).
    pub fn reloader(&self) -> reload::Reloader {
        reload::Reloader::new(
            Arc::clone(&self.gw.live),
            Arc::clone(&self.gw.metrics),
            self.mock_url.clone(),
        )
    }

    /// The address of the admin API's own listener, when `admin.listen` is set.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.1.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// The request log, when on (its counters feed `/metrics`).
    pub fn reqlog(&self) -> Option<&Arc<crate::reqlog::ReqLog>> {
        self.reqlog.as_ref()
    }

    /// The budgets, when any can exist (configured ones, or virtual keys on).
    pub fn budgets(&self) -> Option<&Arc<crate::budgets::Budgets>> {
        self.gw.budgets.as_ref()
    }

    /// The admin routes for the gateway's own listener (none when they have their own), and
    /// starts their own listener, if any, until `stop`.
    fn admin_routes(
        &mut self,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> std::io::Result<Option<axum::Router>> {
        let Some(std_listener) = self.admin.1.take() else {
            return Ok(Some(self.admin.0.clone()));
        };
        let listener = TcpListener::from_std(std_listener)?;
        let app = self
            .admin
            .0
            .clone()
            .layer(middleware::from_fn(accept_layer));
        let mut stop = stop;
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "admin listener stopped");
            }
        });
        Ok(None)
    }

    /// After the drain: stores (or spills) every request log record still queued.
    async fn flush_log(&self) {
        if let Some(log) = &self.reqlog {
            log.shutdown().await;
            let s = log.stats();
            tracing::info!(
                stored = s.stored,
                spilled = s.spilled,
                dropped = s.dropped,
                "request log flushed"
            );
        }
    }

    /// Serves on `listener`, on the current runtime, until `shutdown` resolves; then stops
    /// accepting, lets in-flight requests and streams finish for up to
    /// `server.shutdown_timeout`, and returns. Used by tests and embedders.
    pub async fn serve(
        mut self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.spawn_health_checks(rx.clone());
        let admin = self.admin_routes(rx.clone())?;
        let server = serve_until(listener, Arc::clone(&self.gw), admin, rx);
        tokio::pin!(server);
        tokio::select! {
            res = &mut server => return res,
            () = shutdown => {}
        }
        tracing::info!(deadline = ?self.shutdown_timeout, "shutting down: no new connections, draining in-flight requests");
        let _ = tx.send(true);
        let drained = finish_drain(
            tokio::time::timeout(self.shutdown_timeout, server).await,
            self.shutdown_timeout,
        );
        self.flush().await;
        drained
    }

    /// After the last request finished: stores the queued stored-response and stored chat
    /// completion writes and the request log's queue, then sends the traces
    /// the exporter still holds.
    async fn flush(&self) {
        self.gw.responses.flush().await;
        self.gw.stored_chat.flush().await;
        self.flush_log().await;
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
        mut self,
        listeners: Vec<std::net::TcpListener>,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        self.spawn_health_checks(stop_rx.clone());
        let admin = self.admin_routes(stop_rx.clone())?;
        let (done_tx, mut done_rx) =
            tokio::sync::mpsc::channel::<std::io::Result<()>>(listeners.len().max(1));
        let workers = listeners.len();
        for (i, std_listener) in listeners.into_iter().enumerate() {
            let gw = Arc::new(self.gw.for_worker());
            let stop = stop_rx.clone();
            let done = done_tx.clone();
            let admin = admin.clone();
            std::thread::Builder::new()
                .name(format!("switchyard-worker-{i}"))
                .spawn(move || {
                    let result = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .and_then(|rt| {
                            rt.block_on(async move {
                                let listener = TcpListener::from_std(std_listener)?;
                                tokio::spawn(timer_floor());
                                serve_until(listener, gw, admin, stop).await
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
        let drained = finish_drain(drained, self.shutdown_timeout);
        self.flush().await;
        drained
    }
}

/// Keeps a timer due within a second on the worker's runtime, forever.
///
/// Tokio's timer wakes its own driver (an eventfd write, then an extra `epoll_wait`) whenever a
/// new deadline is earlier than the one it is parked until. Every request sets deadlines
/// (first byte, total) that are the earliest on an otherwise idle runtime, so each request paid
/// two system calls for nothing. With a deadline always less than a second away, request
/// deadlines (seconds to minutes ahead) never come first. It costs one wake-up a second.
async fn timer_floor() {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
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
    admin: Option<axum::Router>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt as _;
    // Stream events are small writes; Nagle's algorithm would hold them back.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(gw, admin))
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

/// Builds the service over a prepared pipeline: the edge in front of the router, with the
/// admin routes when they share the gateway's listener.
fn app(gw: Arc<Gateway>, admin: Option<axum::Router>) -> Edge {
    let state = AppState {
        current: Arc::new(reload::WorkerGateway::new(gw)),
        created: providers::unix_now(),
    };
    // `Edge` serves the `POST`s of the five model-serving paths itself, so their `post(..)`
    // handlers here are not reached; the routes stay so that the router still answers the
    // paths' other methods (the stored-completion list, a 405) as before.
    let router = axum::Router::new()
        .route("/v1/chat/completions", post(chat).get(chat_list))
        .route("/chat/completions", post(chat).get(chat_list))
        .route(
            "/v1/chat/completions/{id}",
            get(chat_retrieve).post(chat_update).delete(chat_delete),
        )
        .route(
            "/chat/completions/{id}",
            get(chat_retrieve).post(chat_update).delete(chat_delete),
        )
        .route("/v1/chat/completions/{id}/messages", get(chat_messages))
        .route("/chat/completions/{id}/messages", get(chat_messages))
        .route("/v1/embeddings", post(embeddings))
        .route("/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/messages", post(messages))
        .route("/v1/completions", post(completions))
        .route("/completions", post(completions))
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
        // Static segments win over `{id}`: these name a model, not a response.
        .route("/v1/responses/input_tokens", post(response_input_tokens))
        .route("/responses/input_tokens", post(response_input_tokens))
        .route("/v1/responses/compact", post(response_compact))
        .route("/responses/compact", post(response_compact))
        .route("/v1/responses/{id}/cancel", post(response_cancel))
        .route("/responses/{id}/cancel", post(response_cancel))
        .route("/v1/responses/{id}/input_items", get(response_input_items))
        .route("/responses/{id}/input_items", get(response_input_items))
        .route("/v1/models", get(models))
        .route("/models", get(models))
        .route("/v1/models/{*id}", get(model).delete(delete_model))
        .route("/models/{*id}", get(model).delete(delete_model))
        .route("/health", get(health))
        .route("/health/deployments", get(deployments_health))
        .route("/metrics", get(metrics))
        .route("/v1/route/explain", post(explain))
        .route("/route/explain", post(explain))
        .route("/v1/deployments/stats", get(deployment_stats))
        .route("/deployments/stats", get(deployment_stats))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state.clone())
        .merge(admin.unwrap_or_default());
    Edge { router, state }
}

/// What every request on the gateway's listener goes through first: the edge ([`accept`]),
/// then the five model-serving operations straight to the pipeline, everything else to the
/// router.
///
/// The model-serving calls are nearly all of the traffic, and going through the router cost
/// them about 8,000 instructions each (7% of a request): path matching, two layers of route
/// futures and the middleware's boxed `Next`. Found here by exact method and path, they
/// answer exactly as their routes do; any other method or path (a `GET`, a trailing slash) is
/// still the router's to answer.
#[derive(Clone)]
struct Edge {
    router: axum::Router,
    state: AppState,
}

/// The operation `POST path` is, when it is one the pipeline serves as a whole.
fn direct_op(method: &http::Method, path: &str) -> Option<Operation> {
    if method != http::Method::POST {
        return None;
    }
    Some(match path.strip_prefix("/v1").unwrap_or(path) {
        "/chat/completions" => Operation::ChatCompletions,
        "/embeddings" => Operation::Embeddings,
        "/messages" => Operation::Messages,
        "/completions" => Operation::Completions,
        "/responses" => Operation::Responses,
        _ => return None,
    })
}

impl tower_service::Service<Request<Body>> for Edge {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send + 'static>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let op = direct_op(req.method(), req.uri().path());
        let this = self.clone();
        Box::pin(async move {
            Ok(accept(req, |req| async move {
                match op {
                    Some(op) => pipeline::handle(this.state.gw(), op, req).await,
                    None => {
                        let mut router = this.router;
                        match tower_service::Service::call(&mut router, req).await {
                            Ok(resp) => resp,
                            Err(never) => match never {},
                        }
                    }
                }
            })
            .await)
        })
    }
}

/// `axum::serve` asks for a service per connection: the same edge, shared.
impl<'a, L: axum::serve::Listener> tower_service::Service<axum::serve::IncomingStream<'a, L>>
    for Edge
{
    type Response = Edge;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Edge, std::convert::Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: axum::serve::IncomingStream<'a, L>) -> Self::Future {
        std::future::ready(Ok(self.clone()))
    }
}

static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The admin listener's edge, as a middleware over its router.
async fn accept_layer(req: Request<Body>, next: Next) -> Response {
    accept(req, |req| next.run(req)).await
}

/// The edge: assigns the request id, opens the request span, stamps `x-request-id` on every
/// response, and logs requests the pipeline did not log itself.
async fn accept<F, Fut>(mut req: Request<Body>, next: F) -> Response
where
    F: FnOnce(Request<Body>) -> Fut,
    Fut: Future<Output = Response>,
{
    let client_id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
    let generated = client_id.is_none();
    let id: Arc<str> = client_id.map_or_else(|| Arc::from(request_id::new_id()), Arc::from);
    req.extensions_mut()
        .insert(RequestId::new(Arc::clone(&id), generated));
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id = %id);
    let started = tokio::time::Instant::now();
    let mut resp = next(req).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(X_REQUEST_ID.clone(), v);
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
    pipeline::handle(s.gw(), Operation::ChatCompletions, req).await
}

async fn chat_list(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::stored_chat::resource(s.gw(), pipeline::stored_chat::Resource::List, None, req).await
}

async fn chat_stored(
    s: AppState,
    which: pipeline::stored_chat::Resource,
    id: String,
    req: Request<Body>,
) -> Response {
    pipeline::stored_chat::resource(s.gw(), which, Some(id), req).await
}

async fn chat_retrieve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    chat_stored(s, pipeline::stored_chat::Resource::Retrieve, id, req).await
}

async fn chat_update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    chat_stored(s, pipeline::stored_chat::Resource::Update, id, req).await
}

async fn chat_delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    chat_stored(s, pipeline::stored_chat::Resource::Delete, id, req).await
}

async fn chat_messages(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    chat_stored(s, pipeline::stored_chat::Resource::Messages, id, req).await
}

async fn embeddings(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw(), Operation::Embeddings, req).await
}

async fn completions(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw(), Operation::Completions, req).await
}

async fn messages(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw(), Operation::Messages, req).await
}

async fn responses(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::handle(s.gw(), Operation::Responses, req).await
}

async fn response_retrieve(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw(), pipeline::responses::Resource::Retrieve, id, req).await
}

async fn response_delete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw(), pipeline::responses::Resource::Delete, id, req).await
}

async fn response_cancel(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw(), pipeline::responses::Resource::Cancel, id, req).await
}

async fn response_input_items(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    pipeline::responses::resource(s.gw(), pipeline::responses::Resource::InputItems, id, req).await
}

async fn response_input_tokens(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::responses_sub::sub_resource(s.gw(), pipeline::responses_sub::Sub::InputTokens, req)
        .await
}

async fn response_compact(State(s): State<AppState>, req: Request<Body>) -> Response {
    pipeline::responses_sub::sub_resource(s.gw(), pipeline::responses_sub::Sub::Compact, req).await
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

/// `/v1/models` is both the gateway's own list and Anthropic's models API: a request with an
/// `anthropic-version` header (every Anthropic SDK sends one) goes to the Anthropic provider
/// that `passthrough:` routes `/v1/models` to, when there is one.
fn anthropic_models<'a>(
    gw: &'a Gateway,
    req: &Request<Body>,
) -> Option<&'a crate::passthrough::Target> {
    req.headers()
        .contains_key("anthropic-version")
        .then(|| gw.passthrough.anthropic_models())
        .flatten()
}

async fn models(State(s): State<AppState>, req: Request<Body>) -> Response {
    let gw = s.gw();
    if let Some(target) = anthropic_models(&gw, &req) {
        return crate::passthrough::handle(Arc::clone(&gw), target, req).await;
    }
    if let Err(e) = s.gw().authenticate(req.headers()) {
        return e.to_response();
    }
    let mut data: Vec<_> = s
        .gw()
        .router
        .alias_names()
        .map(|a| model_object(a, s.created))
        .collect();
    // Wildcard routes are listed by their pattern (an id containing `*`), owned by the
    // provider they route to.
    data.extend(s.gw().router.wildcard_routes().iter().map(|w| {
        serde_json::json!({"id": w.pattern, "object": "model", "created": s.created,
            "owned_by": &*w.provider.name})
    }));
    json(
        StatusCode::OK,
        &serde_json::json!({"object": "list", "data": data}),
    )
}

/// The circuit breaker state of every deployment used so far (same auth as the API: it names
/// providers and models).
async fn deployments_health(State(s): State<AppState>, req: Request<Body>) -> Response {
    if let Err(e) = s.gw().authenticate(req.headers()) {
        return e.to_response();
    }
    let data: Vec<_> = s
        .gw()
        .health
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
    if let Err(e) = s.gw().authenticate(req.headers()) {
        return e.to_response();
    }
    let deployments: Vec<_> = s
        .gw()
        .router
        .deployments()
        .into_iter()
        .map(|d| (Arc::clone(&d.provider.name), Arc::clone(&d.model)))
        .collect();
    let mut body = s.gw().health.render_metrics(&deployments);
    s.gw().metrics.render(&mut body);
    s.gw().limits.render_metrics(&mut body);
    if let Some(cache) = &s.gw().cache {
        cache.render(&mut body);
    }
    if let Some(log) = &s.gw().reqlog {
        crate::reqlog::render_metrics(&log.stats(), &mut body);
    }
    if let Some(budgets) = &s.gw().budgets {
        crate::budgets::render_metrics(budgets, &mut body).await;
    }
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

async fn model(State(s): State<AppState>, Path(id): Path<String>, req: Request<Body>) -> Response {
    let gw = s.gw();
    if let Some(target) = anthropic_models(&gw, &req) {
        return crate::passthrough::handle(Arc::clone(&gw), target, req).await;
    }
    if let Err(e) = s.gw().authenticate(req.headers()) {
        return e.to_response();
    }
    // Aliases, `<provider>/<model>` names and wildcard-routed names: whatever a request could
    // use. Aliases are the gateway's own; the others belong to the provider serving them.
    match s.gw().router.route(&id) {
        Ok(route) if route.rule.starts_with("alias") => {
            json(StatusCode::OK, &model_object(&id, s.created))
        }
        Ok(route) => {
            let owner = route
                .candidates
                .first()
                .map_or("switchyard", |d| &*d.provider.name);
            json(
                StatusCode::OK,
                &serde_json::json!({"id": id, "object": "model", "created": s.created,
                    "owned_by": owner}),
            )
        }
        Err(e) => e.to_response(),
    }
}

/// `DELETE /v1/models/{id}`: forwarded to the deployment serving `id` only when its provider
/// allows it (`allow_model_delete`); an alias must name exactly one deployment.
async fn delete_model(
    State(s): State<AppState>,
    Path(id): Path<String>,
    req: Request<Body>,
) -> Response {
    if let Err(e) = s.gw().authenticate(req.headers()) {
        return e.to_response();
    }
    let route = match s.gw().router.route(&id) {
        Ok(r) => r,
        Err(e) => return e.to_response(),
    };
    let [d] = route.candidates.as_slice() else {
        return GatewayError::Unsupported {
            param: "model".into(),
            message: format!(
                "`{id}` is served by {} deployments; delete a model at one of them by its \
                 `<provider>/<model>` name.",
                route.candidates.len()
            ),
            code: "unsupported_endpoint",
        }
        .to_response();
    };
    let (provider, kind, model) = (
        d.provider.name.to_string(),
        d.provider.kind.clone(),
        d.model.to_string(),
    );
    crate::passthrough::delete_model(s.gw(), &provider, &kind, &model, req).await
}

/// `POST /v1/route/explain`: the routing decision for a chat body, without an upstream call.
async fn explain(State(s): State<AppState>, req: Request<Body>) -> Response {
    match pipeline::route::explain(&s.gw(), req).await {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => e.to_response(),
    }
}

/// `GET /v1/deployments/stats`: live statistics of every configured deployment.
async fn deployment_stats(State(s): State<AppState>, req: Request<Body>) -> Response {
    match pipeline::route::deployment_stats(&s.gw(), req.headers()) {
        Ok(v) => json(StatusCode::OK, &v),
        Err(e) => e.to_response(),
    }
}

async fn health() -> Response {
    json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

async fn not_found(State(s): State<AppState>, req: Request<Body>) -> Response {
    if let Some(target) = s.gw().passthrough.find(req.uri().path()) {
        return crate::passthrough::handle(s.gw(), target, req).await;
    }
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

#[cfg(test)]
mod tests {
    use super::{direct_op, RequestId};
    use crate::providers::Operation;
    use http::Method;

    /// A generated request id is claimed as a record id once, by whichever context asks first,
    /// also through clones of the extension; a client's id never is.
    #[test]
    fn a_generated_request_id_is_claimed_once() {
        let generated = RequestId::new("01a2".into(), true);
        let copy = generated.clone();
        assert!(copy.claim_record_id());
        assert!(!generated.claim_record_id());
        assert!(!copy.claim_record_id());
        assert!(!RequestId::new("client".into(), false).claim_record_id());
    }

    #[test]
    fn only_exact_posts_of_the_served_operations_skip_the_router() {
        for (path, op) in [
            ("/v1/chat/completions", Operation::ChatCompletions),
            ("/chat/completions", Operation::ChatCompletions),
            ("/v1/embeddings", Operation::Embeddings),
            ("/messages", Operation::Messages),
            ("/v1/completions", Operation::Completions),
            ("/v1/responses", Operation::Responses),
        ] {
            assert_eq!(direct_op(&Method::POST, path), Some(op), "{path}");
        }
        // Other methods (the stored-completion list is a GET), sub-resources, trailing
        // slashes, a doubled or glued prefix: the router's to answer (or to refuse).
        for (method, path) in [
            (Method::GET, "/v1/chat/completions"),
            (Method::PUT, "/v1/chat/completions"),
            (Method::POST, "/v1/chat/completions/"),
            (Method::POST, "/v1/chat/completions/abc"),
            (Method::POST, "/v1/responses/input_tokens"),
            (Method::POST, "/v1/v1/chat/completions"),
            (Method::POST, "/v1chat/completions"),
            (Method::POST, "/v1/models"),
        ] {
            assert_eq!(direct_op(&method, path), None, "{method} {path}");
        }
    }
}
