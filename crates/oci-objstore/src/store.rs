//! The open store: the backend, what it can do, and the small operations
//! every module uses (get a small object, head, put, delete, list), each
//! turning backend errors into [`crate::ObjError`]s that name the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use oci_core::Result;

use crate::error::{is_not_found, store_err};

/// Which conditional writes the backend honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conditional {
    /// `PutMode::Create`: a put that fails if the object exists.
    pub create: bool,
    /// `PutMode::Update`: a put that fails unless the object is the
    /// version read.
    pub update: bool,
}

/// How many verified (key, ETag) pairs are remembered for range reads.
const VERIFIED_MAX: usize = 65_536;

/// Everything a registry handle and its writers share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) conditional: Conditional,
    /// Blob objects this process wrote or hashed whole, by key, with the
    /// ETag they had: one of them (the same ETag) is served without
    /// hashing again.
    pub(crate) verified: VerifiedObjects,
    /// Manifests read through tags (see `manifests::get_tag`).
    pub(crate) recent: crate::manifests::Recent,
}

/// What a conditional put found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Put {
    /// Written; the new version.
    Done(object_store::UpdateVersion),
    /// Not written: the object exists (`Create`) or changed (`Update`).
    Conflict,
}

impl Inner {
    /// A store over `store` whose conditional writes are `conditional`.
    pub(crate) fn new(store: Arc<dyn ObjectStore>, conditional: Conditional) -> Inner {
        Inner {
            store,
            conditional,
            verified: VerifiedObjects::default(),
            recent: crate::manifests::Recent::default(),
        }
    }

    /// A small object's bytes and metadata; `None` when absent.
    pub(crate) async fn get_small(&self, key: &Path) -> Result<Option<(Bytes, ObjectMeta)>> {
        match self.store.get(key).await {
            Ok(got) => {
                let meta = got.meta.clone();
                let bytes = got.bytes().await.map_err(store_err("read", key))?;
                Ok(Some((bytes, meta)))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_err("get", key)(e)),
        }
    }

    /// An object's metadata; `None` when absent.
    pub(crate) async fn head(&self, key: &Path) -> Result<Option<ObjectMeta>> {
        match self.store.head(key).await {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(store_err("head", key)(e)),
        }
    }

    /// Writes an object, replacing what is there.
    pub(crate) async fn put(&self, key: &Path, body: impl Into<PutPayload>) -> Result<()> {
        self.store
            .put(key, body.into())
            .await
            .map(|_| ())
            .map_err(store_err("put", key))
    }

    /// Writes an object with a precondition (`Create` or `Update`), which
    /// the caller has checked the backend honours.
    pub(crate) async fn put_if(
        &self,
        key: &Path,
        body: impl Into<PutPayload>,
        mode: PutMode,
    ) -> Result<Put> {
        let options = PutOptions {
            mode,
            ..PutOptions::default()
        };
        match self.store.put_opts(key, body.into(), options).await {
            Ok(done) => Ok(Put::Done(done.into())),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Put::Conflict),
            Err(e) => Err(store_err("put", key)(e)),
        }
    }

    /// Creates an object unless it exists: atomically where the backend
    /// can, else by a check before the write (see the crate docs).
    pub(crate) async fn create(&self, key: &Path, body: impl Into<PutPayload>) -> Result<Put> {
        if self.conditional.create {
            return self.put_if(key, body, PutMode::Create).await;
        }
        if self.head(key).await?.is_some() {
            return Ok(Put::Conflict);
        }
        self.put(key, body).await?;
        Ok(Put::Done(object_store::UpdateVersion {
            e_tag: None,
            version: None,
        }))
    }

    /// Deletes an object; one already gone is fine.
    pub(crate) async fn delete(&self, key: &Path) -> Result<()> {
        match self.store.delete(key).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(store_err("delete", key)(e)),
        }
    }

    /// Every object under `prefix`, in key order.
    pub(crate) async fn list(&self, prefix: &Path) -> Result<Vec<ObjectMeta>> {
        let mut all: Vec<ObjectMeta> = self
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(store_err("list", prefix))?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(all)
    }

    /// The "directories" directly under `prefix`, in order.
    pub(crate) async fn list_dirs(&self, prefix: &Path) -> Result<Vec<Path>> {
        let mut dirs = self
            .store
            .list_with_delimiter(Some(prefix))
            .await
            .map_err(store_err("list", prefix))?
            .common_prefixes;
        dirs.sort();
        Ok(dirs)
    }

    /// Whether the object at `key` with `e_tag` was written or hashed
    /// whole and found intact by this process.
    pub(crate) fn is_verified(&self, key: &Path, e_tag: Option<&str>) -> bool {
        self.verified.holds(key, e_tag)
    }

    /// Records that the object at `key` with `e_tag` is intact.
    pub(crate) fn record_verified(&self, key: &Path, e_tag: Option<&str>) {
        self.verified.record(key, e_tag);
    }
}

/// Blob objects known intact, by key, with their ETag; cheap to clone (a
/// read that finishes its hashing records the object it read).
#[derive(Debug, Clone, Default)]
pub(crate) struct VerifiedObjects(Arc<Mutex<HashMap<String, String>>>);

impl VerifiedObjects {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the object at `key` with `e_tag` is known intact (never
    /// without an ETag: nothing then says it is the same object).
    pub(crate) fn holds(&self, key: &Path, e_tag: Option<&str>) -> bool {
        e_tag.is_some_and(|e_tag| {
            self.lock()
                .get(key.as_ref())
                .is_some_and(|known| known == e_tag)
        })
    }

    /// Records that the object at `key` with `e_tag` is intact.
    pub(crate) fn record(&self, key: &Path, e_tag: Option<&str>) {
        let Some(e_tag) = e_tag else {
            return;
        };
        let mut verified = self.lock();
        if verified.len() >= VERIFIED_MAX {
            verified.clear();
        }
        verified.insert(key.to_string(), e_tag.to_owned());
    }
}

/// Probes which conditional writes the backend honours, with two objects
/// under `_probe/` it removes again.
pub(crate) async fn probe(store: &Arc<dyn ObjectStore>) -> Result<Conditional> {
    let inner = Inner::new(
        store.clone(),
        Conditional {
            create: true,
            update: true,
        },
    );
    let key = crate::keys::probe(&format!("{:032x}", rand::random::<u128>()));
    let create = match inner
        .put_if(&key, Bytes::from_static(b"1"), PutMode::Create)
        .await
    {
        Ok(Put::Done(_)) => matches!(
            inner
                .put_if(&key, Bytes::from_static(b"2"), PutMode::Create)
                .await,
            Ok(Put::Conflict)
        ),
        _ => false,
    };
    let update = match inner.head(&key).await? {
        Some(meta) => {
            let stale = object_store::UpdateVersion {
                e_tag: Some("\"not-the-etag\"".to_owned()),
                version: None,
            };
            let current = object_store::UpdateVersion {
                e_tag: meta.e_tag.clone(),
                version: meta.version.clone(),
            };
            let refused = matches!(
                inner
                    .put_if(&key, Bytes::from_static(b"3"), PutMode::Update(stale))
                    .await,
                Ok(Put::Conflict)
            );
            let accepted = matches!(
                inner
                    .put_if(&key, Bytes::from_static(b"4"), PutMode::Update(current))
                    .await,
                Ok(Put::Done(_))
            );
            refused && accepted
        }
        None => false,
    };
    inner.delete(&key).await?;
    Ok(Conditional { create, update })
}
