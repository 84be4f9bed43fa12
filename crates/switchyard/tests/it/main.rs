//! Integration tests: the real server on an ephemeral port, driven over HTTP, against the mock
//! provider (and, where exact bytes matter, a scripted upstream). One binary, per matklad.

// Helpers shared by the tests fail the test by panicking, exactly like assertions do.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod anthropic;
mod auth;
mod bedrock;
mod budgets;
mod cache;
mod capabilities;
mod chat;
mod cli;
mod errors;
mod gemini;
mod guardrails;
mod harness;
mod keys;
mod limits;
mod metrics;
mod reqlog;
mod resilience;
mod responses;
mod responses_store;
mod responses_sub;
mod routing;
mod sdk;
mod shutdown;
mod stored_chat;
mod streaming;
mod surface;
#[cfg(feature = "tokenizer")]
mod tokenize;
mod tracing;
