//! Built-in list prices, USD per million tokens, standard (non-batch, non-priority) tier, for
//! prompts under any long-context surcharge threshold.
//!
//! Every entry names its source and when the price was read. These are the prices as known to
//! the authors at that date; providers change them, so operators should set `price:` on a
//! deployment whenever it matters (a config price always wins). Lookup is by the longest
//! matching prefix of the canonical model name, so dated versions (`gpt-4o-2024-08-06`) match
//! their family and Bedrock ids (`us.anthropic.claude-...`) match the vendor's model.

use super::Price;

/// One row of the table.
pub(super) struct Entry {
    /// Model-name prefix.
    pub(super) prefix: &'static str,
    /// The price.
    pub(super) price: Price,
    /// Where it came from, and when.
    pub(super) source: &'static str,
}

const OPENAI: &str = "openai.com/api/pricing, list price as of 2025-08";
const ANTHROPIC: &str =
    "anthropic.com/pricing (5-minute cache writes 1.25x input, reads 0.1x), as of 2025-11";
const GEMINI: &str = "ai.google.dev/gemini-api/docs/pricing, prompts <= 200k, as of 2025-08";
const BEDROCK: &str = "aws.amazon.com/bedrock/pricing, on-demand us-east-1, as of 2025-08";
const MISTRAL: &str = "mistral.ai/pricing, as of 2025-08";
const DEEPSEEK: &str = "api-docs.deepseek.com/quick_start/pricing, standard hours, as of 2025-08";
const GROQ: &str = "groq.com/pricing, as of 2025-08";
const XAI: &str = "docs.x.ai/docs/models, as of 2025-08";
const MOCK: &str = "built-in mock provider: costs nothing";

/// OpenAI: cached input is discounted, cache writes cost nothing extra.
const fn oa(input: f64, cached: f64, output: f64) -> Price {
    Price {
        input,
        output,
        cached_input: cached,
        cache_write: input,
    }
}

/// Anthropic's cache rule: writes at 1.25x input, reads at 0.1x input.
const fn an(input: f64, output: f64) -> Price {
    Price {
        input,
        output,
        cached_input: input / 10.0,
        cache_write: input * 1.25,
    }
}

const fn e(prefix: &'static str, price: Price, source: &'static str) -> Entry {
    Entry {
        prefix,
        price,
        source,
    }
}

pub(super) const TABLE: &[Entry] = &[
    // OpenAI.
    e("gpt-5", oa(1.25, 0.125, 10.0), OPENAI),
    e("gpt-5-mini", oa(0.25, 0.025, 2.0), OPENAI),
    e("gpt-5-nano", oa(0.05, 0.005, 0.40), OPENAI),
    e("gpt-5-chat", oa(1.25, 0.125, 10.0), OPENAI),
    e("gpt-4.1", oa(2.0, 0.50, 8.0), OPENAI),
    e("gpt-4.1-mini", oa(0.40, 0.10, 1.60), OPENAI),
    e("gpt-4.1-nano", oa(0.10, 0.025, 0.40), OPENAI),
    e("gpt-4o", oa(2.50, 1.25, 10.0), OPENAI),
    e("gpt-4o-mini", oa(0.15, 0.075, 0.60), OPENAI),
    e("gpt-4-turbo", Price::flat(10.0, 30.0), OPENAI),
    e("gpt-3.5-turbo", Price::flat(0.50, 1.50), OPENAI),
    e("o1", oa(15.0, 7.50, 60.0), OPENAI),
    e("o1-mini", oa(1.10, 0.55, 4.40), OPENAI),
    e("o3", oa(2.0, 0.50, 8.0), OPENAI),
    e("o3-mini", oa(1.10, 0.55, 4.40), OPENAI),
    e("o4-mini", oa(1.10, 0.275, 4.40), OPENAI),
    e("text-embedding-3-small", Price::flat(0.02, 0.0), OPENAI),
    e("text-embedding-3-large", Price::flat(0.13, 0.0), OPENAI),
    // Anthropic (also Claude on Bedrock and Vertex, same list prices).
    e("claude-opus-4", an(15.0, 75.0), ANTHROPIC),
    e("claude-opus-4-5", an(5.0, 25.0), ANTHROPIC),
    e("claude-sonnet-4", an(3.0, 15.0), ANTHROPIC),
    e("claude-3-7-sonnet", an(3.0, 15.0), ANTHROPIC),
    e("claude-3-5-sonnet", an(3.0, 15.0), ANTHROPIC),
    e("claude-haiku-4-5", an(1.0, 5.0), ANTHROPIC),
    e("claude-3-5-haiku", an(0.80, 4.0), ANTHROPIC),
    e("claude-3-haiku", an(0.25, 1.25), ANTHROPIC),
    e("claude-3-opus", an(15.0, 75.0), ANTHROPIC),
    // Google Gemini (context-cache storage is billed per hour and not included).
    e("gemini-2.5-pro", oa(1.25, 0.31, 10.0), GEMINI),
    e("gemini-2.5-flash", oa(0.30, 0.075, 2.50), GEMINI),
    e("gemini-2.5-flash-lite", oa(0.10, 0.025, 0.40), GEMINI),
    e("gemini-2.0-flash", oa(0.10, 0.025, 0.40), GEMINI),
    e("gemini-2.0-flash-lite", Price::flat(0.075, 0.30), GEMINI),
    e("gemini-1.5-pro", Price::flat(1.25, 5.0), GEMINI),
    e("gemini-1.5-flash", Price::flat(0.075, 0.30), GEMINI),
    // Amazon Nova on Bedrock.
    e("nova-premier", Price::flat(2.50, 12.50), BEDROCK),
    e("nova-pro", Price::flat(0.80, 3.20), BEDROCK),
    e("nova-lite", Price::flat(0.06, 0.24), BEDROCK),
    e("nova-micro", Price::flat(0.035, 0.14), BEDROCK),
    // Mistral.
    e("mistral-large", Price::flat(2.0, 6.0), MISTRAL),
    e("mistral-medium", Price::flat(0.40, 2.0), MISTRAL),
    e("mistral-small", Price::flat(0.10, 0.30), MISTRAL),
    e("codestral", Price::flat(0.30, 0.90), MISTRAL),
    e("ministral-8b", Price::flat(0.10, 0.10), MISTRAL),
    e("ministral-3b", Price::flat(0.04, 0.04), MISTRAL),
    e("open-mistral-nemo", Price::flat(0.15, 0.15), MISTRAL),
    // DeepSeek (cache hits are discounted).
    e("deepseek-chat", oa(0.27, 0.07, 1.10), DEEPSEEK),
    e("deepseek-reasoner", oa(0.55, 0.14, 2.19), DEEPSEEK),
    // Groq.
    e("llama-3.3-70b-versatile", Price::flat(0.59, 0.79), GROQ),
    e("llama-3.1-8b-instant", Price::flat(0.05, 0.08), GROQ),
    // xAI.
    e("grok-4", oa(3.0, 0.75, 15.0), XAI),
    e("grok-3", oa(3.0, 0.75, 15.0), XAI),
    e("grok-3-mini", oa(0.30, 0.075, 0.50), XAI),
    // The built-in mock provider's models (`demo` and friends).
    e("mock-", Price::flat(0.0, 0.0), MOCK),
    e("mock.", Price::flat(0.0, 0.0), MOCK),
];
