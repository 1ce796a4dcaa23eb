//! Integration tests of the orders service over its internal API, on the embedded platform.

mod lifecycle;
mod placing;
mod saga;
mod support;
