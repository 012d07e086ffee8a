//! Tests of the front proxy with real upstream HTTP servers on loopback.

mod forwarding;
mod pages;
mod protocols;
mod support;
mod websocket;
