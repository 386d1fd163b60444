//! Logging for the tests and the examples (shared by `#[path]`): the
//! library's `log` records go to stderr through `env_logger`, filtered by
//! `RUST_LOG` as usual (`RUST_LOG=hangup=debug`, `RUST_LOG=trace`). Calling
//! `init` again is harmless.

pub fn init() {
    // A second call finds the logger set and changes nothing.
    let _ = env_logger::Builder::from_default_env()
        .is_test(cfg!(test))
        .try_init();
}

/// As [`init`], with `filter` when `RUST_LOG` is not set.
#[allow(dead_code)]
pub fn init_with_default(filter: &str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(filter))
        .is_test(cfg!(test))
        .try_init();
}
