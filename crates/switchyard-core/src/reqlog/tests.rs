//! Request log tests.
