//! The Firecracker-compatible REST API on a Unix socket: [`http`] parses
//! requests, [`request`] turns them into typed [`ApiRequest`]s, [`server`]
//! serves the socket on a thread of its own and hands each request to the
//! VMM thread ([`crate::controller`]), which alone decides and acts.

pub mod devices;
pub mod http;
pub mod request;
pub mod server;

pub use request::{route, ActionType, ApiRequest, MachineConfigUpdate, VmState};
pub use server::ApiServer;
