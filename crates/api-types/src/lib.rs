//! Wire types: what crosses a process boundary as JSON.
//!
//! API Boundary: these structs are the contract with scripts (`toolforged admin --json`)
//! and clients; renaming a field is a breaking change.
//! This is the only crate whose types derive `Serialize`.

pub mod admin;
pub mod envelope;
pub mod jobs;
pub mod toolinfo;
