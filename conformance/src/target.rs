//! The registry under test: a client, the repository names a run uses, and
//! whatever keeps the registry alive (a server task or a child process).

use std::any::Any;

use crate::client::Client;
use crate::config::Config;
use crate::fixtures::random_suffix;

/// A registry to run checks against, with unique repository names.
pub struct Target {
    client: Client,
    /// Where the content checks read is pushed, when not to `client`
    /// (a read-only registry seeded through the store behind it).
    seeder: Option<Client>,
    repo: String,
    cross_repo: String,
    config: Config,
    _keep_alive: Option<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("root", &self.client.root())
            .field("repo", &self.repo)
            .field("cross_repo", &self.cross_repo)
            .finish()
    }
}

impl Target {
    /// A target at `root_url`; the namespaces of `config` get a random
    /// suffix so reruns and parallel checks never share a repository.
    /// `keep_alive` is dropped with the target (e.g. a child-process guard).
    pub fn new(
        root_url: &str,
        config: Config,
        keep_alive: Option<Box<dyn Any + Send + Sync>>,
    ) -> Target {
        let mut client = Client::new(root_url).with_mode(config.url_mode);
        if let Some(user) = &config.username {
            client = client.with_basic_auth(user, config.password.as_deref().unwrap_or(""));
        }
        let suffix = random_suffix();
        Target {
            client,
            seeder: None,
            repo: format!("{}-{suffix}", config.namespace),
            cross_repo: format!("{}-{suffix}", config.crossmount_namespace),
            config,
            _keep_alive: keep_alive,
        }
    }

    /// The HTTP client bound to the registry.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The same target, seeded through another URL that reaches the same
    /// content (for read-only registries: the store behind them).
    pub fn seeded_through(mut self, url: &str) -> Target {
        self.seeder = Some(Client::new(url).with_mode(self.config.url_mode));
        self
    }

    /// The client the seeding helpers push with.
    pub fn seed_client(&self) -> &Client {
        self.seeder.as_ref().unwrap_or(&self.client)
    }

    /// The repository the checks write to.
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The repository blobs are mounted from.
    pub fn cross_repo(&self) -> &str {
        &self.cross_repo
    }

    /// A further fresh repository under the namespace, never written before.
    pub fn fresh_repo(&self) -> String {
        format!("{}-{}", self.repo, random_suffix())
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
