//! Limits on WebSocket sessions: messages no larger than a request body, a bounded number of
//! subscriptions per connection, `connection_init` within a deadline, and a bounded number of
//! open connections per client address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bazaar_runtime::Settings;

#[derive(Clone)]
pub struct WsLimits {
    pub max_message_bytes: usize,
    pub max_subscriptions: usize,
    pub init_timeout: Duration,
    max_per_ip: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One open connection, counted against its address until dropped.
pub struct Admitted {
    ip: Option<IpAddr>,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let Some(ip) = self.ip else { return };
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&ip);
            }
        }
    }
}

impl WsLimits {
    pub fn new(settings: &Settings) -> Self {
        WsLimits {
            max_message_bytes: settings.max_body_bytes,
            max_subscriptions: settings.ws_max_subscriptions,
            init_timeout: settings.ws_init_timeout,
            max_per_ip: settings.ws_max_connections_per_ip,
            open: Arc::default(),
        }
    }

    /// Counts a new connection from `ip`; `None` when that address already holds the
    /// maximum (answer with [`refused`]).
    pub fn admit(&self, ip: Option<IpAddr>) -> Option<Admitted> {
        if let Some(ip) = ip {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            let n = open.entry(ip).or_default();
            if *n >= self.max_per_ip {
                return None;
            }
            *n += 1;
        }
        Some(Admitted {
            ip,
            open: self.open.clone(),
        })
    }
}

/// The answer to a connection over `ws_max_connections_per_ip`: 429, GraphQL-shaped.
pub fn refused() -> Response {
    crate::body::error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        "too many open WebSocket connections from this address",
        Some("ws_max_connections_per_ip"),
    )
}
