//! Registry wrappers that restrict what reaches the inner registry.
//!
//! Each holds an inner `Arc<dyn Registry>`, does one thing and forwards
//! the rest (`Registry::forward_to`), so they stack freely and any stack
//! can be served by `oci-server`. All but `Immutable` are one wrapper,
//! [`Guarded`], over a small [`Policy`]:
//!
//! - [`ReadOnly`]: reads and lists pass, writes and deletes are `DENIED`;
//! - [`Immutable`]: tags never move once set, nothing is deleted;
//! - [`Prefix`]: serves the inner registry's `prefix/…` namespace as the root;
//! - [`AccessChecker`]: a user function decides each call;
//! - [`Select`]: an allow-list of repositories; others look absent.
//!
//! ```
//! use std::sync::Arc;
//! use oci_core::Registry;
//! use oci_filter::{Prefix, ReadOnly};
//!
//! let store: Arc<dyn Registry> = Arc::new(oci_mem::MemRegistry::new());
//! let tenant: Arc<dyn Registry> = Arc::new(Prefix::new(store, "tenants/acme".parse().unwrap()));
//! let public = ReadOnly::new(tenant);
//! # let _ = public;
//! ```

mod guard;
mod immutable;
mod policies;

pub use guard::{Access, Guarded, Listed, Policy};
pub use immutable::Immutable;
pub use policies::{
    AccessChecker, CheckFn, FnPolicy, Prefix, PrefixPolicy, ReadOnly, ReadOnlyPolicy, Select,
    SelectPolicy,
};
