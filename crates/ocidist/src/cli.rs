//! The command line: one set of connection flags shared by every
//! subcommand, and the subcommands themselves.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pull, copy, inspect and serve OCI images and artifacts.
#[derive(Debug, Parser)]
#[command(name = "ocidist", version, about, propagate_version = true)]
pub struct Cli {
    /// Connection flags, valid before or after the subcommand.
    #[command(flatten)]
    pub connect: ConnectFlags,

    /// Print the parsed command line and exit.
    #[arg(long, global = true)]
    pub parsed: bool,

    /// Log to stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A secret that never shows in `--parsed` or logs.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// URL scheme to reach registries with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemeArg {
    /// TLS.
    Https,
    /// Plain HTTP.
    Http,
}

/// How to reach and authenticate to registries.
#[derive(Debug, Args, Clone)]
pub struct ConnectFlags {
    /// User name (basic auth or token exchange).
    #[arg(short = 'u', long, global = true, requires = "password_source")]
    pub username: Option<String>,
    /// Password for --username.
    #[arg(short = 'p', long, global = true, group = "password_source")]
    pub password: Option<Secret>,
    /// Read the password from standard input.
    #[arg(long, global = true, group = "password_source")]
    pub password_stdin: bool,
    /// A bearer token to send as is.
    #[arg(long, global = true, conflicts_with_all = ["username", "anonymous"])]
    pub token: Option<Secret>,
    /// Ignore stored credentials (docker/podman config, helpers).
    #[arg(long, global = true, conflicts_with = "username")]
    pub anonymous: bool,
    /// URL scheme (default https; http for localhost/127.0.0.1/[::1]).
    #[arg(long, global = true, value_enum)]
    pub scheme: Option<SchemeArg>,
    /// Same as --scheme http.
    #[arg(long, global = true, conflicts_with = "scheme")]
    pub plain_http: bool,
    /// Skip TLS certificate verification.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Extra CA certificates (PEM) to trust.
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[arg(long, global = true, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Mirror namespace: add `?ns=NAMESPACE` to every request.
    #[arg(long = "ns", global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
    /// Proxy URL for every request (default: HTTPS_PROXY/HTTP_PROXY/NO_PROXY).
    #[arg(long, global = true, value_name = "URL")]
    pub proxy: Option<String>,
}

/// Platform selection: `--platform os/arch[/variant]` or its parts.
#[derive(Debug, Args, Clone, Default)]
pub struct PlatformFlags {
    /// Platform to resolve an index to (default: this host's).
    #[arg(long, value_name = "OS/ARCH[/VARIANT]", conflicts_with_all = ["os", "arch", "variant"])]
    pub platform: Option<String>,
    /// Operating system part of the platform.
    #[arg(long)]
    pub os: Option<String>,
    /// Architecture part of the platform.
    #[arg(long)]
    pub arch: Option<String>,
    /// Variant part of the platform.
    #[arg(long)]
    pub variant: Option<String>,
}

/// Output format of `pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// A `docker save` tarball.
    Docker,
    /// An OCI image layout tar.
    Oci,
    /// An OCI image layout directory.
    OciDir,
}

/// Which manifest `manifest` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestArg {
    /// The manifest list / index.
    List,
    /// The image manifest (resolved to the platform).
    Image,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a repository's tags, one a line.
    Tags {
        /// Repository: host[:port]/path (no tag or digest).
        repo: String,
        /// Print {"name":…,"tags":[…]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Print a manifest as served (pretty by default); its digest goes to stderr.
    Manifest {
        /// Reference: host[:port]/path[:tag][@digest].
        reference: String,
        /// Print the exact bytes.
        #[arg(long)]
        raw: bool,
        /// `list` for the index, `image` for the platform's image manifest.
        #[arg(long, value_enum)]
        manifest: Option<ManifestArg>,
        /// Platform selection.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Print the image config JSON.
    Config {
        /// Reference: host[:port]/path[:tag][@digest].
        reference: String,
        /// Platform selection.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Write a blob to stdout or a file.
    Blob {
        /// host[:port]/path@digest.
        reference: String,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace an existing FILE.
        #[arg(long, requires = "output")]
        force: bool,
    },
    /// Pull an image to a docker tarball or an OCI layout.
    Pull {
        /// Reference: host[:port]/path[:tag][@digest].
        reference: String,
        /// Where to write (default: derived from the repository name).
        #[arg(short, long, value_name = "PATH")]
        output: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "docker")]
        format: FormatArg,
        /// Replace an existing output.
        #[arg(long)]
        force: bool,
        /// Layers downloaded at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Fetch layers of at least this many MiB as parallel range
        /// requests (0: every layer as one stream).
        #[arg(long, value_name = "MIB", default_value_t = 64)]
        ranged_above: u64,
        /// Platform selection.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Copy an image between repositories or registries.
    Copy {
        /// Source reference.
        source: String,
        /// Target reference (its tag defaults to the source's).
        target: String,
        /// Copy the index and every platform.
        #[arg(long)]
        all_platforms: bool,
        /// Blobs copied at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Platform selection when not copying all.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Delete a manifest (by digest) or a tag.
    Delete {
        /// host[:port]/path:tag or host[:port]/path@digest.
        reference: String,
    },
    /// List a registry's repositories.
    Catalog {
        /// Registry host[:port].
        host: String,
        /// Print {"repositories":[…]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no manifest references from an on-disk store.
    Gc {
        /// The store's directory (as given to `serve --storage`).
        #[arg(long, value_name = "DIR")]
        storage: PathBuf,
        /// Keep unreferenced blobs younger than this many seconds (set it
        /// when a server is pushing to the store meanwhile).
        #[arg(long, value_name = "SECONDS", default_value_t = 0)]
        grace: u64,
    },
    /// Run a registry on an embedded store.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: String,
        /// Keep content on disk in DIR, as OCI image layouts (default: in memory).
        #[arg(long, value_name = "DIR")]
        storage: Option<PathBuf>,
        /// Refuse every write and delete.
        #[arg(long)]
        read_only: bool,
        /// Seed the store with a small demo image `demo/hello:latest`.
        #[arg(long)]
        demo: bool,
        /// TLS certificate chain (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// TLS private key (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Limits on clients, connections and upload sessions.
        #[command(flatten)]
        limits: LimitFlags,
    },
}

/// The server's limits (`serve`); a time of 0 turns that timeout off.
#[derive(Debug, Args, Clone)]
pub struct LimitFlags {
    /// Seconds a client has to send a request's headers (also how long an
    /// idle HTTP/1 keep-alive connection waits for its next request).
    #[arg(long, value_name = "SECS", default_value_t = oci_server::DEFAULT_HEADER_READ_TIMEOUT.as_secs())]
    pub header_timeout: u64,
    /// Seconds a connection may move no bytes while no request on it is
    /// handled before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = oci_server::DEFAULT_IDLE_TIMEOUT.as_secs())]
    pub idle_timeout: u64,
    /// Seconds a request body may send nothing before the request fails.
    #[arg(long, value_name = "SECS", default_value_t = oci_server::DEFAULT_BODY_IDLE_TIMEOUT.as_secs())]
    pub body_timeout: u64,
    /// Connections served at once; more are answered 503 with Retry-After.
    #[arg(long, value_name = "N", default_value_t = oci_server::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,
    /// Headers a request may carry.
    #[arg(long, value_name = "N", default_value_t = oci_server::DEFAULT_MAX_HEADERS)]
    pub max_headers: usize,
    /// Open upload sessions in total; more are answered 429.
    #[arg(long, value_name = "N", default_value_t = oci_server::DEFAULT_MAX_UPLOADS)]
    pub max_uploads: usize,
    /// Open upload sessions per repository; more are answered 429.
    #[arg(long, value_name = "N", default_value_t = oci_server::DEFAULT_MAX_UPLOADS_PER_REPO)]
    pub max_uploads_per_repo: usize,
    /// Seconds an upload session may receive nothing before it is cancelled.
    #[arg(long, value_name = "SECS", default_value_t = oci_server::DEFAULT_UPLOAD_EXPIRY.as_secs())]
    pub upload_expiry: u64,
    /// Largest blob accepted, in bytes (default: unlimited).
    #[arg(long, value_name = "BYTES")]
    pub max_blob_size: Option<u64>,
    /// Requests a second allowed per client address (default: unlimited);
    /// more are answered 429 with Retry-After.
    #[arg(long, value_name = "PER_SEC")]
    pub rate_limit: Option<f64>,
    /// Requests a client may send at once under --rate-limit (default:
    /// twice the rate, at least 10).
    #[arg(long, value_name = "N", requires = "rate_limit")]
    pub rate_burst: Option<u32>,
}

impl Command {
    /// Whether the command moves one stream at a time (a blob, a manifest,
    /// a listing). It then runs on one thread: the bytes go from socket to
    /// output without crossing threads (large blobs are still hashed on a
    /// helper), which on a busy machine is what keeps it fast. Pulls,
    /// copies and the server use every core.
    pub fn is_single_stream(&self) -> bool {
        matches!(
            self,
            Command::Tags { .. }
                | Command::Manifest { .. }
                | Command::Config { .. }
                | Command::Blob { .. }
                | Command::Delete { .. }
                | Command::Catalog { .. }
        )
    }
}
