//! The payment provider seam: orders charge and refund through this trait, so a real
//! processor (or a test double) can be swapped in. `SimulatedPayments` is the built-in stand-in.

use async_trait::async_trait;
use bazaar_db::new_id;

/// A successful charge; its id is kept on the order so that a cancellation can refund it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// The card was refused: a business outcome shown to the customer, not a failure.
    #[error("{0}")]
    Declined(String),
    /// The token is not one the provider knows: the client sent something wrong.
    #[error("{0}")]
    InvalidToken(String),
    /// The provider could not be reached; the outcome is unknown and retrying is safe.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Charges `amount_cents` with `token`. `order_id` lets a real provider deduplicate retries.
    async fn charge(
        &self,
        order_id: &str,
        amount_cents: i64,
        token: &str,
    ) -> Result<Charge, PaymentError>;

    /// Gives back the whole of a charge.
    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError>;
}

/// Stripe's test tokens: `tok_visa` succeeds, `tok_chargeDeclined` is declined, anything else
/// is an invalid token. One of our own, `tok_refundUnavailable`, charges like `tok_visa` but
/// its refunds fail as if the provider were down for the first 2 seconds after the charge,
/// so that retried refunds can be seen working end to end.
pub struct SimulatedPayments;

/// How long refunds of a `tok_refundUnavailable` charge fail.
const FLAKY_REFUNDS_MS: i64 = 2_000;

#[async_trait]
impl PaymentProvider for SimulatedPayments {
    async fn charge(
        &self,
        order_id: &str,
        amount_cents: i64,
        token: &str,
    ) -> Result<Charge, PaymentError> {
        match token {
            "tok_visa" => {
                tracing::info!(order_id, amount_cents, "simulated charge succeeded");
                Ok(Charge {
                    id: format!("ch_sim_{}", new_id()),
                })
            }
            "tok_refundUnavailable" => Ok(Charge {
                id: format!("ch_sim_flaky_{}_{}", bazaar_db::now_millis(), new_id()),
            }),
            "tok_chargeDeclined" => Err(PaymentError::Declined("Your card was declined.".into())),
            _ => Err(PaymentError::InvalidToken(
                "paymentToken: unknown payment token".into(),
            )),
        }
    }

    async fn refund(&self, charge_id: &str) -> Result<(), PaymentError> {
        let charged_at = charge_id
            .strip_prefix("ch_sim_flaky_")
            .and_then(|rest| rest.split('_').next()?.parse::<i64>().ok());
        if charged_at.is_some_and(|at| bazaar_db::now_millis() < at + FLAKY_REFUNDS_MS) {
            return Err(PaymentError::Unavailable(
                "simulated provider outage for refunds".into(),
            ));
        }
        tracing::info!(charge_id, "simulated refund");
        Ok(())
    }
}
