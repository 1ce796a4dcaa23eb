//! Per-request batch loaders, the machinery every slice's loader shares: one loader per
//! request, acting as its caller and caching for that request only, so every `order.user` and
//! `order.items.product` of one response resolves through one internal call per kind, not one
//! per row. A list resolver can prime a loader with one batched call for the whole page (see
//! `orders::prime`).

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use futures::future::BoxFuture;

/// A slice's loader as it sits in the request's data.
pub type Batched<L> = DataLoader<L, HashMapCache>;

/// Wraps `loader` (which acts as one request's caller) for that request.
pub fn for_request<L: Send + Sync + 'static>(loader: L) -> Batched<L> {
    DataLoader::with_cache(loader, spawn_batch, HashMapCache::default())
}

/// The request's loader of kind `L` (put there by `schema::request_data`).
pub fn of<'a, L: Send + Sync + 'static>(ctx: &Context<'a>) -> &'a Batched<L> {
    ctx.data_unchecked::<Batched<L>>()
}

/// Runs a loader's batch on its own task; while tracing, in the trace of the request that
/// asked for it, so the batch's service call joins that trace instead of starting one.
fn spawn_batch(batch: BoxFuture<'static, ()>) -> tokio::task::JoinHandle<()> {
    if bazaar_bus::trace::enabled() {
        tokio::spawn(bazaar_bus::trace::in_current_trace(batch))
    } else {
        tokio::spawn(batch)
    }
}
