//! ocidist: pull, copy, inspect and serve OCI images and artifacts.
//!
//! The command-line tool is a thin layer over this library (its
//! argument parsing and commands live in the binary). Its main
//! library face is [`puller::Puller`], which resolves a reference to one
//! platform's image and writes it as a `docker save` tarball or an OCI
//! layout, downloading layers in parallel straight into place.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use ocidist::puller::Puller;
//!
//! let store = Arc::new(oci_mem::MemRegistry::new());
//! ocidist::demo::seed(store.as_ref()).await.unwrap();
//! let reference = "localhost/demo/hello:latest".parse().unwrap();
//! let resolved = Puller::new(store)
//!     .resolve(&reference, &"linux/arm64".parse().unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(resolved.image.layers.len(), 1);
//! # }
//! ```

pub mod archive;
pub mod artifact;
pub mod connect;
pub mod copy;
pub mod decode;
pub mod demo;
pub mod export;
pub mod failure;
pub mod login;
pub mod progress;
pub mod puller;
pub mod pusher;
pub mod referrers;
pub mod resume;
#[cfg(feature = "server")]
pub mod server_auth;
pub mod staged;
#[cfg(feature = "server")]
pub mod storage;
pub mod summary;

/// The README's Rust snippets, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
