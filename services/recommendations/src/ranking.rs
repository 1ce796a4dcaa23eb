//! The recommendations service's one query: ranking products for a caller, co-purchases
//! first, topped up with best sellers.

use bazaar_contracts::Principal;
use bazaar_runtime::ServiceResult;

use crate::app::Recommendations;
use crate::domain::First;
use crate::store::{self, Ranked};

impl Recommendations {
    /// Product ids for the caller, best first (see [`Recommendations::ranked`]).
    pub async fn for_caller(
        &self,
        principal: &Principal,
        first: i64,
    ) -> ServiceResult<Vec<String>> {
        let first = First::parse(first)?;
        let user_id = principal.user.as_ref().map(|u| u.id.as_str());
        let ranked = self.ranked(user_id, first).await?;
        Ok(ranked.into_iter().map(|(id, _)| id).collect())
    }

    /// Up to `first` products with their names for `user_id` (anonymous: `None`): products
    /// co-purchased with theirs, then best sellers, never what they bought nor anything
    /// withdrawn, out of stock or unknown to the replica.
    pub async fn ranked(&self, user_id: Option<&str>, first: First) -> ServiceResult<Vec<Ranked>> {
        let limit = first.get();
        let mut conn = self.db.pool().acquire().await?;
        let mut ranked = match user_id {
            Some(user) => store::co_purchased(&mut conn, user, limit).await?,
            None => Vec::new(),
        };
        let missing = limit - ranked.len() as i64;
        if missing > 0 {
            // Best sellers may repeat co-purchased products: ask for enough to skip those.
            let sellers = store::best_sellers(&mut conn, user_id, limit).await?;
            let fill: Vec<Ranked> = sellers
                .into_iter()
                .filter(|(id, _)| !ranked.iter().any(|(have, _)| have == id))
                .take(missing as usize)
                .collect();
            ranked.extend(fill);
        }
        Ok(ranked)
    }
}
