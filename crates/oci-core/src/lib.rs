//! The core of ocidist: the object-safe async [`Registry`] trait that every
//! store, client and wrapper implements, and the types they share —
//! digests, descriptors, manifests kept as raw bytes, references, and the
//! spec's error codes.
//!
//! ```
//! use oci_core::{Digest, Manifest, Reference, media};
//!
//! let r: Reference = "localhost:5000/app:v1".parse().unwrap();
//! assert_eq!(r.repository().as_str(), "app");
//!
//! let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
//! let m = Manifest::from_json(body.to_vec()).unwrap();
//! assert_eq!(m.media_type(), media::OCI_INDEX);
//! assert_eq!(*m.digest(), Digest::sha256(body));
//! ```

pub mod descriptor;
pub mod digest;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod media;
pub mod pipe;
pub mod reference;
pub mod registry;
pub mod retry;
pub mod tee;
pub mod upload_id;
pub mod verify;
pub mod wire;

#[cfg(feature = "testkit")]
pub mod testkit;

pub use async_trait::async_trait;
pub use descriptor::{Descriptor, Platform};
pub use digest::{Algorithm, Digest, Verifier};
pub use error::{Error, ErrorBody, ErrorCode, Result};
pub use manifest::{ImageIndex, ImageManifest, Manifest, ParsedManifest, Required};
pub use reference::{ManifestRef, Reference, RepoName, Tag};
pub use registry::{
    BlobReader, BlobStream, BlobWriter, ByteRange, ListOptions, ListStream, RangeRequest, Registry,
};
pub use verify::VerifyStream;
