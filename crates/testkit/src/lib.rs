//! Dev-only test kit shared by every crate's tests, so no crate copies a helper from another:
//! throwaway servers and databases, waiting, the skip-or-fail rule for missing backends, and
//! (feature `service`) the embedded platform, fakes and scenario runner of the services' tests.

mod daemon;
pub mod database;
mod lcg;
pub mod nats;
pub mod pki;
pub mod postgres;
pub mod redis;
mod skip;
pub mod wait;

#[cfg(feature = "service")]
pub mod events;
#[cfg(feature = "service")]
pub mod fakes;
#[cfg(feature = "service")]
pub mod fixtures;
#[cfg(feature = "service")]
pub mod platform;
#[cfg(feature = "service")]
pub mod scenario;

pub(crate) use daemon::run;
pub use daemon::{Daemon, free_port, wait_for_port};
pub use database::TestDatabase;
pub use lcg::Lcg;
pub use pki::{LocalPki, Pki};
pub use skip::{backends_required, binary, skip};
pub use wait::{eventually, eventually_within, until};

#[cfg(feature = "service")]
pub use platform::{Backend, TestPlatform};
#[cfg(feature = "service")]
pub use scenario::{Harness, scenario};
