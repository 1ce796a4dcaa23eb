//! The dead-letter operations every service exposes, for operators: list a service's dead
//! letters, and redrive one. Unlike the other routes they live under the service's name
//! (`/internal/<service>/<op>`), so that one process serving several services routes each
//! service's own.

use bazaar_bus::DeadLetter;
use serde::{Deserialize, Serialize};

use crate::{ApiError, Empty, Principal, ServiceClient};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetterIdRequest {
    pub id: String,
}

routes! {
    /// The service's dead letters (admins only).
    query DeadLetters = "dead-letters": Empty => Vec<DeadLetter>;
    /// Applies a dead letter again through the consumer that gave up on it; answers false when
    /// there is no such dead letter (admins only).
    command RedriveDeadLetter = "redrive-dead-letter": DeadLetterIdRequest => bool;
}

/// Typed calls to the dead-letter operations of the service `0` calls.
#[derive(Clone)]
pub struct DeadLetterClient(pub ServiceClient);

impl DeadLetterClient {
    pub async fn list(&self, p: &Principal) -> Result<Vec<DeadLetter>, ApiError> {
        let service = self.0.service();
        self.0
            .call_under::<DeadLetters>(service, p, &Empty {})
            .await
    }

    pub async fn redrive(&self, p: &Principal, id: &str) -> Result<bool, ApiError> {
        let req = DeadLetterIdRequest { id: id.to_owned() };
        let service = self.0.service();
        self.0
            .call_under::<RedriveDeadLetter>(service, p, &req)
            .await
    }
}
