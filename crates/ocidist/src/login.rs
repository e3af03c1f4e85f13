//! Storing and removing registry credentials where docker, podman and
//! skopeo read them: docker's `config.json` (`auths.<host>.auth`, base64
//! `user:password`), or the credential helper it names (`credHelpers` for
//! the host, else `credsStore`), spoken to with the `docker-credential-*`
//! `store` / `erase` protocol.
//!
//! The file is edited as JSON kept whole: keys this module does not know
//! (`proxies`, `HttpHeaders`, …) survive. It is replaced atomically and
//! created readable by its owner only.
//!
//! ```
//! use ocidist::login::DockerConfig;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("config.json");
//! let mut config = DockerConfig::load(&path).unwrap();
//! config.set_auth("localhost:5000", "me", "secret");
//! config.save().unwrap();
//! let mut again = DockerConfig::load(&path).unwrap();
//! assert!(again.remove_auth("localhost:5000"));
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_client::auth::credentials::normalize_host;
use oci_core::{Error, ErrorCode, Result};
use serde_json::{Map, Value};

/// The key docker uses for Docker Hub in `auths` and with helpers.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// docker's config file: `$DOCKER_CONFIG/config.json`, else
/// `~/.docker/config.json`.
pub fn docker_config_path() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Ok(Path::new(&dir).join("config.json"));
    }
    let home = std::env::var_os("HOME").ok_or_else(|| {
        Error::internal("neither DOCKER_CONFIG nor HOME is set: nowhere to keep credentials")
    })?;
    Ok(Path::new(&home).join(".docker/config.json"))
}

/// The key a registry is stored under: the host as given, Docker Hub's
/// historical URL for any of its names.
pub fn config_key(host: &str) -> String {
    if normalize_host(host) == oci_core::reference::DOCKER_HUB {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

/// A docker `config.json`, loaded for editing.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    path: PathBuf,
    root: Map<String, Value>,
}

fn file_err(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::internal(format!("{}: {what}", path.display()))
}

impl DockerConfig {
    /// Loads `path`; a missing file is an empty config. A file that is not
    /// a JSON object is an error (it would be lost by saving over it).
    pub fn load(path: &Path) -> Result<DockerConfig> {
        let root = match std::fs::read(path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => return Err(file_err(path, "not a JSON object; fix or move it")),
                Err(e) => return Err(file_err(path, format!("{e}; fix or move it"))),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => return Err(file_err(path, e)),
        };
        Ok(DockerConfig {
            path: path.to_path_buf(),
            root,
        })
    }

    /// The file this config is saved to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The credential helper for `host`: its `credHelpers` entry, else
    /// `credsStore`.
    pub fn helper_for(&self, host: &str) -> Option<String> {
        let want = normalize_host(host);
        let named = self
            .root
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|m| m.iter().find(|(k, _)| normalize_host(k) == want))
            .and_then(|(_, v)| v.as_str());
        let store = self.root.get("credsStore").and_then(Value::as_str);
        named.or(store).filter(|h| !h.is_empty()).map(str::to_owned)
    }

    /// Stores `user:password` for `host` in `auths`, replacing any entry
    /// for the same registry under another spelling.
    pub fn set_auth(&mut self, host: &str, user: &str, password: &str) {
        self.remove_auth(host);
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let auths = self
            .root
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(m) = auths {
            m.insert(config_key(host), serde_json::json!({ "auth": auth }));
        }
    }

    /// Removes every `auths` entry for `host`; whether there was one.
    pub fn remove_auth(&mut self, host: &str) -> bool {
        let want = normalize_host(host);
        let Some(Value::Object(auths)) = self.root.get_mut("auths") else {
            return false;
        };
        let before = auths.len();
        auths.retain(|k, _| normalize_host(k) != want);
        auths.len() != before
    }

    /// Writes the config back: a temporary file beside it, owner-only,
    /// synced, then renamed over it.
    pub fn save(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| file_err(&dir, e))?;
        let mut text = serde_json::to_vec_pretty(&Value::Object(self.root.clone()))
            .map_err(|e| Error::internal(format!("cannot encode the config: {e}")))?;
        text.push(b'\n');
        let temp = dir.join(format!(".config.json.{:08x}", rand::random::<u32>()));
        let written = (|| {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&temp)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(file_err(&self.path, e));
        }
        Ok(())
    }
}

/// Where credentials were stored or removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// In the config file's `auths`.
    File(PathBuf),
    /// Through `docker-credential-<name>`.
    Helper(String),
}

impl std::fmt::Display for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::File(p) => write!(f, "{}", p.display()),
            Store::Helper(h) => write!(f, "docker-credential-{h}"),
        }
    }
}

/// Saves credentials for `host` where the config at `path` says: its
/// helper, else its `auths`.
pub fn save_credentials(path: &Path, host: &str, user: &str, password: &str) -> Result<Store> {
    let mut config = DockerConfig::load(path)?;
    if let Some(helper) = config.helper_for(host) {
        let input = serde_json::json!({
            "ServerURL": config_key(host),
            "Username": user,
            "Secret": password,
        });
        run_helper(&helper, "store", input.to_string().as_bytes())?;
        // A stale plain entry would shadow nothing but leak a password.
        if config.remove_auth(host) {
            config.save()?;
        }
        return Ok(Store::Helper(helper));
    }
    config.set_auth(host, user, password);
    config.save()?;
    Ok(Store::File(path.to_path_buf()))
}

/// Removes the credentials for `host` from the config at `path` and its
/// helper; the stores that had some.
pub fn remove_credentials(path: &Path, host: &str) -> Result<Vec<Store>> {
    let mut config = DockerConfig::load(path)?;
    let mut removed = Vec::new();
    if let Some(helper) = config.helper_for(host) {
        match run_helper(&helper, "erase", config_key(host).as_bytes()) {
            Ok(()) => removed.push(Store::Helper(helper)),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    if config.remove_auth(host) {
        config.save()?;
        removed.push(Store::File(path.to_path_buf()));
    }
    Ok(removed)
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin. A
/// helper's "credentials not found" is `NAME_UNKNOWN`.
fn run_helper(helper: &str, action: &str, input: &[u8]) -> Result<()> {
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::internal(format!(
                "cannot run {program}, the credential helper the docker config names: {e}"
            ))
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input)
            .map_err(|e| Error::internal(format!("writing to {program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::internal(format!("running {program}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    let said = format!(
        "{} {}",
        String::from_utf8_lossy(&out.stdout).trim(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    if said.to_ascii_lowercase().contains("credentials not found") {
        return Err(Error::new(
            ErrorCode::NameUnknown,
            format!("{program} has no credentials"),
        ));
    }
    Err(Error::internal(format!(
        "{program} {action} failed: {}",
        said.trim()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edits_keep_unknown_keys_and_replace_other_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            br#"{"auths":{"http://reg.example:5000/v2/":{"auth":"b2xkOm9sZA=="},"other.example":{"auth":"eDp5"}},"proxies":{"default":{}}}"#,
        )
        .unwrap();
        let mut c = DockerConfig::load(&path).unwrap();
        c.set_auth("reg.example:5000", "me", "pw");
        c.save().unwrap();
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["reg.example:5000"]["auth"], "bWU6cHc=");
        assert!(v["auths"].get("http://reg.example:5000/v2/").is_none());
        assert_eq!(v["auths"]["other.example"]["auth"], "eDp5");
        assert!(v["proxies"]["default"].is_object());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let mut c = DockerConfig::load(&path).unwrap();
        assert!(c.remove_auth("reg.example:5000"));
        assert!(!c.remove_auth("reg.example:5000"));
        assert_eq!(config_key("docker.io"), DOCKER_HUB_KEY);
    }

    #[test]
    fn a_malformed_file_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, b"{oops").unwrap();
        let err = save_credentials(&path, "r.example", "u", "p").unwrap_err();
        assert!(err.message().contains("fix or move it"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"{oops");
    }

    #[test]
    fn helpers_by_host_then_default() {
        let c = DockerConfig {
            path: PathBuf::new(),
            root: serde_json::from_str(r#"{"credHelpers":{"a.example":"ha"},"credsStore":"hs"}"#)
                .unwrap(),
        };
        assert_eq!(c.helper_for("a.example").as_deref(), Some("ha"));
        assert_eq!(c.helper_for("b.example").as_deref(), Some("hs"));
    }
}
