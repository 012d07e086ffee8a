//! The `toolforge` command line (work in progress).

fn main() {}
