//! The runtime every bazaar process shares: typed configuration, logging, metrics, the HTTP
//! server with its health and readiness endpoints, and graceful shutdown.

pub mod config;
pub mod connections;
pub mod dead_letters;
pub mod edge;
pub mod error;
pub mod http;
pub mod log_format;
pub mod memory;
pub mod metric_help;
pub mod otel;
pub mod platform;
pub mod retention;
pub mod sampler;
pub mod schedule;
pub mod telemetry;

pub use config::settings::{Secret, ServiceName, Settings};
pub use config::sources::ConfigArgs;
pub use connections::Connections;
pub use edge::EdgeSettings;
pub use error::{ServiceError, ServiceResult};
pub use http::{ReadyCheck, ops_routes, serve, with_standard_layers};
pub use platform::{Platform, Service, Started, Task};
