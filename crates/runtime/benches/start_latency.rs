//! Placeholder until the start-latency benchmark lands.
fn main() {}
