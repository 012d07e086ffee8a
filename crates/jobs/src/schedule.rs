//! Cron schedules: parsing with the original's rules and `schedule_actual`.
