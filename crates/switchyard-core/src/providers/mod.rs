//! Provider adapters: how each upstream API is spoken.
//!
//! Adapters are sans-IO: they build the upstream request, rewrite or translate what comes back
//! and classify errors, but never touch the network, tenants, limits or caches. That keeps them
//! testable with fixtures alone. Adding a provider means one file here and one arm in
//! [`build`].

pub mod openai;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use switchyard_types::openai::Usage;

use crate::config::{Endpoint, ProviderConfig, ProviderKind};
use crate::error::GatewayError;

/// Which client API operation is being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// `POST /v1/chat/completions`.
    ChatCompletions,
    /// `POST /v1/embeddings`.
    Embeddings,
}

impl Operation {
    /// Stable name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat.completions",
            Self::Embeddings => "embeddings",
        }
    }
}

/// A request ready to be sent upstream.
#[derive(Debug)]
pub struct UpstreamRequest {
    /// Full URL.
    pub uri: http::Uri,
    /// Headers, credentials included (marked sensitive).
    pub headers: HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

/// A non-streaming response for the client, and the usage the provider reported in it.
#[derive(Debug)]
pub struct ResponseBody {
    /// The body to send.
    pub body: Bytes,
    /// Usage, when the provider reported it.
    pub usage: Option<Usage>,
}

/// One `data:` payload of a relayed stream, after rewriting.
#[derive(Debug)]
pub enum StreamData {
    /// A chunk to forward; `usage` is set when the chunk carried one.
    Chunk {
        /// The payload to send to the client.
        payload: Bytes,
        /// Usage reported in this chunk.
        usage: Option<Usage>,
    },
    /// The provider reported an error inside the stream; forwarded as is.
    Error(Bytes),
    /// The end-of-stream marker (`[DONE]` for OpenAI).
    Done,
}

/// A provider adapter.
pub trait Provider: Send + Sync + 'static {
    /// The provider's configured name.
    fn name(&self) -> &Arc<str>;

    /// Builds the upstream request from the client's (already validated) OpenAI-format body.
    fn build_request(
        &self,
        op: Operation,
        client_body: &[u8],
        model: &str,
    ) -> Result<UpstreamRequest, GatewayError>;

    /// Turns a successful non-streaming upstream body into the client's response body, with
    /// `client_model` as the model name, and reads the usage it reports.
    fn response_body(&self, body: &[u8], client_model: &str) -> Result<ResponseBody, GatewayError>;

    /// Rewrites one stream `data:` payload for the client.
    fn stream_data(&self, data: &[u8], client_model: &str) -> Result<StreamData, GatewayError>;

    /// Classifies a non-success upstream response.
    fn classify_error(&self, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> GatewayError;
}

/// Builds the adapter for a provider; `mock_url` is where the embedded mock listens, if running.
pub fn build(
    cfg: &ProviderConfig,
    mock_url: Option<&str>,
) -> Result<Arc<dyn Provider>, GatewayError> {
    let base = match &cfg.endpoint {
        Endpoint::Url(u) => u.clone(),
        Endpoint::EmbeddedMock => mock_url
            .map(|m| format!("{m}/v1"))
            .ok_or_else(|| GatewayError::Internal("embedded mock is not running".into()))?,
    };
    Ok(match &cfg.kind {
        ProviderKind::OpenAi => Arc::new(openai::OpenAi::new(cfg, base, None)?),
        ProviderKind::Azure { api_version } => {
            Arc::new(openai::OpenAi::new(cfg, base, Some(api_version.clone()))?)
        }
    })
}
