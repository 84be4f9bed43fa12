//! Built-in capability records for the main current models of each supported provider.
//!
//! Values come from the providers' public model pages (checked 2026-11). Where model versions
//! under one prefix differ, the record holds the most generous value, because a wrong "no"
//! rejects requests the provider would have served, while a wrong "yes" only lets the provider
//! answer with its own error. Models not listed have no record and are never refused for a
//! capability; config `capabilities:` entries add or correct records.

use super::Capabilities;

/// Capability shorthand for the table below.
const fn caps(
    context_window: u32,
    max_output: u32,
    tools: bool,
    vision: bool,
    json_schema: bool,
) -> Capabilities {
    Capabilities {
        context_window: Some(context_window),
        max_output: Some(max_output),
        tools: Some(tools),
        vision: Some(vision),
        json_schema: Some(json_schema),
        streaming: Some(true),
    }
}

/// Model-name prefixes and their records. Lookup takes the longest matching prefix, so
/// `gpt-4o-mini` wins over `gpt-4o`, and dated names (`claude-sonnet-4-5-20250929`) match their
/// family.
pub(super) const TABLE: &[(&str, Capabilities)] = &[
    // OpenAI (https://platform.openai.com/docs/models).
    ("gpt-5", caps(400_000, 128_000, true, true, true)),
    ("gpt-5-chat", caps(128_000, 16_384, true, true, true)),
    ("gpt-4.1", caps(1_047_576, 32_768, true, true, true)),
    ("gpt-4o", caps(128_000, 16_384, true, true, true)),
    ("gpt-4o-mini", caps(128_000, 16_384, true, true, true)),
    ("gpt-4-turbo", caps(128_000, 4_096, true, true, false)),
    ("gpt-3.5-turbo", caps(16_385, 4_096, true, false, false)),
    ("o1", caps(200_000, 100_000, true, true, true)),
    ("o1-mini", caps(128_000, 65_536, false, false, false)),
    ("o3", caps(200_000, 100_000, true, true, true)),
    ("o3-mini", caps(200_000, 100_000, true, false, true)),
    ("o4-mini", caps(200_000, 100_000, true, true, true)),
    // Anthropic (https://docs.anthropic.com/en/docs/about-claude/models). JSON schema output
    // is served through a forced tool, so every tool-capable model has it. Context windows
    // are the default 200k; the 1M-token beta is opted into per request, so those models get
    // no window here rather than a wrong one.
    ("claude-opus-4", caps(200_000, 32_000, true, true, true)),
    ("claude-opus-4-5", caps(200_000, 64_000, true, true, true)),
    ("claude-haiku-4-5", caps(200_000, 64_000, true, true, true)),
    (
        "claude-3-7-sonnet",
        caps(200_000, 128_000, true, true, true),
    ),
    ("claude-3-5-haiku", caps(200_000, 8_192, true, true, true)),
    ("claude-3-5-sonnet", caps(200_000, 8_192, true, true, true)),
    ("claude-3-haiku", caps(200_000, 4_096, true, true, true)),
    ("claude-3-opus", caps(200_000, 4_096, true, true, true)),
    (
        "claude-sonnet-4",
        Capabilities {
            context_window: None,
            ..caps(200_000, 64_000, true, true, true)
        },
    ),
    // Google Gemini (https://ai.google.dev/gemini-api/docs/models).
    ("gemini-3-pro", caps(1_048_576, 65_536, true, true, true)),
    ("gemini-2.5-pro", caps(1_048_576, 65_536, true, true, true)),
    (
        "gemini-2.5-flash",
        caps(1_048_576, 65_536, true, true, true),
    ),
    ("gemini-2.0-flash", caps(1_048_576, 8_192, true, true, true)),
    ("gemini-1.5-pro", caps(2_097_152, 8_192, true, true, true)),
    ("gemini-1.5-flash", caps(1_048_576, 8_192, true, true, true)),
    // Amazon Nova on Bedrock (https://docs.aws.amazon.com/nova/latest/userguide/).
    ("nova-premier", caps(1_000_000, 10_000, true, true, true)),
    ("nova-pro", caps(300_000, 10_000, true, true, true)),
    ("nova-lite", caps(300_000, 10_000, true, true, true)),
    ("nova-micro", caps(128_000, 10_000, true, false, true)),
];
