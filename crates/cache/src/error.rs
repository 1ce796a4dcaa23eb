//! The crate's error type.

/// Errors from a cache backend. Callers usually treat any of them as a miss and carry on, except
/// for rate limits, which must decide whether to fail open or closed.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend could not be reached (connection refused, dropped, or timed out).
    #[error("cache backend unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error (e.g. a counter key holding a non-integer).
    #[error("cache backend error: {0}")]
    Backend(String),
    /// The connection settings are invalid (e.g. a malformed Redis URL).
    #[error("invalid cache configuration: {0}")]
    Config(String),
    /// A value could not be serialised for storage.
    #[error("could not encode cached value: {0}")]
    Encode(String),
}
