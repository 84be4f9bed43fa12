//! placeholder
/// The access key id of the mock's published test credentials.
pub const BEDROCK_ACCESS_KEY_ID: &str = "AKIDMOCKSWITCHYARD01";
/// The secret of the mock's published test credentials (not a secret: it only opens the mock).
pub const BEDROCK_SECRET_ACCESS_KEY: &str = "mock/Secret+Key/ForSigV4Checks0000000000";
