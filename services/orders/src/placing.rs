//! Placing an order: parse the request, price it from the catalogue now, pick the shipping
//! address, and commit the PENDING order, its idempotency key and `OrderPlaced` together.

use std::collections::HashMap;

use bazaar_contracts::catalog::{Product, ProductsByIdRequest};
use bazaar_contracts::events::{Event, OrderPlaced};
use bazaar_contracts::orders::{Order, OrderItem, PlaceOrderRequest};
use bazaar_contracts::users::Address;
use bazaar_contracts::{ApiError, Principal};
use bazaar_db::{new_id, now_millis};
use bazaar_runtime::{ServiceError, ServiceResult};

use crate::app::Orders;
use crate::app::SERVICE;
use crate::domain::{self, IdempotencyKey, OrderLines, order_total, request_hash};
use crate::store::{self, NewOrder};

impl Orders {
    pub async fn place_order(
        &self,
        principal: &Principal,
        req: PlaceOrderRequest,
    ) -> ServiceResult<Order> {
        // The buyer is whoever is signed in; a request cannot name someone else.
        let buyer = principal.require_user()?.id.clone();
        let lines = OrderLines::parse(&req.items)?;
        let given = req
            .shipping_address
            .as_ref()
            .map(|a| domain::address(a, "input.shippingAddress"))
            .transpose()?;
        let key = req
            .idempotency_key
            .as_deref()
            .map(IdempotencyKey::parse)
            .transpose()?;
        let hash = request_hash(&lines, given.as_ref());
        // Fast path for a plain retry: no catalogue call, no write.
        if let Some(key) = &key
            && let Some(order) = self.replay(&buyer, key, &hash).await?
        {
            return Ok(order);
        }

        let admitted = self.backlog.admit().await?;
        // Pricing and the profile lookup are independent calls: make them at once.
        let (items, address) = match given {
            Some(address) => (self.price(&lines).await, Ok(address)),
            None => tokio::join!(self.price(&lines), self.profile_address(principal, &buyer)),
        };
        let (items, address, address_from_profile) =
            (items?, address?, req.shipping_address.is_none());
        let total_cents = order_total(items.iter().map(|i| (i.quantity, i.unit_price_cents)))?;

        let id = new_id();
        let mut tx = self.outbox.begin().await?;
        // Unpaid orders hold stock until they are paid or time out: a cap per customer keeps
        // one account from holding the whole stock. Counted inside the write transaction,
        // which holds the customer's lock, so concurrent requests cannot all pass the count.
        let open = store::open_orders(&mut tx, self.db.dialect(), &buyer).await?;
        if open >= self.max_open_orders {
            return Err(ApiError::conflict(format!(
                "you already have {open} unpaid orders; pay or cancel one before placing another"
            ))
            .into());
        }
        if let Some(key) = &key {
            match store::insert_key(&mut tx, &buyer, key.as_str(), &hash, &id).await {
                Ok(()) => {}
                // A concurrent request with this key committed first: answer as it did.
                Err(e) if e.is_unique_violation() => {
                    tx.rollback().await?;
                    return self.replay(&buyer, key, &hash).await?.ok_or_else(|| {
                        ServiceError::Internal(format!(
                            "idempotency key of {buyer} claimed but not readable"
                        ))
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        let new = NewOrder {
            id: &id,
            user_id: &buyer,
            total_cents,
            shipping_address: &address,
            address_from_profile,
            items,
            now: now_millis(),
        };
        let order = store::insert_order(&mut tx, new).await?;
        let placed = OrderPlaced {
            order_id: order.id.clone(),
            user_id: order.user_id.clone(),
            items: order.items.clone(),
            total_cents: order.total_cents,
            placed_at: order.created_at,
        };
        tx.emit(&placed.envelope(SERVICE)).await?;
        tx.commit().await?;
        admitted.committed();
        tracing::info!(order_id = %order.id, user_id = %order.user_id, total_cents, "order placed");
        Ok(order)
    }

    /// The order an earlier request with this key created: `Some` for the same request,
    /// CONFLICT for a different one, `None` when the key is unused.
    async fn replay(
        &self,
        buyer: &str,
        key: &IdempotencyKey,
        hash: &str,
    ) -> ServiceResult<Option<Order>> {
        let mut conn = self.db.pool().acquire().await?;
        let Some(stored) = store::find_key(&mut conn, buyer, key.as_str()).await? else {
            return Ok(None);
        };
        if stored.request_hash != hash {
            return Err(ApiError::conflict(
                "idempotency key already used with a different request",
            )
            .into());
        }
        let order = store::order_by_id(&mut conn, &stored.order_id)
            .await?
            .ok_or_else(|| {
                ServiceError::Internal(format!(
                    "idempotency key points at missing order {}",
                    stored.order_id
                ))
            })?;
        Ok(Some(order.order))
    }

    /// Names and prices from the catalogue as they are now; the order keeps this snapshot.
    async fn price(&self, lines: &OrderLines) -> ServiceResult<Vec<OrderItem>> {
        let request = ProductsByIdRequest {
            ids: lines.product_ids(),
            include_deleted: false,
        };
        let products = self
            .catalog
            .products_by_id(&Principal::anonymous(), &request)
            .await?;
        let by_id: HashMap<&str, &Product> = products
            .iter()
            .filter(|p| p.deleted_at.is_none())
            .map(|p| (p.id.as_str(), p))
            .collect();
        lines
            .lines()
            .iter()
            .map(|line| {
                let Some(product) = by_id.get(line.product_id.as_str()) else {
                    let field = format!("input.items[{}].productId", line.index);
                    let message = format!("product {} does not exist", line.product_id);
                    return Err(ApiError::bad_input(field, message).into());
                };
                Ok(OrderItem {
                    product_id: product.id.clone(),
                    name: product.name.clone(),
                    quantity: line.quantity.get(),
                    unit_price_cents: product.effective_price_cents, // the promotion price, if any
                })
            })
            .collect()
    }

    /// The address on the buyer's profile as the users service has it now. The replica of its
    /// events may lag a profile saved a moment ago (read-your-writes), so it only stands in
    /// when the users service cannot answer.
    async fn profile_address(&self, principal: &Principal, buyer: &str) -> ServiceResult<Address> {
        let current = match self.users.user(principal, buyer).await {
            Ok(Some(user)) => Some(user.address),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(user_id = buyer, error = %e.message, "users service unavailable; using the replicated profile");
                None
            }
        };
        let address = match current {
            Some(address) => address,
            None => {
                let mut conn = self.db.pool().acquire().await?;
                store::customer_address(&mut conn, buyer).await?
            }
        };
        address.ok_or_else(|| {
            ApiError::bad_input(
                "input.shippingAddress",
                "no shipping address given and none on your profile",
            )
            .into()
        })
    }
}
