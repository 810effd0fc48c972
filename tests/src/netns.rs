//! Network namespaces a test creates (`ip netns add`), so what it does on
//! "the network" (multicast, names resolved through a hosts file of its
//! own) stays inside: only a loopback, deleted with the namespace on drop.
//! Needs root; without it [`Netns::create`] answers `None` and the test
//! says so and returns.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::{workspace_root, ChildGuard, DEBIAN_PYTHON};

/// A network namespace of our own, deleted on drop.
pub struct Netns(String);

fn ip_ok(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    /// A fresh namespace with its loopback up (`127.0.0.1` and `::1`);
    /// `None` when namespaces cannot be made here (not root).
    pub fn create(tag: &str) -> Option<Netns> {
        let name = format!("bittide-{tag}-{}", std::process::id());
        if !ip_ok(&["netns", "add", &name]) {
            return None;
        }
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        Some(ns)
    }

    /// Runs `ip ARGS` inside the namespace; panics if it fails.
    pub fn ip(&self, args: &[&str]) {
        assert!(self.try_ip(args), "ip {args:?} in {}", self.0);
    }

    /// Runs `ip ARGS` inside the namespace; whether it worked.
    pub fn try_ip(&self, args: &[&str]) -> bool {
        ip_ok(&[&["netns", "exec", &self.0, "ip"][..], args].concat())
    }

    /// Adds a veth pair, both ends up, so the namespace has a link that
    /// carries IPv6 multicast (its loopback does not); its link-local
    /// addresses are usable at once (no duplicate address detection).
    /// False where the kernel has no veth.
    pub fn add_veth(&self) -> bool {
        let no_dad = self
            .command("sh")
            .args(["-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad"])
            .status()
            .is_ok_and(|s| s.success());
        no_dad
            && self.try_ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"])
            && self.try_ip(&["link", "set", "v0", "up"])
            && self.try_ip(&["link", "set", "v1", "up"])
    }

    /// Gives the namespace its own `/etc/hosts` (`ip netns exec` mounts
    /// `/etc/netns/NAME/hosts` over it), so names resolve as the test
    /// says without touching the host's.
    pub fn hosts(&self, text: &str) {
        let dir = self.etc();
        std::fs::create_dir_all(&dir).expect("create /etc/netns/NAME");
        std::fs::write(dir.join("hosts"), text).expect("write the namespace's hosts file");
    }

    fn etc(&self) -> PathBuf {
        PathBuf::from("/etc/netns").join(&self.0)
    }

    /// `tests/interop/lt_tool.py ARGS` inside the namespace; its stdout
    /// lines on a channel, the guard stops it.
    pub fn libtorrent(&self, args: &[&str]) -> (ChildGuard, mpsc::Receiver<String>) {
        let mut child = self
            .command(DEBIAN_PYTHON)
            .arg(workspace_root().join("tests/interop/lt_tool.py"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start lt_tool.py in the namespace");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        (ChildGuard(child), rx)
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).arg(program);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.0])
            .status();
        let _ = std::fs::remove_dir_all(self.etc());
    }
}
