//! bazaar as a program: the command line, the registry of services, and their assembly into
//! one process.

pub mod cli;
mod event_report;
pub mod infrastructure;
mod peers;
pub mod process;
pub mod registry;

pub use process::App;

/// mimalloc instead of glibc's malloc for every program built on this crate (`bazaar`, the
/// bench, the tests). A profile of the read phase put a fifth of the process in glibc's
/// malloc and free, and more in futex waits on its arena locks, which many tokio worker
/// threads allocating and freeing each other's buffers contend for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
