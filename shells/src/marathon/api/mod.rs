//! The REST API on the marathon port: `/v2/*`, `/ping`, `/metrics`, the event stream and the
//! web UI. Routing is by path segments after collapsing `//` (marathon-python sends
//! `/v2/apps//x`), so app ids with several segments route like Marathon's.

pub mod errors;
pub mod query;
pub mod routes;
