//! What a request asks for and who asks: [`Actions`] on a repository, a
//! token-style [`Scope`] (`repository:NAME:pull,push`, `registry:catalog:*`)
//! and the caller's [`Identity`].

use std::fmt;

use oci_core::RepoName;

use crate::AuthError;

/// A set of the actions the distribution token spec names: `pull`, `push`
/// and `delete`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Actions(u8);

impl Actions {
    /// No action.
    pub const NONE: Actions = Actions(0);
    /// Reading manifests, blobs, tags and referrers.
    pub const PULL: Actions = Actions(1);
    /// Pushing blobs and manifests.
    pub const PUSH: Actions = Actions(2);
    /// Deleting manifests, tags and blobs.
    pub const DELETE: Actions = Actions(4);
    /// Every action.
    pub const ALL: Actions = Actions(7);

    const NAMES: [(Actions, &'static str); 3] = [
        (Actions::PULL, "pull"),
        (Actions::PUSH, "push"),
        (Actions::DELETE, "delete"),
    ];

    /// Whether every action of `other` is in this set.
    pub fn contains(self, other: Actions) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The actions in either set.
    pub fn union(self, other: Actions) -> Actions {
        Actions(self.0 | other.0)
    }

    /// The actions in both sets.
    pub fn intersect(self, other: Actions) -> Actions {
        Actions(self.0 & other.0)
    }

    /// The actions of this set that `other` lacks.
    pub fn without(self, other: Actions) -> Actions {
        Actions(self.0 & !other.0)
    }

    /// One action by its name (`pull`, `push`, `delete`; `*` is all).
    pub fn from_name(name: &str) -> Option<Actions> {
        if name == "*" {
            return Some(Actions::ALL);
        }
        Actions::NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(a, _)| *a)
    }

    /// Parses a comma-separated list as in a scope (`pull,push`). Names
    /// that are not actions of ours are ignored, as distribution does.
    pub fn parse_list(list: &str) -> Actions {
        list.split(',')
            .filter_map(|n| Actions::from_name(n.trim()))
            .fold(Actions::NONE, Actions::union)
    }

    /// The names of the actions in this set, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Actions::NAMES
            .iter()
            .filter(|(a, _)| self.contains(*a))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(","))
    }
}

impl fmt::Debug for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actions({self})")
    }
}

/// What a scope item is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Resource {
    /// One repository.
    Repository(RepoName),
    /// The registry's catalog (`registry:catalog:*`).
    Catalog,
}

/// One resource and the actions asked for (or granted) on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeItem {
    /// The repository, or the catalog.
    pub resource: Resource,
    /// The actions; for the catalog, [`Actions::ALL`] stands for `*`.
    pub actions: Actions,
}

impl ScopeItem {
    /// `repository:NAME:ACTIONS`.
    pub fn repository(repo: RepoName, actions: Actions) -> ScopeItem {
        ScopeItem {
            resource: Resource::Repository(repo),
            actions,
        }
    }

    /// `registry:catalog:*`.
    pub fn catalog() -> ScopeItem {
        ScopeItem {
            resource: Resource::Catalog,
            actions: Actions::ALL,
        }
    }

    /// Parses one scope string. `Ok(None)` for a resource type this
    /// registry does not know (ignored, as distribution does); an error for
    /// a repository name that is not valid.
    pub fn parse(text: &str) -> Result<Option<ScopeItem>, AuthError> {
        let bad = || AuthError::BadRequest(format!("scope {text:?} is not TYPE:NAME:ACTIONS"));
        let (kind, rest) = text.split_once(':').ok_or_else(bad)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(bad)?;
        match kind {
            "repository" => {
                let repo: RepoName = name.parse().map_err(|_| {
                    AuthError::BadRequest(format!("scope {text:?} names an invalid repository"))
                })?;
                Ok(Some(ScopeItem::repository(
                    repo,
                    Actions::parse_list(actions),
                )))
            }
            "registry" if name == "catalog" => Ok(Some(ScopeItem::catalog())),
            _ => Ok(None),
        }
    }
}

impl fmt::Display for ScopeItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.resource {
            Resource::Repository(repo) => write!(f, "repository:{repo}:{}", self.actions),
            Resource::Catalog => f.write_str("registry:catalog:*"),
        }
    }
}

/// The access a request needs (or a token grants): several scope items.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Scope {
    /// The items, in the order asked.
    pub items: Vec<ScopeItem>,
}

impl Scope {
    /// No particular access (`/v2/`).
    pub fn none() -> Scope {
        Scope::default()
    }

    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Access to one repository.
    pub fn repository(repo: RepoName, actions: Actions) -> Scope {
        Scope {
            items: vec![ScopeItem::repository(repo, actions)],
        }
    }

    /// The catalog.
    pub fn catalog() -> Scope {
        Scope {
            items: vec![ScopeItem::catalog()],
        }
    }

    /// Adds `actions` on `repo`, merging with an item already there.
    pub fn add(&mut self, repo: RepoName, actions: Actions) {
        for item in &mut self.items {
            if item.resource == Resource::Repository(repo.clone()) {
                item.actions = item.actions.union(actions);
                return;
            }
        }
        self.items.push(ScopeItem::repository(repo, actions));
    }

    /// Parses scope strings, each possibly holding several items separated
    /// by spaces (OAuth2's form), skipping resource types we do not know.
    pub fn parse<'a>(texts: impl IntoIterator<Item = &'a str>) -> Result<Scope, AuthError> {
        let mut scope = Scope::none();
        for text in texts {
            for one in text.split(' ').filter(|s| !s.is_empty()) {
                match ScopeItem::parse(one)? {
                    Some(ScopeItem {
                        resource: Resource::Repository(repo),
                        actions,
                    }) => scope.add(repo, actions),
                    Some(item) if !scope.items.contains(&item) => scope.items.push(item),
                    Some(_) | None => {}
                }
            }
        }
        Ok(scope)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, item) in self.items.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// No credentials.
    Anonymous,
    /// A user who proved who they are.
    User(String),
}

impl Identity {
    /// The user name, if authenticated.
    pub fn user(&self) -> Option<&str> {
        match self {
            Identity::Anonymous => None,
            Identity::User(name) => Some(name),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Anonymous => f.write_str("anonymous"),
            Identity::User(name) => f.write_str(name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_parse_and_print() {
        assert_eq!(
            Actions::parse_list("pull,push"),
            Actions::PULL.union(Actions::PUSH)
        );
        assert_eq!(Actions::parse_list("*"), Actions::ALL);
        assert_eq!(Actions::parse_list("pull,bogus"), Actions::PULL);
        assert_eq!(Actions::ALL.to_string(), "pull,push,delete");
        assert!(Actions::ALL.contains(Actions::DELETE));
        assert!(!Actions::PULL.contains(Actions::PUSH));
        assert_eq!(
            Actions::ALL.without(Actions::PULL).to_string(),
            "push,delete"
        );
    }

    #[test]
    fn scopes_parse_merge_and_print() {
        let s = Scope::parse([
            "repository:team-a/app:pull",
            "repository:team-a/app:push registry:catalog:* repository:b:delete",
            "repository(plugin):x:pull",
        ])
        .unwrap();
        assert_eq!(
            s.to_string(),
            "repository:team-a/app:pull,push registry:catalog:* repository:b:delete"
        );
        assert!(Scope::parse(["repository:Bad:pull"]).is_err());
        assert!(Scope::parse(["nonsense"]).is_err());
        // A registry host with a port is not part of a repository scope, but
        // the actions are always after the last colon.
        let s = Scope::parse(["repository:a/b:pull"]).unwrap();
        assert_eq!(s.items[0].actions, Actions::PULL);
    }
}
