//! The whole suite against the registry `OCI_ROOT_URL` names, e.g.
//! `OCI_ROOT_URL=http://127.0.0.1:5000 cargo test -p oci-conformance --test external`.
//! Without `OCI_ROOT_URL` it tests the in-process server, so it always
//! tests something.

oci_conformance::all_conformance_tests!(oci_conformance::target_from_env);
