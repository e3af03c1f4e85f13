//! The policies: read-only, a user's access check, an allow-list, and a
//! prefix.

use std::borrow::Cow;
use std::sync::Arc;

use oci_core::{Error, ErrorCode, Registry, RepoName, Result};

use crate::guard::{Access, Guarded, Listed, Policy};

/// Lets reads and lists through; every write and delete is `DENIED`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadOnlyPolicy;

impl Policy for ReadOnlyPolicy {
    fn check(&self, repo: &RepoName, access: Access) -> Result<()> {
        match access {
            Access::Read | Access::List => Ok(()),
            Access::Write | Access::Delete => Err(Error::new(
                ErrorCode::Denied,
                format!("the registry is read-only: cannot modify {repo}"),
            )),
        }
    }
}

/// A registry that can be read but not changed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use oci_core::{Registry, ErrorCode};
/// let ro = oci_filter::ReadOnly::new(Arc::new(oci_mem::MemRegistry::new()));
/// let repo = "a/b".parse().unwrap();
/// let err = ro.push_blob_chunked(&repo).await.err().unwrap();
/// assert!(err.is(ErrorCode::Denied));
/// # }
/// ```
pub type ReadOnly = Guarded<ReadOnlyPolicy>;

impl Guarded<ReadOnlyPolicy> {
    /// Wraps `inner` read-only.
    pub fn new(inner: Arc<dyn Registry>) -> ReadOnly {
        Guarded::with_policy(inner, ReadOnlyPolicy)
    }
}

/// The user's check, `(repository, access) -> Result<()>`.
pub type CheckFn = dyn Fn(&RepoName, Access) -> Result<()> + Send + Sync;

/// A policy made of a user function.
pub struct FnPolicy(Box<CheckFn>);

impl Policy for FnPolicy {
    fn check(&self, repo: &RepoName, access: Access) -> Result<()> {
        (self.0)(repo, access)
    }
}

/// A registry that consults a user function before every call. A mount
/// checks `Read` on the source and `Write` on the target; the catalog
/// lists only repositories the function lets be read.
///
/// ```
/// use std::sync::Arc;
/// use oci_core::{Error, ErrorCode};
/// use oci_filter::{Access, AccessChecker};
/// let checked = AccessChecker::new(Arc::new(oci_mem::MemRegistry::new()), |repo, access| {
///     if access == Access::Delete && repo.as_str().starts_with("prod/") {
///         return Err(Error::new(ErrorCode::Denied, "no deletes in prod"));
///     }
///     Ok(())
/// });
/// # let _ = checked;
/// ```
pub type AccessChecker = Guarded<FnPolicy>;

impl Guarded<FnPolicy> {
    /// Wraps `inner` with the check `f`.
    pub fn new<F>(inner: Arc<dyn Registry>, f: F) -> AccessChecker
    where
        F: Fn(&RepoName, Access) -> Result<()> + Send + Sync + 'static,
    {
        Guarded::with_policy(inner, FnPolicy(Box::new(f)))
    }
}

/// An allow-list over repository names: other repositories look absent to
/// reads and lists (`NAME_UNKNOWN`) and are `DENIED` to writes and deletes.
pub struct SelectPolicy(Box<dyn Fn(&RepoName) -> bool + Send + Sync>);

impl Policy for SelectPolicy {
    fn check(&self, repo: &RepoName, access: Access) -> Result<()> {
        if (self.0)(repo) {
            return Ok(());
        }
        match access {
            Access::Read | Access::List => Err(Error::new(
                ErrorCode::NameUnknown,
                format!("repository {repo} is not known"),
            )),
            Access::Write | Access::Delete => Err(Error::new(
                ErrorCode::Denied,
                format!("repository {repo} is not open for changes"),
            )),
        }
    }
}

/// A registry that exposes only the repositories a predicate allows.
pub type Select = Guarded<SelectPolicy>;

impl Guarded<SelectPolicy> {
    /// Wraps `inner`, allowing only names for which `allow` is true.
    pub fn new<F>(inner: Arc<dyn Registry>, allow: F) -> Select
    where
        F: Fn(&RepoName) -> bool + Send + Sync + 'static,
    {
        Guarded::with_policy(inner, SelectPolicy(Box::new(allow)))
    }
}

/// Serves the inner registry's `prefix/…` namespace as the root: lets
/// every call through, under the prefixed name.
#[derive(Debug, Clone)]
pub struct PrefixPolicy(RepoName);

impl Policy for PrefixPolicy {
    fn check(&self, _: &RepoName, _: Access) -> Result<()> {
        Ok(())
    }

    fn name_in<'a>(&self, repo: &'a RepoName) -> Result<Cow<'a, RepoName>> {
        repo.prefixed(&self.0).map(Cow::Owned)
    }

    // The prefix's part of the sorted inner catalog starts after `prefix/`
    // (or `prefix/last`) and ends at the first name outside it.
    fn catalog_after(&self, last: Option<&str>) -> Option<String> {
        Some(match last {
            Some(last) => format!("{}/{last}", self.0),
            None => format!("{}/", self.0),
        })
    }

    fn name_out(&self, inner: RepoName) -> Listed {
        match inner.strip_prefix(&self.0) {
            Some(name) => Listed::Shown(name),
            None => Listed::End,
        }
    }
}

/// Serves `inner`'s repositories below `prefix/` as if they were at the
/// root: `app` here is `prefix/app` there, and the catalog lists only
/// the repositories below `prefix/`, without it.
///
/// ```
/// use std::sync::Arc;
/// let tenant = oci_filter::Prefix::new(Arc::new(oci_mem::MemRegistry::new()), "tenants/acme".parse().unwrap());
/// # let _ = tenant;
/// ```
pub type Prefix = Guarded<PrefixPolicy>;

impl Guarded<PrefixPolicy> {
    /// Wraps `inner` under `prefix`.
    pub fn new(inner: Arc<dyn Registry>, prefix: RepoName) -> Prefix {
        Guarded::with_policy(inner, PrefixPolicy(prefix))
    }
}
