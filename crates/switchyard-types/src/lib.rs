//! Wire-level types and helpers shared by the gateway crates.
//!
//! Switchyard forwards OpenAI-format bodies byte for byte, changing only the `model` value, so
//! that new upstream parameters keep working without a gateway release. This crate therefore
//! holds two kinds of things:
//!
//! - [`json`]: a small scanner that finds a top-level key's value in a JSON document and splices
//!   a new value in, leaving every other byte untouched;
//! - [`openai`]: borrowed request *views* that check the fields the gateway relies on (types
//!   only, never closed value sets, so new roles or options are not rejected), the OpenAI error
//!   body, and the usage block.
//! - [`anthropic`] and [`gemini`]: those providers' wire formats and their translation to and
//!   from OpenAI's.
//!
//! No IO and no async: everything here is pure and unit-testable.
#![forbid(unsafe_code)]

mod access;
pub mod anthropic;
pub mod bedrock;
mod chat_in;
pub mod chunk;
pub mod completions;
pub mod extras;
pub mod gemini;
pub mod json;
pub mod openai;
pub mod responses;
pub mod sse;
#[cfg(test)]
mod test_rng;
