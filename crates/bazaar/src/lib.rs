//! bazaar as a program: the command line, and the assembly of services into one process.

pub mod app;
pub mod cli;
mod events;
pub mod platform;

pub use app::App;
