//! Two network namespaces joined through a pair of TUN devices and a
//! forwarder in this process that holds each packet back for a set delay:
//! a link with a round trip of twice the delay, where the kernel has no
//! netem. Needs root, `ip` and /dev/net/tun. Namespaces are removed on drop.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A server namespace and a client namespace, 10.78.0.1 and 10.78.0.2,
/// joined by TUN devices whose packets this process forwards after `delay`.
pub struct DelayLink {
    pub server_ns: String,
    pub client_ns: String,
    pub server_ip: IpAddr,
    pub client_ip: IpAddr,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}); install iproute2"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// `struct ifreq` as TUNSETIFF reads it: the name, then the flags.
#[repr(C)]
struct IfReq {
    name: [u8; 16],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// Opens a TUN device named `name` in the calling thread's namespace.
fn open_tun(name: &str) -> Result<File, String> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map_err(|e| format!("open /dev/net/tun: {e}"))?;
    let mut req = IfReq {
        name: [0; 16],
        flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
        _rest: [0; 22],
    };
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads an ifreq of this layout from a valid pointer
    // and writes the name back into it.
    let rc = unsafe { libc::ioctl(f.as_raw_fd(), libc::TUNSETIFF, &mut req as *mut IfReq) };
    if rc != 0 {
        return Err(format!(
            "TUNSETIFF {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(f)
}

/// Packets waiting for their time, in order.
type Queue = Arc<(Mutex<VecDeque<(Instant, Vec<u8>)>>, Condvar)>;

fn forward(mut from: File, mut to: File, delay: Duration) {
    let q: Queue = Arc::default();
    let writer_q = q.clone();
    std::thread::spawn(move || loop {
        let (lock, cv) = &*writer_q;
        let mut g = lock.lock().unwrap();
        while g.is_empty() {
            g = cv.wait(g).unwrap();
        }
        let due = g.front().unwrap().0;
        let now = Instant::now();
        if due > now {
            let (g2, _) = cv.wait_timeout(g, due - now).unwrap();
            drop(g2);
            continue;
        }
        let (_, pkt) = g.pop_front().unwrap();
        drop(g);
        if to.write_all(&pkt).is_err() {
            return;
        }
    });
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 65_536];
        loop {
            let n = match from.read(&mut buf) {
                Ok(n) if n > 0 => n,
                _ => return,
            };
            let (lock, cv) = &*q;
            lock.lock()
                .unwrap()
                .push_back((Instant::now() + delay, buf[..n].to_vec()));
            cv.notify_one();
        }
    });
}

impl DelayLink {
    pub fn new(delay: Duration) -> Result<DelayLink, String> {
        if unsafe { libc::geteuid() } != 0 {
            return Err("needs root to create network namespaces".into());
        }
        if !std::path::Path::new("/dev/net/tun").exists() {
            return Err("no /dev/net/tun".into());
        }
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let tag = format!("{}t{n}", std::process::id() % 100_000);
        let link = DelayLink {
            server_ns: format!("hangup-ts{tag}"),
            client_ns: format!("hangup-tc{tag}"),
            server_ip: IpAddr::V4(Ipv4Addr::new(10, 78, 0, 1)),
            client_ip: IpAddr::V4(Ipv4Addr::new(10, 78, 0, 2)),
        };
        ip(&["netns", "add", &link.server_ns])?;
        ip(&["netns", "add", &link.client_ns])?;
        // TUN devices are made in the namespace of the thread that opens
        // them: a thread of its own goes into each.
        let (s_ns, c_ns) = (link.server_ns.clone(), link.client_ns.clone());
        let opened = std::thread::spawn(move || -> Result<(File, File), String> {
            super::netns::enter(&s_ns);
            let s = open_tun("tuns")?;
            super::netns::enter(&c_ns);
            let c = open_tun("tunc")?;
            Ok((s, c))
        })
        .join()
        .map_err(|_| "the TUN thread panicked".to_string())??;
        for (ns, dev, addr) in [
            (&link.server_ns, "tuns", "10.78.0.1/24"),
            (&link.client_ns, "tunc", "10.78.0.2/24"),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
        }
        let (s, c) = opened;
        let (s2, c2) = (
            s.try_clone().map_err(|e| e.to_string())?,
            c.try_clone().map_err(|e| e.to_string())?,
        );
        forward(s, c2, delay);
        forward(c, s2, delay);
        Ok(link)
    }
}

impl Drop for DelayLink {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.server_ns]);
        let _ = ip(&["netns", "del", &self.client_ns]);
    }
}
