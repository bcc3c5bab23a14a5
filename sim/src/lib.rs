//! plexo-sim (filled by its issue).
pub mod emulated;
