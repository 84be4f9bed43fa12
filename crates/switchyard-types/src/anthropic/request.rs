//! Placeholder until the translation lands.
