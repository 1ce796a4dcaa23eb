//! The live feed: published events broadcast in process to listeners, each of one source.

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::{Envelope, LiveEvents};

/// The events of `source` published from now on, as `live` hands them out.
pub(super) fn of_source(live: &broadcast::Sender<Envelope>, source: &str) -> LiveEvents {
    let source = source.to_owned();
    let events = live_stream(live.subscribe());
    Box::pin(events.filter(move |e| std::future::ready(e.source == source)))
}

/// A broadcast receiver as a stream that skips what a slow listener missed.
fn live_stream(rx: broadcast::Receiver<Envelope>) -> impl futures::Stream<Item = Envelope> {
    use broadcast::error::RecvError;
    futures::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => return Some((event, rx)),
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return None,
            }
        }
    })
}
