//! Socket activation, the way systemd does it: a parent binds a TCP and a
//! Unix-domain listener, passes them as descriptors 3 and 4 with
//! `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES` set, and execs the echo
//! example (built with the `activation` feature); the example serves both
//! and sends READY=1 to `NOTIFY_SOCKET`. The parent is
//! `tests/util/activate.py` (Python's standard library: fork, dup2, execve).
#![cfg(feature = "activation")]

mod util;

use std::process::Command;

#[test]
fn the_echo_example_serves_the_listeners_it_was_given() {
    if Command::new("python3").arg("--version").output().is_err() {
        println!("SKIPPED: socket activation needs python3 for the parent process");
        return;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let build = Command::new(env!("CARGO"))
        .args(["build", "--example", "echo", "--features", "activation"])
        .current_dir(root)
        .output()
        .expect("cargo build");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{root}/target"));
    let echo = format!("{target}/debug/examples/echo");
    let dir = util::TempDir::new("activation");
    let out = Command::new("python3")
        .arg(format!("{root}/tests/util/activate.py"))
        .arg(&dir.0)
        .arg(&echo)
        .env("RUST_LOG", "hangup=info")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}\n{stderr}");
    assert!(
        out.status.success(),
        "the activation run failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("socket activation: OK"));
}
