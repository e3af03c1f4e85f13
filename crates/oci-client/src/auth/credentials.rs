//! Credentials from docker's `config.json` and podman's `auth.json`:
//! `auths` entries (base64 `auth`, `identitytoken`, `registrytoken`) and
//! credential helpers (`credHelpers`, `credsStore`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_core::Result;
use oci_core::reference::is_docker_hub;
use serde::Deserialize;

use crate::error::ClientError;

/// What the client presents to a registry.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// Nothing.
    #[default]
    Anonymous,
    /// Username and password.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: String,
    },
    /// A refresh token for the token endpoint.
    IdentityToken(String),
    /// A bearer token for the registry itself.
    BearerToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("Anonymous"),
            Credentials::Basic { username, .. } => write!(f, "Basic({username})"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(..)"),
            Credentials::BearerToken(_) => f.write_str("BearerToken(..)"),
        }
    }
}

/// The `auths` key docker uses for Docker Hub.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// One auth config file (docker's and podman's share the format).
#[derive(Debug, Default, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

/// The comparable form of a registry key: scheme and path dropped, every
/// Docker Hub alias folded into `docker.io`.
pub fn normalize_host(key: &str) -> String {
    let k = key.trim();
    let k = k
        .strip_prefix("https://")
        .or_else(|| k.strip_prefix("http://"))
        .unwrap_or(k);
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    if is_docker_hub(&host) {
        oci_core::reference::DOCKER_HUB.to_owned()
    } else {
        host
    }
}

impl ConfigFile {
    /// Parses a config file's JSON.
    pub fn parse(json: &[u8]) -> Result<ConfigFile> {
        serde_json::from_slice(json).map_err(|e| {
            let message = format!("invalid auth config file: {e}");
            ClientError::auth_config(message, Some(Box::new(e))).into()
        })
    }

    /// Reads a config file; `None` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<ConfigFile>> {
        match std::fs::read(path) {
            Ok(bytes) => ConfigFile::parse(&bytes).map(Some).map_err(|e| {
                let message = format!("{}: {}", path.display(), e.message());
                ClientError::auth_config(message, Some(Box::new(e))).into()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => {
                let message = format!("{}: {e}", path.display());
                Err(ClientError::auth_config(message, Some(Box::new(e))).into())
            }
        }
    }

    /// The credentials for `host`, if this file has any: a helper named for
    /// the host, an `auths` entry, then the default store.
    pub fn lookup(&self, host: &str) -> Result<Option<Credentials>> {
        let want = normalize_host(host);
        if let Some((_, helper)) = self
            .cred_helpers
            .iter()
            .find(|(k, _)| normalize_host(k) == want)
        {
            return run_helper(helper, &want);
        }
        if let Some((_, entry)) = self.auths.iter().find(|(k, _)| normalize_host(k) == want)
            && let Some(creds) = entry.credentials()?
        {
            return Ok(Some(creds));
        }
        match &self.creds_store {
            Some(store) if !store.is_empty() => run_helper(store, &want),
            _ => Ok(None),
        }
    }
}

impl AuthEntry {
    fn credentials(&self) -> Result<Option<Credentials>> {
        if let Some(token) = self.registrytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::BearerToken(token.clone())));
        }
        if let Some(token) = self.identitytoken.as_ref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken(token.clone())));
        }
        if let Some(auth) = self.auth.as_ref().filter(|a| !a.is_empty()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|e| {
                    let message = format!("auth config: bad base64 auth: {e}");
                    ClientError::auth_config(message, Some(Box::new(e)))
                })?;
            let text = String::from_utf8(raw).map_err(|e| {
                ClientError::auth_config("auth config: auth is not UTF-8", Some(Box::new(e)))
            })?;
            let (username, password) = text.split_once(':').ok_or_else(|| {
                ClientError::auth_config("auth config: auth is not user:password", None)
            })?;
            return Ok(Some(Credentials::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        match (&self.username, &self.password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<helper> get` for `host`. A missing helper or a
/// "not found" answer means no credentials.
fn run_helper(helper: &str, host: &str) -> Result<Option<Credentials>> {
    run_helper_program(&format!("docker-credential-{helper}"), host)
}

/// Runs a credential helper program (a name on `PATH` or a path).
fn run_helper_program(program: &str, host: &str) -> Result<Option<Credentials>> {
    let server = if host == oci_core::reference::DOCKER_HUB {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    };
    let child = Command::new(program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!(program, "credential helper not installed; no credentials");
            return Ok(None);
        }
        Err(e) => {
            return Err(ClientError::helper(format!("running {program}: {e}"), Some(e)).into());
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .map_err(|e| ClientError::helper(format!("writing to {program}: {e}"), Some(e)))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ClientError::helper(format!("running {program}: {e}"), Some(e)))?;
    if !out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        let message = format!(
            "{program} get failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        return Err(ClientError::helper(message, None).into());
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|e| ClientError::CredentialHelper {
            message: format!("{program} answered invalid JSON: {e}"),
            source: Some(Box::new(e)),
        })?;
    Ok(Some(if answer.username == "<token>" {
        Credentials::IdentityToken(answer.secret)
    } else {
        Credentials::Basic {
            username: answer.username,
            password: answer.secret,
        }
    }))
}

/// The auth files consulted, in order: `REGISTRY_AUTH_FILE`, podman's
/// `$XDG_RUNTIME_DIR/containers/auth.json`, then docker's
/// `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`).
pub fn default_files() -> Vec<PathBuf> {
    files_from_env(|name| std::env::var_os(name))
}

/// [`default_files`] with the environment read through `var`.
fn files_from_env(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(f) = var("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(f));
    }
    if let Some(dir) = var("XDG_RUNTIME_DIR") {
        files.push(Path::new(&dir).join("containers/auth.json"));
    }
    match var("DOCKER_CONFIG") {
        Some(dir) => files.push(Path::new(&dir).join("config.json")),
        None => {
            if let Some(home) = var("HOME") {
                files.push(Path::new(&home).join(".docker/config.json"));
            }
        }
    }
    files
}

/// The credentials for `host` from the first of `files` that has any.
pub fn lookup_files(files: &[PathBuf], host: &str) -> Result<Credentials> {
    for path in files {
        if let Some(config) = ConfigFile::load(path)?
            && let Some(creds) = config.lookup(host)?
        {
            tracing::debug!(host, file = %path.display(), "using stored credentials");
            return Ok(creds);
        }
    }
    Ok(Credentials::Anonymous)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> Credentials {
        Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn auths_entries_and_docker_hub_aliases() {
        let json = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
            "reg.example:5000":{"identitytoken":"idt"},
            "http://other.example/v2/":{"registrytoken":"rt"},
            "plain.example":{"username":"u","password":"p"},
            "empty.example":{}
        }}"#;
        let c = ConfigFile::parse(json).unwrap();
        for hub in ["docker.io", "registry-1.docker.io", "index.docker.io"] {
            assert_eq!(
                c.lookup(hub).unwrap(),
                Some(basic("user", "pa:ss")),
                "{hub}"
            );
        }
        assert_eq!(
            c.lookup("reg.example:5000").unwrap(),
            Some(Credentials::IdentityToken("idt".into()))
        );
        assert_eq!(
            c.lookup("OTHER.example").unwrap(),
            Some(Credentials::BearerToken("rt".into()))
        );
        assert_eq!(c.lookup("plain.example").unwrap(), Some(basic("u", "p")));
        assert_eq!(c.lookup("empty.example").unwrap(), None);
        assert_eq!(c.lookup("unknown.example").unwrap(), None);
    }

    #[test]
    fn bad_auth_is_an_error_not_a_guess() {
        let c = ConfigFile::parse(br#"{"auths":{"r.example":{"auth":"!!!"}}}"#).unwrap();
        assert!(c.lookup("r.example").is_err());
        assert!(ConfigFile::parse(b"not json").is_err());
    }

    #[test]
    fn missing_helper_means_no_credentials() {
        let c = ConfigFile::parse(
            br#"{"credHelpers":{"r.example":"ocidist-test-none"},"credsStore":"ocidist-test-none"}"#,
        )
        .unwrap();
        assert_eq!(c.lookup("r.example").unwrap(), None);
        assert_eq!(c.lookup("other.example").unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn helper_answers_are_used() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let helper = dir.path().join("docker-credential-ocitest");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread host\nif [ \"$host\" = \"r.example\" ]; then\n\
             echo '{\"ServerURL\":\"r.example\",\"Username\":\"hu\",\"Secret\":\"hs\"}'\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let program = helper.to_str().unwrap();
        assert_eq!(
            run_helper_program(program, "r.example").unwrap(),
            Some(basic("hu", "hs"))
        );
        assert_eq!(run_helper_program(program, "other.example").unwrap(), None);
    }

    #[test]
    fn auth_files_come_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        let all = files_from_env(env(&[
            ("REGISTRY_AUTH_FILE", "/a/auth.json"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("DOCKER_CONFIG", "/d"),
            ("HOME", "/home/u"),
        ]));
        assert_eq!(
            all,
            [
                PathBuf::from("/a/auth.json"),
                PathBuf::from("/run/user/1/containers/auth.json"),
                PathBuf::from("/d/config.json"),
            ]
        );
        let home_only = files_from_env(env(&[("HOME", "/home/u")]));
        assert_eq!(home_only, [PathBuf::from("/home/u/.docker/config.json")]);
    }

    #[test]
    fn files_are_tried_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, br#"{"auths":{"x.example":{"auth":"YTpi"}}}"#).unwrap();
        std::fs::write(&b, br#"{"auths":{"y.example":{"auth":"Yzpk"}}}"#).unwrap();
        let files = vec![dir.path().join("missing.json"), a, b];
        assert_eq!(lookup_files(&files, "x.example").unwrap(), basic("a", "b"));
        assert_eq!(lookup_files(&files, "y.example").unwrap(), basic("c", "d"));
        assert_eq!(
            lookup_files(&files, "z.example").unwrap(),
            Credentials::Anonymous
        );
    }
}
