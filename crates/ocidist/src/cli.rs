//! The command line: one set of connection flags shared by every
//! subcommand, and the subcommands themselves.
//!
//! The doc comments here are clap's `--help` text, written for a
//! terminal: `host[:port]` is a syntax, not a link, and escaping it would
//! print the backslashes.
#![allow(rustdoc::broken_intra_doc_links)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Pull, copy, inspect and serve OCI images and artifacts.
#[derive(Debug, Parser)]
#[command(
    name = "ocidist",
    version,
    about,
    propagate_version = true,
    after_help = crate::failure::EXIT_CODES_HELP
)]
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

/// The connection flags' ids, as clap names them.
const CONNECT_FLAGS: [&str; 13] = [
    "username",
    "password",
    "password_stdin",
    "token",
    "anonymous",
    "scheme",
    "plain_http",
    "insecure",
    "cacert",
    "cert",
    "key",
    "namespace",
    "proxy",
];

/// Subcommands that contact no registry: the connection flags are not
/// theirs, so their help does not list them and giving one is a usage
/// error (`serve -u` would otherwise look like server credentials).
const WITHOUT_CONNECTION: [&str; 4] = ["serve", "gc", "completions", "logout"];

impl Cli {
    /// The clap command; with `hide_connection`, the connection flags are
    /// left out of its help (for the subcommands that connect nowhere).
    pub fn command_for_help(hide_connection: bool) -> clap::Command {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        if hide_connection {
            for id in CONNECT_FLAGS {
                cmd = cmd.mut_arg(id, |arg| arg.hide(true));
            }
        }
        cmd
    }

    /// Parses the process's arguments; on a usage error, prints it and
    /// exits with status 2.
    pub fn parse_args() -> Cli {
        Cli::parse_from_args(std::env::args_os())
    }

    /// Parses `args` (the program name first); on a usage error, prints it
    /// and exits with status 2.
    pub fn parse_from_args<I, T>(args: I) -> Cli
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from_args(args).unwrap_or_else(|e| e.exit())
    }

    /// Parses `args` (the program name first).
    pub fn try_parse_from_args<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::FromArgMatches;
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        // Help is rendered for the subcommand named, so the flags are hidden
        // when the first word naming a subcommand connects nowhere.
        let commands = <Cli as clap::CommandFactory>::command();
        let named = args.iter().skip(1).find_map(|arg| {
            let arg = arg.to_str()?;
            commands
                .find_subcommand(arg)
                .map(|sub| sub.get_name().to_owned())
        });
        let hide = named.is_some_and(|name| WITHOUT_CONNECTION.contains(&name.as_str()));
        let mut cmd = Cli::command_for_help(hide);
        let matches = cmd.try_get_matches_from_mut(args)?;
        if let Some((name, _)) = matches.subcommand()
            && WITHOUT_CONNECTION.contains(&name)
            && let Some(flag) = CONNECT_FLAGS
                .iter()
                .find(|id| matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine))
        {
            let hint = if name == "serve" {
                "; the server's own credentials are --htpasswd (and --policy)"
            } else {
                ""
            };
            return Err(cmd.error(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "`{name}` connects to no registry and takes no connection flag \
                     (--{} was given){hint}",
                    flag.replace('_', "-").replace("namespace", "ns")
                ),
            ));
        }
        Cli::from_arg_matches(&matches).map_err(|e| e.format(&mut cmd))
    }
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

// --- per-side connection flags of copy (issue #16) ---
/// Connection flags for the source of `copy`, overriding the global ones.
#[derive(Debug, Args, Clone, Default)]
pub struct SrcFlags {
    /// User name for the source registry.
    #[arg(
        long = "src-username",
        value_name = "USER",
        requires = "src_password_source"
    )]
    pub src_username: Option<String>,
    /// Password for --src-username.
    #[arg(
        long = "src-password",
        value_name = "PASSWORD",
        group = "src_password_source"
    )]
    pub src_password: Option<Secret>,
    /// Read the source password from standard input.
    #[arg(long = "src-password-stdin", group = "src_password_source", conflicts_with_all = ["password_stdin", "dest_password_stdin"])]
    pub src_password_stdin: bool,
    /// Ignore stored credentials for the source.
    #[arg(long = "src-anonymous", conflicts_with = "src_username")]
    pub src_anonymous: bool,
    /// URL scheme of the source registry.
    #[arg(long = "src-scheme", value_enum, value_name = "SCHEME")]
    pub src_scheme: Option<SchemeArg>,
    /// Same as --src-scheme http.
    #[arg(long = "src-plain-http", conflicts_with = "src_scheme")]
    pub src_plain_http: bool,
    /// Skip TLS certificate verification for the source.
    #[arg(long = "src-insecure")]
    pub src_insecure: bool,
    /// Extra CA certificates (PEM) to trust for the source.
    #[arg(long = "src-cacert", value_name = "FILE")]
    pub src_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for the source.
    #[arg(long = "src-cert", value_name = "FILE", requires = "src_key")]
    pub src_cert: Option<PathBuf>,
    /// Client key (PEM) for the source.
    #[arg(long = "src-key", value_name = "FILE", requires = "src_cert")]
    pub src_key: Option<PathBuf>,
}

impl SrcFlags {
    /// This side's overrides.
    fn overrides(&self) -> SideOverrides<'_> {
        SideOverrides {
            username: &self.src_username,
            password: &self.src_password,
            password_stdin: self.src_password_stdin,
            anonymous: self.src_anonymous,
            scheme: self.src_scheme,
            plain_http: self.src_plain_http,
            insecure: self.src_insecure,
            cacert: &self.src_cacert,
            cert: &self.src_cert,
            key: &self.src_key,
        }
    }

    /// The first of these flags given, if any (they mean nothing for a
    /// store read directly).
    pub fn first_given(&self) -> Option<String> {
        self.overrides().first_given("src")
    }

    /// The global flags with this side's overrides applied.
    pub fn apply(&self, global: &ConnectFlags) -> ConnectFlags {
        self.overrides().apply(global)
    }
}

/// Connection flags for the destination of `copy`, overriding the global ones.
#[derive(Debug, Args, Clone, Default)]
pub struct DestFlags {
    /// User name for the destination registry.
    #[arg(
        long = "dest-username",
        value_name = "USER",
        requires = "dest_password_source"
    )]
    pub dest_username: Option<String>,
    /// Password for --dest-username.
    #[arg(
        long = "dest-password",
        value_name = "PASSWORD",
        group = "dest_password_source"
    )]
    pub dest_password: Option<Secret>,
    /// Read the destination password from standard input.
    #[arg(
        long = "dest-password-stdin",
        group = "dest_password_source",
        conflicts_with = "password_stdin"
    )]
    pub dest_password_stdin: bool,
    /// Ignore stored credentials for the destination.
    #[arg(long = "dest-anonymous", conflicts_with = "dest_username")]
    pub dest_anonymous: bool,
    /// URL scheme of the destination registry.
    #[arg(long = "dest-scheme", value_enum, value_name = "SCHEME")]
    pub dest_scheme: Option<SchemeArg>,
    /// Same as --dest-scheme http.
    #[arg(long = "dest-plain-http", conflicts_with = "dest_scheme")]
    pub dest_plain_http: bool,
    /// Skip TLS certificate verification for the destination.
    #[arg(long = "dest-insecure")]
    pub dest_insecure: bool,
    /// Extra CA certificates (PEM) to trust for the destination.
    #[arg(long = "dest-cacert", value_name = "FILE")]
    pub dest_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for the destination.
    #[arg(long = "dest-cert", value_name = "FILE", requires = "dest_key")]
    pub dest_cert: Option<PathBuf>,
    /// Client key (PEM) for the destination.
    #[arg(long = "dest-key", value_name = "FILE", requires = "dest_cert")]
    pub dest_key: Option<PathBuf>,
}

impl DestFlags {
    /// This side's overrides.
    fn overrides(&self) -> SideOverrides<'_> {
        SideOverrides {
            username: &self.dest_username,
            password: &self.dest_password,
            password_stdin: self.dest_password_stdin,
            anonymous: self.dest_anonymous,
            scheme: self.dest_scheme,
            plain_http: self.dest_plain_http,
            insecure: self.dest_insecure,
            cacert: &self.dest_cacert,
            cert: &self.dest_cert,
            key: &self.dest_key,
        }
    }

    /// The first of these flags given, if any (they mean nothing for a
    /// store written directly).
    pub fn first_given(&self) -> Option<String> {
        self.overrides().first_given("dest")
    }

    /// The global flags with this side's overrides applied.
    pub fn apply(&self, global: &ConnectFlags) -> ConnectFlags {
        self.overrides().apply(global)
    }
}

/// One side's overrides of `copy`, whichever prefix its flags carry.
struct SideOverrides<'a> {
    username: &'a Option<String>,
    password: &'a Option<Secret>,
    password_stdin: bool,
    anonymous: bool,
    scheme: Option<SchemeArg>,
    plain_http: bool,
    insecure: bool,
    cacert: &'a Option<PathBuf>,
    cert: &'a Option<PathBuf>,
    key: &'a Option<PathBuf>,
}

impl SideOverrides<'_> {
    /// The first of these flags given, named as `--SIDE-…`.
    fn first_given(&self, side: &str) -> Option<String> {
        [
            (self.username.is_some(), "username"),
            (self.password.is_some(), "password"),
            (self.password_stdin, "password-stdin"),
            (self.anonymous, "anonymous"),
            (self.scheme.is_some(), "scheme"),
            (self.plain_http, "plain-http"),
            (self.insecure, "insecure"),
            (self.cacert.is_some(), "cacert"),
            (self.cert.is_some(), "cert"),
            (self.key.is_some(), "key"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then(|| format!("--{side}-{name}")))
    }

    /// The global flags with these overrides applied: credentials replace
    /// the global ones whole, as do the scheme, the CA and the client
    /// certificate; `insecure` adds to the global one.
    fn apply(&self, global: &ConnectFlags) -> ConnectFlags {
        let mut f = global.clone();
        if let Some(u) = self.username {
            f.username = Some(u.clone());
            f.password = self.password.clone();
            f.password_stdin = self.password_stdin;
            f.token = None;
            f.anonymous = false;
        }
        if self.anonymous {
            f.username = None;
            f.password = None;
            f.password_stdin = false;
            f.token = None;
            f.anonymous = true;
        }
        if self.scheme.is_some() || self.plain_http {
            f.scheme = self.scheme;
            f.plain_http = self.plain_http;
        }
        f.insecure |= self.insecure;
        if self.cacert.is_some() {
            f.cacert = self.cacert.clone();
        }
        if self.cert.is_some() {
            f.cert = self.cert.clone();
            f.key = self.key.clone();
        }
        f
    }
}
// --- end per-side connection flags ---

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
    /// A `docker save` tarball (layers as served, compressed).
    Docker,
    /// A `docker save` tarball with uncompressed layers named by diff_id,
    /// as docker and skopeo write it.
    DockerSave,
    /// An OCI image layout tar.
    Oci,
    /// An OCI image layout directory.
    OciDir,
}

/// Shells `completions` writes scripts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    /// bash.
    Bash,
    /// zsh.
    Zsh,
    /// fish.
    Fish,
}

/// Which manifest `manifest` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ManifestArg {
    /// The manifest list / index.
    List,
    /// The image manifest (resolved to the platform).
    Image,
}

/// `inspect --help`: the JSON shape.
const INSPECT_JSON_HELP: &str = "\
--json prints one object; every key is always present (null when it does not apply):
  {\"reference\", \"digest\", \"mediaType\", \"size\",
   \"platforms\": [{\"platform\", \"digest\", \"mediaType\", \"size\"}] or null (not an index),
   \"image\": {\"digest\", \"mediaType\", \"artifactType\", \"config\": {\"digest\", \"mediaType\", \"size\"},
             \"created\", \"os\", \"architecture\", \"variant\", \"layers\", \"layersSize\"} or null}";

/// `pull`, `push` and `copy --help`: store references.
const STORE_REFS_HELP: &str = "\
Stores without a server: where a reference is taken, STORE#path[:tag][@digest]
reads or writes a store directly, STORE being what `serve --storage` takes:
  s3://BUCKET/PREFIX   an S3 bucket (credentials and endpoint from AWS_ACCESS_KEY_ID,
                       AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT, AWS_ALLOW_HTTP)
  file:///PATH         the same object-store layout in a local directory
  DIR                  a layout store (one OCI image layout per repository)
e.g. `ocidist copy localhost:5000/demo/hello:1.0 s3://my-bucket/registry#demo/hello`.
A source store must exist; a directory target is created.";

/// The subcommands.
// Parsed once per run; boxing copy's per-side flags would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List a repository's tags, one a line.
    Tags {
        /// Repository: host[:port]/path, or STORE#path (no tag or digest).
        repo: String,
        /// Print {"name":…,"tags":[…]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Print a manifest as served (pretty by default); its digest goes to stderr.
    Manifest {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
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
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// Platform selection.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Write a blob to stdout or a file.
    Blob {
        /// host[:port]/path@digest, or STORE#path@digest.
        reference: String,
        /// Write to FILE instead of stdout.
        #[arg(short, long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Replace an existing FILE.
        #[arg(long, requires = "output")]
        force: bool,
    },
    /// Pull an image to a docker tarball or an OCI layout.
    #[command(after_help = STORE_REFS_HELP)]
    Pull {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
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
        /// Print the result as JSON: {"reference", "index", "manifest",
        /// "format", "path", "layers", "bytes"} (index null for an image).
        #[arg(long)]
        json: bool,
        /// Fetch layers of at least this many MiB as parallel range
        /// requests, for links with high latency; each such layer holds up
        /// to 4 ranges of at most 64 MiB in memory (0, the default: every
        /// layer as one stream, which is faster on fast links).
        #[arg(long, value_name = "MIB", default_value_t = 0)]
        ranged_above: u64,
        /// Platform selection.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    // --- export (issue #17) ---
    /// Write an image's filesystem as one tar, its layers flattened.
    ///
    /// Whiteouts are applied, as `crane export` does; entries that could
    /// write outside the root when unpacked are skipped and listed on
    /// stderr.
    Export {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// Where to write the tar (`-` for stdout).
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
        /// Replace an existing FILE.
        #[arg(long)]
        force: bool,
        /// Platform selection (an index's image; default: the host's).
        #[command(flatten)]
        platform: PlatformFlags,
    },
    // --- end export ---
    /// Copy an image or a whole index between repositories, registries and
    /// stores.
    ///
    /// The global connection flags apply to both sides; --src-* and
    /// --dest-* override them for one.
    #[command(after_help = STORE_REFS_HELP)]
    Copy {
        /// Source: host[:port]/path[:tag][@digest] or STORE#path[:tag][@digest].
        source: String,
        /// Target, in a registry or a store (its tag defaults to the source's).
        target: String,
        /// Copy the index and every platform (the default for an index
        /// unless --platform picks one).
        #[arg(long, conflicts_with_all = ["platform", "os", "arch", "variant"])]
        all_platforms: bool,
        /// Blobs copied at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print the result as JSON: {"source", "target", "digest",
        /// "mediaType", "size", "copied", "mounted", "present",
        /// "referrers"} (referrers null without --with-referrers).
        #[arg(long)]
        json: bool,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
        /// Also copy what refers to the image (signatures, attestations,
        /// SBOMs), and what refers to those.
        #[arg(long)]
        with_referrers: bool,
        /// Platform selection: copy only this platform's image of an index.
        #[command(flatten)]
        platform: PlatformFlags,
        /// Source connection flags.
        #[command(flatten)]
        src: SrcFlags,
        /// Destination connection flags.
        #[command(flatten)]
        dest: DestFlags,
    },
    // --- referrers, attach, artifact (issue #17) ---
    /// List what refers to a manifest (OCI 1.1 referrers: signatures,
    /// SBOMs, attestations).
    ///
    /// Asks the registry's referrers API, or reads the referrers tag
    /// (`sha256-<hex>`) where the registry has none. One line per referrer:
    /// digest, artifact type, size.
    Referrers {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// Only referrers of this artifact type.
        #[arg(long, value_name = "TYPE")]
        artifact_type: Option<String>,
        /// Print {"reference", "subject", "referrers": [descriptor…]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Attach files to a manifest as an artifact that refers to it.
    ///
    /// The artifact is pushed by digest with the manifest as its
    /// `subject`; on a registry without the referrers API the referrers
    /// tag is updated too. Prints the artifact's digest.
    Attach {
        /// The manifest to attach to: host[:port]/path[:tag][@digest].
        reference: String,
        /// The artifact's type, e.g. application/vnd.example.signature.
        #[arg(long, value_name = "TYPE")]
        artifact_type: String,
        /// Files to attach, each PATH or PATH:MEDIATYPE.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// Print {"reference", "subject", "digest", "mediaType", "size",
        /// "artifactType", "files"} instead.
        #[arg(long)]
        json: bool,
    },
    /// Push or pull plain files as an OCI artifact, as oras does.
    Artifact {
        /// What to do.
        #[command(subcommand)]
        command: ArtifactCommand,
    },
    // --- end referrers, attach, artifact ---
    /// Delete a manifest (by digest) or a tag.
    Delete {
        /// host[:port]/path:tag or host[:port]/path@digest.
        reference: String,
    },
    // --- digest, tag, inspect (issue #16) ---
    /// Print the digest of the manifest a reference names, alone on stdout.
    Digest {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// Platform selection: print the platform's image manifest digest
        /// instead of the index's.
        #[command(flatten)]
        platform: PlatformFlags,
    },
    /// Tag a manifest again, in the same repository.
    ///
    /// No blob moves and an index stays an index: its exact bytes are
    /// pushed under the new tag.
    Tag {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// The new tag.
        new_tag: String,
    },
    /// Summarise an image or index.
    ///
    /// Media type, digest, platforms of an index, created, os/architecture,
    /// layer count and total size.
    #[command(after_help = INSPECT_JSON_HELP)]
    Inspect {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// Print the summary as JSON (shape below).
        #[arg(long)]
        json: bool,
        /// Platform selection (an index's image; default: the host's, if any).
        #[command(flatten)]
        platform: PlatformFlags,
    },
    // --- end digest, tag, inspect ---
    // --- login, logout (issue #16) ---
    /// Check credentials against a registry, then store them.
    ///
    /// They go to docker's config.json (or its credential helper), where
    /// docker, podman and skopeo find them. Prompts on the terminal unless
    /// -u with -p or --password-stdin is given.
    Login {
        /// Registry host[:port].
        registry: String,
    },
    /// Remove a registry's stored credentials.
    Logout {
        /// Registry host[:port].
        registry: String,
    },
    // --- end login, logout ---
    // --- push (issue #16) ---
    /// Push a docker tarball, OCI archive or OCI layout to a registry.
    ///
    /// A layout holding an index pushes every platform. What `pull` wrote
    /// pushes back with the same digests.
    #[command(after_help = STORE_REFS_HELP)]
    Push {
        /// The tarball or layout directory.
        source: PathBuf,
        /// Target: host[:port]/path[:tag] or STORE#path[:tag] (tag
        /// default `latest`).
        target: String,
        /// Blobs uploaded at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print the result as JSON: {"source", "target", "digest",
        /// "mediaType", "size", "uploaded", "present"}.
        #[arg(long)]
        json: bool,
        /// No progress bars.
        #[arg(long)]
        no_progress: bool,
    },
    // --- end push ---
    // --- completions (issue #16) ---
    /// Print a shell completion script.
    ///
    /// For example `ocidist completions bash > /etc/bash_completion.d/ocidist`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: ShellArg,
    },
    // --- end completions ---
    /// List a registry's repositories.
    Catalog {
        /// Registry host[:port], or a store read directly:
        /// s3://BUCKET/PREFIX, file:///PATH or DIR# (a layout store).
        host: String,
        /// Print {"repositories":[…]} instead.
        #[arg(long)]
        json: bool,
    },
    /// Remove blobs no manifest references from an on-disk or object store.
    Gc {
        /// The store (as given to `serve --storage`): a directory, or an
        /// object store URL (s3://, gs://, az://BUCKET/PREFIX, file:///PATH).
        #[arg(long, value_name = "DIR|URL")]
        storage: PathBuf,
        /// Keep unreferenced blobs younger than this many seconds. It may
        /// run while `serve --storage DIR` serves the store: then blobs
        /// pushed for a manifest not yet pushed are kept for this long
        /// (default 3600 with a server running, else 0).
        #[arg(long, value_name = "SECONDS")]
        grace: Option<u64>,
    },
    /// Run a registry on an embedded store.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: String,
        /// Keep content on disk in DIR, as OCI image layouts, or in an
        /// object store: s3://BUCKET/PREFIX (credentials and endpoint from
        /// AWS_* variables), gs://BUCKET/PREFIX (GOOGLE_*), az://CONTAINER/PREFIX
        /// (AZURE_*), file:///PATH (default: in memory).
        #[arg(long, value_name = "DIR|URL")]
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
        /// Authentication and authorization.
        #[command(flatten)]
        auth: crate::server_auth::AuthFlags,
        /// Limits on clients, connections and upload sessions.
        #[command(flatten)]
        limits: LimitFlags,
        /// A pull-through cache of upstream registries.
        #[command(flatten)]
        mirror: crate::mirror::MirrorFlags,
    },
}

/// `artifact push` and `artifact pull`.
#[derive(Debug, Subcommand)]
pub enum ArtifactCommand {
    /// Push files as an artifact; each file's name becomes its title.
    Push {
        /// Target reference: host[:port]/path[:tag] or STORE#path[:tag] (tag
        /// default `latest`).
        target: String,
        /// Files to push, each PATH or PATH:MEDIATYPE.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<String>,
        /// The artifact's type (default application/vnd.unknown.artifact.v1).
        #[arg(long, value_name = "TYPE")]
        artifact_type: Option<String>,
        /// Print {"target", "digest", "mediaType", "size", "artifactType",
        /// "files"} instead.
        #[arg(long)]
        json: bool,
    },
    /// Pull an artifact's files into a directory, named by their titles.
    Pull {
        /// Reference: host[:port]/path[:tag][@digest], or in a store
        /// read directly: STORE#path[:tag][@digest].
        reference: String,
        /// The directory to write into (created if missing).
        #[arg(short, long, value_name = "DIR")]
        output: PathBuf,
        /// Replace files that exist.
        #[arg(long)]
        force: bool,
        /// Files downloaded at once.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print {"reference", "digest", "artifactType", "files"} instead.
        #[arg(long)]
        json: bool,
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
    /// Whether the command's runtime needs only one thread: it moves one
    /// stream at a time (a blob, a manifest, a listing), or it is `pull`,
    /// whose blobs are hashed and written on helper threads so the runtime
    /// only receives (and, on one thread, the network's buffers come from
    /// one malloc arena, not one per worker: a smaller peak RSS). The
    /// bytes then go from socket to output without crossing runtime
    /// threads, which on a busy machine is what keeps it fast. Copies,
    /// pushes and the server use every core.
    pub fn is_single_stream(&self) -> bool {
        matches!(
            self,
            Command::Pull { .. }
                | Command::Tags { .. }
                | Command::Manifest { .. }
                | Command::Config { .. }
                | Command::Blob { .. }
                | Command::Delete { .. }
                | Command::Catalog { .. }
                | Command::Digest { .. }
                | Command::Tag { .. }
                | Command::Inspect { .. }
                | Command::Referrers { .. }
        )
    }
}

#[cfg(test)]
mod connection_flag_tests {
    use super::Cli;

    fn help(sub: &str) -> String {
        let err = Cli::try_parse_from_args(["ocidist", sub, "--help"]).expect_err("help");
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        err.to_string()
    }

    #[test]
    fn serve_and_gc_help_list_only_their_own_flags() {
        for sub in ["serve", "gc"] {
            let text = help(sub);
            for flag in [
                "--username ",
                "--password ",
                "--cacert ",
                "--insecure ",
                "--ns ",
            ] {
                assert!(!text.contains(flag), "`{sub} --help` lists {flag}:\n{text}");
            }
        }
        assert!(help("serve").contains("--htpasswd"));
        assert!(help("tags").contains("--username"));
    }

    #[test]
    fn serve_refuses_connection_flags_and_says_where_server_credentials_go() {
        for args in [
            &["ocidist", "serve", "-u", "a", "-p", "b"][..],
            &["ocidist", "-u", "a", "-p", "b", "serve"][..],
            &["ocidist", "serve", "--insecure"][..],
        ] {
            let err = Cli::try_parse_from_args(args).expect_err("refused");
            assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
            assert!(err.to_string().contains("--htpasswd"), "{err}");
        }
        let err = Cli::try_parse_from_args(["ocidist", "gc", "--storage", "/x", "--ns", "y"])
            .expect_err("refused");
        assert!(err.to_string().contains("--ns was given"), "{err}");
    }

    #[test]
    fn client_commands_keep_the_connection_flags_before_or_after() {
        for args in [
            &["ocidist", "tags", "-u", "a", "-p", "b", "localhost:5000/x"][..],
            &["ocidist", "-u", "a", "-p", "b", "tags", "localhost:5000/x"][..],
        ] {
            let cli = Cli::try_parse_from_args(args).expect("parsed");
            assert_eq!(cli.connect.username.as_deref(), Some("a"));
        }
        assert!(Cli::try_parse_from_args(["ocidist", "serve", "--demo"]).is_ok());
    }
}
