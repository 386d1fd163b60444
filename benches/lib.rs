//! Nothing here: the benches of this package are its `[[bench]]` targets
//! (the comparison of hangup with raw mio and tokio). A package needs a
//! library or a binary to be built by `cargo test`, which then compiles none
//! of the benches' dependencies.
