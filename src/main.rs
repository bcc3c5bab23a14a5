//! The `plexo` command-line application.
fn main() {}
