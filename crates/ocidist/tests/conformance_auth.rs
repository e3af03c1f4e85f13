//! The project's conformance suite against our server with basic
//! authentication on, credentials given the way the spec's suite takes
//! them (`OCI_USERNAME`, `OCI_PASSWORD`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use oci_auth::{Authenticator, Htpasswd, Policy};
use oci_server::{RegistryService, ServerOptions, TestServer};
use ocidist::server_auth::ServerAuth;

/// Written by `htpasswd -nbB alice wonderland`.
const USERS: &str = "alice:$2y$05$LrK7zJ7kI66wHXvOJ41mKeYCcCQXqZP2aEz.RaiLY26SOVLFdgUxC\n";

async fn target() -> oci_conformance::Target {
    let mut config = oci_conformance::Config::from_env();
    config.root_url = None;
    config.username = Some("alice".to_owned());
    config.password = Some("wonderland".to_owned());
    let users = Arc::new(Htpasswd::parse(USERS, "users").unwrap());
    let auth = Authenticator::basic("ocidist", users, Policy::authenticated_all());
    let options = ServerOptions::new().authorizer(Arc::new(ServerAuth::new(auth)));
    let service = RegistryService::with_options(Arc::new(oci_mem::MemRegistry::new()), options);
    let server = TestServer::start_service(service).await;
    oci_conformance::Target::new(&server.url(), config, Some(Box::new(server)))
}

oci_conformance::all_conformance_tests!(target);
