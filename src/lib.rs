//! hangup
#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

mod close;
mod config;
mod conn;
mod handle;
mod handler;
mod reactor;
mod sys;
mod timer;

pub use close::CloseReason;
pub use config::{Config, Keepalive};
pub use conn::{Conn, ConnId};
pub use handle::Handle;
pub use handler::Handler;
pub use reactor::Reactor;
