//! The Switchyard gateway runtime.
#![forbid(unsafe_code)]

pub mod config;
