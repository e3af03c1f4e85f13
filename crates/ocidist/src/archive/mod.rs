//! Output formats: the `docker save` tarball and the OCI image layout,
//! planned as tar entries and written with parallel downloads.

pub mod docker;
pub mod docker_save;
pub mod oci;
pub mod read;
pub mod tar;
pub mod write;
