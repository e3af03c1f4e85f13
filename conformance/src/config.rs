//! The suite's configuration, read from the environment with the variable
//! names of the official OCI conformance suite.

use std::env;

use crate::client::UrlMode;

/// One of the spec's four workflows; each can be switched off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    /// Reading manifests and blobs (`OCI_TEST_PULL`).
    Pull,
    /// Uploading blobs and manifests (`OCI_TEST_PUSH`).
    Push,
    /// Listing tags and referrers (`OCI_TEST_CONTENT_DISCOVERY`).
    ContentDiscovery,
    /// Deleting manifests, tags and blobs (`OCI_TEST_CONTENT_MANAGEMENT`).
    ContentManagement,
}

impl Workflow {
    /// The workflow a check module belongs to, by the module's name.
    pub fn of_module(module: &str) -> Option<Workflow> {
        match module {
            "pull" => Some(Workflow::Pull),
            "push" => Some(Workflow::Push),
            "discovery" => Some(Workflow::ContentDiscovery),
            "management" => Some(Workflow::ContentManagement),
            _ => None,
        }
    }

    /// The environment variable that switches the workflow.
    pub fn env_var(self) -> &'static str {
        match self {
            Workflow::Pull => "OCI_TEST_PULL",
            Workflow::Push => "OCI_TEST_PUSH",
            Workflow::ContentDiscovery => "OCI_TEST_CONTENT_DISCOVERY",
            Workflow::ContentManagement => "OCI_TEST_CONTENT_MANAGEMENT",
        }
    }
}

/// Where and how to test.
#[derive(Debug, Clone)]
pub struct Config {
    /// `OCI_ROOT_URL`: the registry to test; `None` means the in-process server.
    pub root_url: Option<String>,
    /// `OCI_NAMESPACE`: the repository prefix (a random suffix is added).
    pub namespace: String,
    /// `OCI_CROSSMOUNT_NAMESPACE`: the repository blobs are mounted from.
    pub crossmount_namespace: String,
    /// `OCI_USERNAME`: basic auth user, if any.
    pub username: Option<String>,
    /// `OCI_PASSWORD`: basic auth password.
    pub password: Option<String>,
    /// `OCI_DELETE_MANIFEST_BEFORE_BLOBS`: delete manifests before the blobs
    /// they name (some registries refuse to delete a referenced blob).
    pub delete_manifest_before_blobs: bool,
    /// `OCI_DECODE_LOCATION`: follow URLs with their path percent-decoded,
    /// as Go clients do (the default), or, when `0`, exactly as sent.
    pub url_mode: UrlMode,
    disabled: Vec<Workflow>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            root_url: None,
            namespace: "conformance/test".to_owned(),
            crossmount_namespace: "conformance/crossmount".to_owned(),
            username: None,
            password: None,
            delete_manifest_before_blobs: true,
            url_mode: UrlMode::Decoding,
            disabled: Vec::new(),
        }
    }
}

impl Config {
    /// The configuration the environment describes, defaults elsewhere.
    pub fn from_env() -> Config {
        Config::from_lookup(|name| env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// The configuration `lookup` describes (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        let defaults = Config::default();
        let flag = |name: &str, default: bool| lookup(name).map_or(default, |v| truthy(&v));
        let disabled = [
            Workflow::Pull,
            Workflow::Push,
            Workflow::ContentDiscovery,
            Workflow::ContentManagement,
        ]
        .into_iter()
        .filter(|w| !flag(w.env_var(), true))
        .collect();
        Config {
            root_url: lookup("OCI_ROOT_URL"),
            namespace: lookup("OCI_NAMESPACE").unwrap_or(defaults.namespace),
            crossmount_namespace: lookup("OCI_CROSSMOUNT_NAMESPACE")
                .unwrap_or(defaults.crossmount_namespace),
            username: lookup("OCI_USERNAME"),
            password: lookup("OCI_PASSWORD"),
            delete_manifest_before_blobs: flag(
                "OCI_DELETE_MANIFEST_BEFORE_BLOBS",
                defaults.delete_manifest_before_blobs,
            ),
            url_mode: if flag("OCI_DECODE_LOCATION", true) {
                UrlMode::Decoding
            } else {
                UrlMode::AsSent
            },
            disabled,
        }
    }

    /// Whether a workflow's checks run.
    pub fn enabled(&self, workflow: Workflow) -> bool {
        !self.disabled.contains(&workflow)
    }
}

fn truthy(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_switches_and_defaults() {
        let c = Config::from_lookup(|name| match name {
            "OCI_TEST_PUSH" => Some("0".into()),
            "OCI_NAMESPACE" => Some("me/repo".into()),
            "OCI_DELETE_MANIFEST_BEFORE_BLOBS" => Some("false".into()),
            "OCI_DECODE_LOCATION" => Some("0".into()),
            _ => None,
        });
        assert!(c.enabled(Workflow::Pull));
        assert!(!c.enabled(Workflow::Push));
        assert_eq!(c.namespace, "me/repo");
        assert_eq!(c.crossmount_namespace, "conformance/crossmount");
        assert!(!c.delete_manifest_before_blobs);
        assert!(c.root_url.is_none());
        assert_eq!(c.url_mode, UrlMode::AsSent);
        assert_eq!(Config::from_lookup(|_| None).url_mode, UrlMode::Decoding);
    }
}
