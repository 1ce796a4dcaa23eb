//! One test body run against a fresh harness that is always shut down, pass or fail (so a
//! failing test does not leave its PostgreSQL database behind), and the macro that defines a
//! scenario as a test on SQLite and on PostgreSQL.

use std::panic::AssertUnwindSafe;

use futures::FutureExt;

/// A running service under test that can be stopped and cleaned up.
pub trait Harness {
    fn shutdown(self) -> impl Future<Output = ()>;
}

/// Runs `body` against `harness`, then shuts the harness down and re-raises a failure.
pub async fn scenario<H: Harness>(harness: H, body: impl AsyncFnOnce(&H)) {
    let outcome = AssertUnwindSafe(body(&harness)).catch_unwind().await;
    harness.shutdown().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Defines each scenario `async fn name(t: &H)` as a test in `mod sqlite` and `mod postgres`,
/// on a harness made by `start`: `start(Backend, ...)` gives `Option<H>` (`None` after a
/// skip). Arguments after the backend follow the name: `name(MailMode::Smtp)`; paths in
/// them are seen from inside those modules, so name them from the crate root.
#[macro_export]
macro_rules! on_every_backend {
    (start = $start:path; $($name:ident $(($($arg:expr),*))?),* $(,)?) => {
        mod sqlite {
            $( $crate::on_every_backend!(@test $start, $name, Sqlite, ($($($arg),*)?)); )*
        }
        mod postgres {
            $( $crate::on_every_backend!(@test $start, $name, Postgres, ($($($arg),*)?)); )*
        }
    };
    (@test $start:path, $name:ident, $backend:ident, ($($arg:expr),*)) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            let backend = $crate::Backend::$backend;
            if let Some(harness) = $start(backend $(, $arg)*).await {
                $crate::scenario(harness, super::$name).await;
            }
        }
    };
}
