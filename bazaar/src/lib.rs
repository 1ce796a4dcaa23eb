//! bazaar as a program: the command line, the registry of services, and their assembly into
//! one process.

pub mod cli;
mod event_report;
pub mod infrastructure;
mod peers;
pub mod process;
pub mod registry;

pub use process::App;
