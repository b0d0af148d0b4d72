//! Placeholder; the ceilings tool is being written.
fn main() {}
