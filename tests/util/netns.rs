//! Two network namespaces joined by a veth pair, for making a peer vanish:
//! the server lives in one, the client in the other, and taking the client's
//! link down makes the client disappear without a FIN or a reset.
//!
//! Shared by the dead-peer tests and the closewatch example (by `#[path]`).
//! Needs root and `ip` (iproute2). Namespaces are removed on drop, also when
//! a test panics.
#![allow(dead_code)]

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A server namespace and a client namespace joined by a veth pair, with
/// the neighbour entries pinned so the kernel never falls back to
/// EHOSTUNREACH when the link dies.
#[derive(Debug)]
pub struct NetPair {
    pub server_ns: String,
    pub client_ns: String,
    pub server_if: String,
    pub client_if: String,
    pub server_ip: IpAddr,
    pub client_ip: IpAddr,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}); install iproute2"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl NetPair {
    /// Builds the pair, or says why it cannot (the caller skips).
    pub fn new() -> Result<NetPair, String> {
        if !is_root() {
            return Err("needs root to create network namespaces".into());
        }
        ip(&["-V"])?;
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}x{n}", std::process::id() % 100_000);
        let pair = NetPair {
            server_ns: format!("hangup-s{tag}"),
            client_ns: format!("hangup-c{tag}"),
            server_if: format!("hs{tag}"),
            client_if: format!("hc{tag}"),
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 1)),
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 77, 0, 2)),
        };
        // From here on, Drop cleans up whatever was made.
        pair.build()?;
        Ok(pair)
    }

    fn build(&self) -> Result<(), String> {
        let (s, c) = (&self.server_ns, &self.client_ns);
        ip(&["netns", "add", s])?;
        ip(&["netns", "add", c])?;
        ip(&[
            "link",
            "add",
            &self.server_if,
            "netns",
            s,
            "type",
            "veth",
            "peer",
            "name",
            &self.client_if,
            "netns",
            c,
        ])?;
        for (ns, ifname, addr) in [
            (s, &self.server_if, "10.77.0.1/24"),
            (c, &self.client_if, "10.77.0.2/24"),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", ifname])?;
            ip(&["-n", ns, "link", "set", ifname, "up"])?;
        }
        let s_mac = self.mac(s, &self.server_if)?;
        let c_mac = self.mac(c, &self.client_if)?;
        ip(&[
            "-n",
            s,
            "neigh",
            "replace",
            "10.77.0.2",
            "lladdr",
            &c_mac,
            "dev",
            &self.server_if,
            "nud",
            "permanent",
        ])?;
        ip(&[
            "-n",
            c,
            "neigh",
            "replace",
            "10.77.0.1",
            "lladdr",
            &s_mac,
            "dev",
            &self.client_if,
            "nud",
            "permanent",
        ])?;
        Ok(())
    }

    fn mac(&self, ns: &str, ifname: &str) -> Result<String, String> {
        let out = ip(&["-n", ns, "-o", "link", "show", ifname])?;
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .map(str::to_string)
            .ok_or_else(|| format!("no MAC address for {ifname} in: {out}"))
    }

    /// Moves the calling thread into the server namespace: sockets it creates
    /// from now on live there.
    pub fn enter_server(&self) {
        enter(&self.server_ns);
    }

    /// Moves the calling thread into the client namespace.
    pub fn enter_client(&self) {
        enter(&self.client_ns);
    }

    /// Takes the client's link down: the client vanishes, silently.
    pub fn client_link_down(&self) {
        ip(&[
            "-n",
            &self.client_ns,
            "link",
            "set",
            &self.client_if,
            "down",
        ])
        .expect("link down");
    }
}

pub fn enter(ns: &str) {
    let f = File::open(format!("/var/run/netns/{ns}")).expect("open netns");
    // SAFETY: setns with a valid namespace descriptor; it affects only the
    // calling thread's network namespace.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {ns}: {}", std::io::Error::last_os_error());
}

impl Drop for NetPair {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end in it, and with it the pair.
        let _ = ip(&["netns", "del", &self.server_ns]);
        let _ = ip(&["netns", "del", &self.client_ns]);
    }
}

/// Says clearly why a namespace test skips. With `HANGUP_REQUIRE_NETNS=1`
/// (set by `.ci/run` when it runs as root) a skip is a failure instead, so
/// CI cannot pass by skipping.
pub fn skip(test: &str, why: &str) {
    if std::env::var_os("HANGUP_REQUIRE_NETNS").is_some_and(|v| v == "1") {
        panic!("{test}: cannot build network namespaces ({why}) and HANGUP_REQUIRE_NETNS=1");
    }
    eprintln!("SKIPPED {test}: {why}");
    println!("SKIPPED {test}: {why}");
}
