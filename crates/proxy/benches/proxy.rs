//! The proxy benchmark (being written).

fn main() {}
