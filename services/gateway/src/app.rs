//! The gateway's name and state: what its HTTP and WebSocket handlers share.

use std::sync::Arc;

use bazaar_runtime::ServiceName;

use crate::edge::Edge;
use crate::websocket;

/// The service's name (`bazaar serve --services gateway`).
pub const NAME: ServiceName = ServiceName::new("gateway");

/// What every public request is served with; cheap to clone.
#[derive(Clone)]
pub(crate) struct Gateway {
    pub edge: Arc<Edge>,
    pub max_body_bytes: usize,
    pub ws: websocket::WsLimits,
}
