//! A minimal stderr logger for the tests and the examples (shared by
//! `#[path]`): prints the library's `log` records when `HANGUP_LOG` is set
//! (`error`, `warn`, `info`, `debug`, `trace`). Calling it again is harmless.

struct Stderr;

impl log::Log for Stderr {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        eprintln!("[{:5} {}] {}", r.level(), r.target(), r.args());
    }
    fn flush(&self) {}
}

pub fn init() {
    if let Ok(level) = std::env::var("HANGUP_LOG") {
        // A second call finds the logger set and changes nothing.
        if log::set_logger(&Stderr).is_ok() {
            log::set_max_level(level.parse().unwrap_or(log::LevelFilter::Debug));
        }
    }
}
