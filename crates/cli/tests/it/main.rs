//! Integration tests of the `toolforge` binary against a real `toolforged`.
