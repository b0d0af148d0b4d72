//! Placeholder; the baseline server is being written.
fn main() {}
