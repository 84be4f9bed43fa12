//! The schema history. Append a migration to change the schema; never edit a released one.
//!
//! The request log's types are chosen to mean the same in both dialects: `BIGINT` integers
//! (timestamps are Unix milliseconds, costs integer nano-dollars so sums are exact),
//! `DOUBLE PRECISION` latencies, `BOOLEAN` flags (0/1 in SQLite) and JSON kept as `TEXT`.

use super::Migration;

const REQUESTS_V1: &str = "
CREATE TABLE requests (
    id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    principal TEXT NOT NULL,
    key_name TEXT,
    team TEXT,
    user_id TEXT,
    tags TEXT,
    client_api TEXT NOT NULL,
    operation TEXT NOT NULL,
    alias TEXT,
    stream BOOLEAN NOT NULL,
    provider TEXT,
    model TEXT,
    deployment TEXT,
    route TEXT,
    attempt_count BIGINT NOT NULL,
    attempts TEXT NOT NULL,
    status BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    error_kind TEXT,
    error_message TEXT,
    prompt_tokens BIGINT,
    completion_tokens BIGINT,
    cached_tokens BIGINT,
    cost_nanos BIGINT,
    cost_known BOOLEAN NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    ttft_ms DOUBLE PRECISION,
    cache_outcome TEXT,
    guardrail_outcome TEXT,
    body_policy TEXT NOT NULL,
    request_body TEXT,
    response_body TEXT,
    bodies_truncated BOOLEAN NOT NULL
);
-- Every secondary index costs each insert (measured on SQLite: four more took a third of the
-- per-record write time), so only the lookups that need one have it: time ranges (every
-- query has one), a request id, and a key's or a team's records (tenants, spend). Other
-- filters scan the time range.
CREATE INDEX requests_started ON requests (started_at, id);
CREATE INDEX requests_request_id ON requests (request_id);
CREATE INDEX requests_key ON requests (key_name, started_at);
CREATE INDEX requests_team ON requests (team, started_at);
";

/// Virtual keys: the SHA-256 digest (hex) of each key, never the key; the previous digest and
/// its deadline after a rotation; JSON lists/maps as `TEXT`; times in Unix milliseconds.
const VIRTUAL_KEYS_V2: &str = "
CREATE TABLE virtual_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    key_sha256 TEXT NOT NULL UNIQUE,
    team TEXT,
    user_id TEXT,
    allowed_aliases TEXT,
    rpm BIGINT,
    tpm BIGINT,
    budget_usd DOUBLE PRECISION,
    budget_period TEXT,
    expires_at BIGINT,
    revoked_at BIGINT,
    previous_sha256 TEXT,
    previous_valid_until BIGINT,
    tags TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX virtual_keys_team ON virtual_keys (team);
";

/// Stored Responses API responses per tenant (`responses_state::PersistentResponseStore`):
/// JSON as `TEXT`, times in Unix milliseconds; `expires_at` drives retention.
const RESPONSES_V4: &str = "
CREATE TABLE responses (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    client_model TEXT NOT NULL,
    kept TEXT NOT NULL,
    response TEXT,
    input_items TEXT,
    previous_response_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX responses_expires ON responses (expires_at);
";

/// Stored chat completions per tenant (`stored_chat::ChatCompletionStore`): which deployment
/// made each one (OpenAI-type ones keep it upstream), its metadata as last set through the
/// gateway (`TEXT` JSON, for list filters), `created_at` in Unix microseconds (strictly
/// increasing per gateway, the list order), a tombstone time once deleted (so a list cursor
/// naming a deleted completion still resolves), `expires_at` for retention.
const CHAT_COMPLETIONS_V5: &str = "
CREATE TABLE chat_completions (
    tenant TEXT NOT NULL,
    id TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    client_model TEXT NOT NULL,
    kept_upstream BOOLEAN NOT NULL,
    metadata TEXT,
    created_at BIGINT NOT NULL,
    deleted_at BIGINT,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, id)
);
CREATE INDEX chat_completions_list ON chat_completions (tenant, created_at, id);
CREATE INDEX chat_completions_expires ON chat_completions (expires_at);
";

/// Budgets (issue 6): the settled spend and the alerts sent per budget window, and whether a
/// record's usage was estimated by the gateway (the provider reported none).
const BUDGETS_V3_SQLITE: &str = "
CREATE TABLE budget_ledger (
    scope TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    spent_nanos BIGINT NOT NULL,
    alerts_sent BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, period, period_start)
);
ALTER TABLE requests ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT 0;
";
const BUDGETS_V3_POSTGRES: &str = "
CREATE TABLE budget_ledger (
    scope TEXT NOT NULL,
    period TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    spent_nanos BIGINT NOT NULL,
    alerts_sent BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (scope, period, period_start)
);
ALTER TABLE requests ADD COLUMN usage_estimated BOOLEAN NOT NULL DEFAULT FALSE;
";

/// The request log's key and team indexes hold only the records that have a key or a team.
/// Master-key and keyless traffic has neither, and its entries (all `NULL`) served no query:
/// the key filter finds those records by principal, over the time range. Each index left out
/// of an insert saves SQLite about a twentieth of its work per record.
const REQUESTS_PARTIAL_INDEXES_V6: &str = "
DROP INDEX requests_key;
DROP INDEX requests_team;
CREATE INDEX requests_key ON requests (key_name, started_at) WHERE key_name IS NOT NULL;
CREATE INDEX requests_team ON requests (team, started_at) WHERE team IS NOT NULL;
";

/// The request-id index holds only records whose request id came from the client. A request
/// id the gateway generated is unique, so it is also the record's id (found through the
/// primary key): most traffic sends no `x-request-id`, and each such insert now skips a
/// B-tree (about a twelfth of SQLite's work per record). Lookups by request id ask
/// `id = ? OR (request_id = ? AND request_id <> id)` (see `reqlog::query`).
const REQUESTS_CLIENT_REQUEST_ID_V7: &str = "
DROP INDEX requests_request_id;
CREATE INDEX requests_request_id ON requests (request_id) WHERE request_id <> id;
";

/// Every migration, in order.
pub static MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "request log",
        sqlite: REQUESTS_V1,
        postgres: REQUESTS_V1,
    },
    Migration {
        version: 2,
        name: "virtual keys",
        sqlite: VIRTUAL_KEYS_V2,
        postgres: VIRTUAL_KEYS_V2,
    },
    Migration {
        version: 3,
        name: "budget ledger",
        sqlite: BUDGETS_V3_SQLITE,
        postgres: BUDGETS_V3_POSTGRES,
    },
    Migration {
        version: 4,
        name: "stored responses",
        sqlite: RESPONSES_V4,
        postgres: RESPONSES_V4,
    },
    Migration {
        version: 5,
        name: "stored chat completions",
        sqlite: CHAT_COMPLETIONS_V5,
        postgres: CHAT_COMPLETIONS_V5,
    },
    Migration {
        version: 6,
        name: "request log partial key and team indexes",
        sqlite: REQUESTS_PARTIAL_INDEXES_V6,
        postgres: REQUESTS_PARTIAL_INDEXES_V6,
    },
    Migration {
        version: 7,
        name: "request log index of client request ids",
        sqlite: REQUESTS_CLIENT_REQUEST_ID_V7,
        postgres: REQUESTS_CLIENT_REQUEST_ID_V7,
    },
];
