//! Black-box HTTP tests of the server over loopback: what is special to the
//! server (ranges, upload sessions, manifest validation and negotiation,
//! pagination, error bodies), not the full conformance workflows.

#![allow(clippy::unwrap_used)]

mod blobs;
mod errors;
mod garbage;
mod limits;
mod lists;
mod manifests;
mod quirks;
mod serving;
mod support;
mod uploads;
