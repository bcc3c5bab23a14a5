//! plexo-controller (filled by its issue).
