//! The bundled conformance server and black-box suite (being written).
