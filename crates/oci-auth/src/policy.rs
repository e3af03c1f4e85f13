//! [`Policy`]: who may `pull`, `push` and `delete` which repositories, from
//! a TOML file.
//!
//! ```toml
//! # Groups of users (names as in the htpasswd file).
//! [groups]
//! team-a = ["alice", "bob"]
//! admins = ["root"]
//!
//! # Each rule grants actions on the repositories its patterns match to
//! # whom it names; grants add up, nothing is ever taken away.
//! [[rule]]
//! repositories = ["team-a/**"]          # `*`: within one path component,
//! groups = ["team-a"]                    # `**`: any number of components
//! actions = ["pull", "push"]
//!
//! [[rule]]
//! repositories = ["**"]
//! groups = ["admins"]
//! actions = ["pull", "push", "delete"]   # or ["*"]
//!
//! [[rule]]
//! repositories = ["public/*"]
//! anonymous = true                        # callers without credentials
//! authenticated = true                    # every user who logged in
//! users = ["carol"]
//! actions = ["pull"]
//! ```
//!
//! The catalog lists only the repositories the caller may pull; a caller
//! with no grant at all may not list it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use oci_core::RepoName;
use serde::Deserialize;

use crate::AuthError;
use crate::scope::{Actions, Identity};

/// Who may do what to which repositories.
///
/// ```
/// use oci_auth::{Actions, Identity, Policy};
/// let policy = Policy::authenticated_all().with_anonymous_read();
/// let repo = "team-a/app".parse().unwrap();
/// assert_eq!(policy.allowed(&Identity::Anonymous, &repo), Actions::PULL);
/// assert_eq!(policy.allowed(&Identity::User("alice".into()), &repo), Actions::ALL);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// One grant.
#[derive(Debug, Clone)]
struct Rule {
    patterns: Vec<Pattern>,
    who: Who,
    actions: Actions,
}

/// Whom a rule grants to.
#[derive(Debug, Clone, Default)]
struct Who {
    users: HashSet<String>,
    anonymous: bool,
    authenticated: bool,
}

impl Who {
    fn includes(&self, identity: &Identity) -> bool {
        match identity {
            Identity::Anonymous => self.anonymous,
            Identity::User(name) => self.authenticated || self.users.contains(name),
        }
    }
}

/// The policy file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    groups: HashMap<String, Vec<String>>,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    repositories: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    anonymous: bool,
    #[serde(default)]
    authenticated: bool,
    actions: Vec<String>,
}

impl Policy {
    /// A policy granting nothing.
    pub fn deny_all() -> Policy {
        Policy::default()
    }

    /// Every authenticated user may do everything; anonymous callers
    /// nothing.
    pub fn authenticated_all() -> Policy {
        Policy::default().with_rule("**", Actions::ALL, false, true)
    }

    /// This policy, plus anonymous pulls of every repository.
    pub fn with_anonymous_read(self) -> Policy {
        self.with_rule("**", Actions::PULL, true, false)
    }

    fn with_rule(
        mut self,
        pattern: &str,
        actions: Actions,
        anonymous: bool,
        authenticated: bool,
    ) -> Policy {
        self.rules.push(Rule {
            patterns: vec![Pattern::any(pattern)],
            who: Who {
                users: HashSet::new(),
                anonymous,
                authenticated,
            },
            actions,
        });
        self
    }

    /// Reads a policy file.
    pub fn load(path: &Path) -> Result<Policy, AuthError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| AuthError::Config(format!("cannot read {}: {e}", path.display())))?;
        Policy::parse(&text).map_err(|e| AuthError::Config(format!("{}: {e}", path.display())))
    }

    /// Parses a policy from TOML text (the format in this module's docs).
    pub fn parse(text: &str) -> Result<Policy, AuthError> {
        let file: PolicyFile =
            toml::from_str(text).map_err(|e| AuthError::Config(e.to_string()))?;
        let mut rules = Vec::new();
        for (n, rule) in file.rules.into_iter().enumerate() {
            let at = |what: String| AuthError::Config(format!("rule {}: {what}", n + 1));
            let mut users: HashSet<String> = rule.users.into_iter().collect();
            for group in &rule.groups {
                let members = file
                    .groups
                    .get(group)
                    .ok_or_else(|| at(format!("group {group:?} is not defined in [groups]")))?;
                users.extend(members.iter().cloned());
            }
            let mut actions = Actions::NONE;
            for name in &rule.actions {
                actions = actions.union(
                    Actions::from_name(name)
                        .ok_or_else(|| at(format!("{name:?} is not pull, push, delete or *")))?,
                );
            }
            if rule.repositories.is_empty() {
                return Err(at("lists no repositories".to_owned()));
            }
            let patterns = rule
                .repositories
                .iter()
                .map(|p| Pattern::parse(p).map_err(&at))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                patterns,
                who: Who {
                    users,
                    anonymous: rule.anonymous,
                    authenticated: rule.authenticated,
                },
                actions,
            });
        }
        Ok(Policy { rules })
    }

    /// The actions `identity` may take on `repo`.
    pub fn allowed(&self, identity: &Identity, repo: &RepoName) -> Actions {
        self.rules
            .iter()
            .filter(|r| {
                r.who.includes(identity) && r.patterns.iter().any(|p| p.matches(repo.as_str()))
            })
            .fold(Actions::NONE, |acc, r| acc.union(r.actions))
    }

    /// Whether `identity` may list the catalog: any identity some rule
    /// grants a pull to. The listing itself is filtered by
    /// [`Policy::allowed`].
    pub fn may_list_catalog(&self, identity: &Identity) -> bool {
        self.rules
            .iter()
            .any(|r| r.who.includes(identity) && r.actions.contains(Actions::PULL))
    }

    /// Whether some rule grants anything to anonymous callers.
    pub fn grants_anonymous(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.who.anonymous && !r.actions.is_empty())
    }
}

/// A repository pattern: components separated by `/`; `**` matches any
/// number of components (none included), `*` any run of characters
/// within one component.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern(Vec<String>);

impl Pattern {
    fn any(text: &str) -> Pattern {
        Pattern(text.split('/').map(str::to_owned).collect())
    }

    fn parse(text: &str) -> Result<Pattern, String> {
        if text.is_empty() {
            return Err("an empty repository pattern".to_owned());
        }
        let parts: Vec<String> = text.split('/').map(str::to_owned).collect();
        for part in &parts {
            if part.is_empty() {
                return Err(format!("pattern {text:?} has an empty component"));
            }
            if part.contains("**") && part != "**" {
                return Err(format!("pattern {text:?}: `**` must be a whole component"));
            }
        }
        Ok(Pattern(parts))
    }

    fn matches(&self, name: &str) -> bool {
        let parts: Vec<&str> = name.split('/').collect();
        match_components(&self.0, &parts)
    }
}

fn match_components(pattern: &[String], name: &[&str]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=name.len()).any(|skip| match_components(rest, &name[skip..]))
        }
        Some((first, rest)) => match name.split_first() {
            Some((head, tail)) => {
                match_component(first.as_bytes(), head.as_bytes()) && match_components(rest, tail)
            }
            None => false,
        },
    }
}

/// Glob match of one component, `*` matching any run of bytes.
fn match_component(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(s: &str) -> RepoName {
        s.parse().unwrap()
    }

    fn user(s: &str) -> Identity {
        Identity::User(s.to_owned())
    }

    const EXAMPLE: &str = r#"
[groups]
team-a = ["alice", "bob"]
admins = ["root"]

[[rule]]
repositories = ["team-a/**"]
groups = ["team-a"]
actions = ["pull", "push"]

[[rule]]
repositories = ["**"]
groups = ["admins"]
actions = ["*"]

[[rule]]
repositories = ["public/*", "mirror-*/library/*"]
anonymous = true
authenticated = true
users = ["carol"]
actions = ["pull"]

[[rule]]
repositories = ["scratch/*"]
users = ["carol"]
actions = ["pull", "push", "delete"]
"#;

    #[test]
    fn the_documented_example_grants_as_it_says() {
        let p = Policy::parse(EXAMPLE).unwrap();
        let pp = Actions::PULL.union(Actions::PUSH);
        assert_eq!(p.allowed(&user("alice"), &repo("team-a/app")), pp);
        assert_eq!(p.allowed(&user("bob"), &repo("team-a/x/y/z")), pp);
        assert_eq!(
            p.allowed(&user("alice"), &repo("team-b/app")),
            Actions::NONE
        );
        assert_eq!(p.allowed(&user("root"), &repo("team-b/app")), Actions::ALL);
        assert_eq!(
            p.allowed(&Identity::Anonymous, &repo("public/img")),
            Actions::PULL
        );
        assert_eq!(
            p.allowed(&Identity::Anonymous, &repo("public/a/b")),
            Actions::NONE
        );
        assert_eq!(
            p.allowed(&Identity::Anonymous, &repo("team-a/app")),
            Actions::NONE
        );
        assert_eq!(
            p.allowed(&user("alice"), &repo("public/img")),
            Actions::PULL
        );
        assert_eq!(
            p.allowed(&user("dave"), &repo("mirror-eu/library/alpine")),
            Actions::PULL
        );
        assert_eq!(p.allowed(&user("carol"), &repo("scratch/x")), Actions::ALL);
        assert!(p.may_list_catalog(&Identity::Anonymous));
        assert!(p.grants_anonymous());
    }

    #[test]
    fn globs() {
        let m = |p: &str, n: &str| Pattern::parse(p).unwrap().matches(n);
        assert!(m("**", "a"));
        assert!(m("**", "a/b/c"));
        assert!(m("team-a/**", "team-a/x"));
        assert!(m("team-a/**", "team-a/x/y"));
        assert!(m("team-a/**", "team-a"), "** matches no component too");
        assert!(!m("team-a/**", "team-ab/x"));
        assert!(m("a/*/c", "a/b/c"));
        assert!(!m("a/*/c", "a/b/x/c"));
        assert!(m("a/**/c", "a/b/x/c"));
        assert!(m("a/**/c", "a/c"));
        assert!(m("*-dev", "app-dev"));
        assert!(!m("*-dev", "app-dev/x"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(!m("a*b*c", "aXbYbZ"));
        assert!(m("exact/name", "exact/name"));
        assert!(!m("exact/name", "exact/names"));
        for bad in ["", "a//b", "a/**b", "/a"] {
            assert!(Pattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_mistakes_in_the_file() {
        for (bad, says) in [
            (
                "[[rule]]\nrepositories=[\"a\"]\ngroups=[\"nope\"]\nactions=[\"pull\"]",
                "nope",
            ),
            ("[[rule]]\nrepositories=[\"a\"]\nactions=[\"read\"]", "read"),
            (
                "[[rule]]\nrepositories=[]\nactions=[\"pull\"]",
                "no repositories",
            ),
            (
                "[[rule]]\nrepositories=[\"a\"]\nactions=[\"pull\"]\nuser=[\"x\"]",
                "user",
            ),
            (
                "[[rule]]\nrepositories=[\"a/**x\"]\nactions=[\"pull\"]",
                "**",
            ),
        ] {
            let err = Policy::parse(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{err}");
        }
    }

    #[test]
    fn shortcuts() {
        let p = Policy::authenticated_all();
        assert_eq!(p.allowed(&Identity::Anonymous, &repo("a")), Actions::NONE);
        assert!(!p.may_list_catalog(&Identity::Anonymous));
        assert!(!p.grants_anonymous());
        assert_eq!(p.allowed(&user("x"), &repo("a/b")), Actions::ALL);
        let p = p.with_anonymous_read();
        assert_eq!(p.allowed(&Identity::Anonymous, &repo("a/b")), Actions::PULL);
        assert_eq!(
            Policy::deny_all().allowed(&user("x"), &repo("a")),
            Actions::NONE
        );
    }
}
