//! Runs a program of an unpacked image roughly as a container runtime would, with no engine: in
//! a network namespace the test creates (so iptables and `--cleanup` touch only its rules), in a
//! mount namespace with its own /proc, chrooted into the image's root, with only the image's
//! environment and, when given, its user.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::build::Image;

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "portico-img-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let status = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip runs");
        assert!(status.success(), "ip netns add {name}");
        let status = Command::new("ip")
            .args(["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
            .status()
            .expect("ip runs");
        assert!(status.success(), "lo up in {name}");
        Netns { name }
    }

    /// `program args...` from the image's root, as `user` ("uid:gid") when given.
    pub fn run_in(
        &self,
        image: &Image,
        user: Option<&str>,
        program: &str,
        args: &[&str],
    ) -> Output {
        // Host programs by absolute path: the environment below is the image's, not the host's.
        let mut command = Command::new(host_program("ip"));
        command
            .args(["netns", "exec", &self.name])
            .arg(host_program("unshare"))
            .args(["--mount", "--fork", "--mount-proc=/proc", "--root"])
            .arg(&image.rootfs);
        if let Some((uid, gid)) = user.and_then(|user| user.split_once(':')) {
            command.args(["--setuid", uid, "--setgid", gid]);
        }
        command
            .arg(program)
            .args(args)
            .env_clear()
            .envs(image.env())
            .stdin(Stdio::null());
        command.output().expect("ip netns exec runs")
    }

    /// Like `run_in`, asserting success; returns standard output.
    pub fn ok_in(&self, image: &Image, program: &str, args: &[&str]) -> String {
        let output = self.run_in(image, None, program, args);
        assert!(
            output.status.success(),
            "{program} {args:?} in the image: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// Whether `path` (absolute, inside the image) exists in the root, without following a final
/// symlink out of it.
pub fn exists_in(rootfs: &Path, path: &str) -> bool {
    rootfs
        .join(path.trim_start_matches('/'))
        .symlink_metadata()
        .is_ok()
}

fn host_program(name: &str) -> std::path::PathBuf {
    portico_tests::tool(name).unwrap_or_else(|| panic!("{name} is not installed"))
}
