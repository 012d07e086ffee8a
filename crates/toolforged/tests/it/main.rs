//! System tests of toolforged.
