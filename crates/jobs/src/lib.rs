//! The jobs service's domain: job definitions and their validation, defaults, schedules
//! (cron parsing, the original's `schedule_actual`), and the scheduler's pure core.
//!
//! No HTTP and no IO here: the API lives in `api-server`, storage in `store`, and running
//! in `runtime`.

pub mod pyrandom;
pub mod quantity;
pub mod schedule;
pub mod scheduler;
pub mod spec;
pub mod webservice;
