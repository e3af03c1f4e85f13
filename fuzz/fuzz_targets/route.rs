//! The server's route parser over any request path: a path is routed or
//! refused with a spec code and a 4xx status; a routed path's canonical
//! form routes to the same endpoint.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ocidist_fuzz::{refused_clearly, text};

fuzz_target!(|data: &[u8]| {
    let path = text(data);
    let path = path.as_ref();
    match oci_server::route_path(path) {
        Ok(canonical) => {
            let again = oci_server::route_path(&canonical).unwrap_or_else(|e| {
                panic!("{path:?} routed as {canonical:?} which does not route: {e}")
            });
            assert_eq!(again, canonical, "{path:?}");
        }
        Err(e) => {
            refused_clearly("path", path, &e, &[]);
            assert!(
                (400..500).contains(&e.status()),
                "path {path:?} refused with status {}: {e}",
                e.status()
            );
        }
    }
});
