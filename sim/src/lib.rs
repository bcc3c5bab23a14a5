//! plexo-sim (filled by its issue).
