//! `serve --mirror`: the server as a pull-through cache of upstream
//! registries (`oci-mirror`), each reached by an `oci-client` built as
//! the other commands build theirs ([`Connector`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use oci_client::{AuthOptions, RetryConfig, Scheme};
use oci_core::{Error, ErrorCode, Registry, Result};
use oci_mirror::Mirror;
use oci_server::ServerOptions;

use crate::connect::{ConnectOptions, Connector};

/// The flags of `serve` that make it a mirror.
#[derive(Debug, Args, Clone, Default)]
pub struct MirrorFlags {
    /// Serve as a pull-through cache of the registry HOST[:PORT]
    /// (repeatable). Options follow after commas: scheme=http|https
    /// (default: http for loopback hosts, else https), cacert=FILE,
    /// credentials=FILE (one line USER:PASSWORD; default: docker's
    /// config.json and credential helpers), insecure. Clients name the
    /// upstream with ?ns=HOST (containerd) or as the first path component
    /// HOST/NAME, a port after '_' (127.0.0.1_5000/NAME).
    #[arg(long = "mirror", value_name = "HOST[:PORT][,OPTION…]")]
    pub mirror: Vec<String>,
    /// The upstream for names that name none (no ?ns=, no HOST/ prefix).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub mirror_default: Option<String>,
    /// Allow any upstream a client names, connected with the default options
    /// (an open proxy to every registry this host can reach).
    #[arg(long)]
    pub mirror_any: bool,
    /// With --mirror-any: how many upstreams are kept connected at once;
    /// past it the least recently used is let go (connected again when
    /// named again; the cache keeps what it fetched).
    #[arg(long, value_name = "N", requires = "mirror_any",
          default_value_t = oci_mirror::DEFAULT_ANY_UPSTREAM_LIMIT)]
    pub mirror_any_limit: usize,
    /// Seconds a mirrored tag is served before a HEAD upstream checks it.
    #[arg(long, value_name = "SECS", default_value_t = oci_mirror::DEFAULT_TAG_FRESHNESS.as_secs())]
    pub mirror_tag_freshness: u64,
}

impl MirrorFlags {
    /// Whether the flags ask for a mirror.
    pub fn enabled(&self) -> bool {
        !self.mirror.is_empty() || self.mirror_any
    }
}

/// One `--mirror` value: the upstream and how to connect to it.
#[derive(Debug, Clone)]
struct UpstreamSpec {
    host: String,
    options: ConnectOptions,
    credentials: Option<PathBuf>,
}

fn usage(message: String) -> Error {
    Error::new(ErrorCode::NameInvalid, message)
}

impl UpstreamSpec {
    fn parse(spec: &str) -> Result<UpstreamSpec> {
        let mut parts = spec.split(',');
        let host = parts.next().unwrap_or_default().trim().to_owned();
        if host.is_empty() || host.contains('/') {
            return Err(usage(format!(
                "--mirror {spec:?}: give the upstream as HOST[:PORT]"
            )));
        }
        oci_core::reference::namespace_component(&host)?;
        let mut options = ConnectOptions {
            auth: AuthOptions::default(),
            ..ConnectOptions::default()
        };
        let mut credentials = None;
        for option in parts {
            match option.split_once('=') {
                Some(("scheme", "http")) => options.scheme = Some(Scheme::Http),
                Some(("scheme", "https")) => options.scheme = Some(Scheme::Https),
                Some(("cacert", file)) => options.ca_file = Some(file.into()),
                Some(("credentials", file)) => credentials = Some(file.into()),
                None if option == "insecure" => options.insecure = true,
                _ => {
                    return Err(usage(format!(
                        "--mirror {spec:?}: unknown option {option:?} (scheme=http|https, \
                         cacert=FILE, credentials=FILE, insecure)"
                    )));
                }
            }
        }
        Ok(UpstreamSpec {
            host,
            options,
            credentials,
        })
    }

    /// The client for this upstream.
    fn connect(mut self) -> Result<Arc<dyn Registry>> {
        if let Some(path) = &self.credentials {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::new(
                    ErrorCode::Unknown,
                    format!("cannot read the credentials file {}: {e}", path.display()),
                )
            })?;
            let line = text.lines().next().unwrap_or_default();
            let Some((username, password)) = line.split_once(':') else {
                return Err(usage(format!(
                    "{}: the first line must be USER:PASSWORD",
                    path.display()
                )));
            };
            self.options.auth = AuthOptions::Basic {
                username: username.to_owned(),
                password: password.to_owned(),
            };
        }
        upstream_connector(&self.options)?.connect(&self.host)
    }
}

/// A connector for upstreams: the flags' options, with few retries, so
/// that a down upstream is soon noticed and the cache served instead;
/// blob reads not hashed by the client, since the mirror's cache verifies
/// every blob as it writes it and the mirror's clients get a blob's last
/// bytes only once it has.
fn upstream_connector(options: &ConnectOptions) -> Result<Connector> {
    let retry = RetryConfig {
        max_retries: 1,
        max_elapsed: Duration::from_secs(5),
        ..RetryConfig::default()
    };
    Ok(Connector::from_options(options)?
        .retry(retry)
        .verify_blob_reads(false))
}

/// Turns `store` into a mirror cache with the upstreams the flags name,
/// and the server options into ones that honour `?ns=`; unchanged when
/// the flags ask for no mirror.
pub fn apply(
    flags: &MirrorFlags,
    store: Arc<dyn Registry>,
    options: ServerOptions,
) -> Result<(Arc<dyn Registry>, ServerOptions)> {
    if !flags.enabled() {
        if flags.mirror_default.is_some() {
            return Err(usage(
                "--mirror-default needs --mirror or --mirror-any".into(),
            ));
        }
        return Ok((store, options));
    }
    let mut builder =
        Mirror::builder(store).tag_freshness(Duration::from_secs(flags.mirror_tag_freshness));
    let mut hosts = Vec::new();
    for spec in &flags.mirror {
        let spec = UpstreamSpec::parse(spec)?;
        hosts.push(spec.host.clone());
        let host = spec.host.clone();
        builder = builder.upstream(&host, spec.connect()?);
    }
    if flags.mirror_any {
        let connector = upstream_connector(&ConnectOptions::default())?;
        builder = builder
            .any_upstream(Arc::new(move |host: &str| connector.connect(host)))
            .any_upstream_limit(flags.mirror_any_limit);
    }
    if let Some(default) = &flags.mirror_default {
        if flags.mirror_any && !hosts.iter().any(|h| h.eq_ignore_ascii_case(default)) {
            let connector = upstream_connector(&ConnectOptions::default())?;
            builder = builder.upstream(default, connector.connect(default)?);
        }
        builder = builder.default_upstream(default);
    }
    let mirror = builder.build()?;
    eprintln!(
        "mirroring {}{} (read-only; tags re-checked after {}s)",
        if hosts.is_empty() {
            "any registry".to_owned()
        } else {
            hosts.join(", ")
        },
        flags
            .mirror_default
            .as_deref()
            .map(|d| format!(", {d} by default"))
            .unwrap_or_default(),
        flags.mirror_tag_freshness
    );
    Ok((Arc::new(mirror), options.namespaces(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_specs_parse_with_their_options() {
        let spec = UpstreamSpec::parse("registry.example:5000,scheme=https,cacert=ca.pem,insecure")
            .expect("parsed");
        assert_eq!(spec.host, "registry.example:5000");
        assert_eq!(spec.options.scheme, Some(Scheme::Https));
        assert_eq!(spec.options.ca_file, Some(PathBuf::from("ca.pem")));
        assert!(spec.options.insecure);
        let v6 = UpstreamSpec::parse("[::1]:5000,scheme=http").expect("parsed");
        assert_eq!(v6.host, "[::1]:5000");
        for bad in ["", "a/b", "host,colour=blue", "[::1", "host:port"] {
            assert!(UpstreamSpec::parse(bad).is_err(), "{bad}");
        }
    }
}
