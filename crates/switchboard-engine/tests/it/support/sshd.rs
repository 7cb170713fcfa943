//! A real OpenSSH server for tests: started on a free loopback port with its
//! own host key, accepting one client key it generates, stopped on drop.
//! Logins are as the user running the tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sshd {
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The private key the server accepts (OpenSSH format).
    pub client_key: PathBuf,
    /// A known_hosts file listing this server as `[127.0.0.1]:PORT`.
    pub known_hosts: PathBuf,
    /// The server's host public key line (`ssh-ed25519 AAAA…`).
    pub host_key_line: String,
    pub user: String,
    child: Child,
}

pub fn keygen(path: &Path) -> String {
    let status = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "switchboard-test",
            "-f",
        ])
        .arg(path)
        .status()
        .expect("ssh-keygen (openssh-client) must be installed");
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let mut parts = public.split_whitespace();
    format!("{} {}", parts.next().unwrap(), parts.next().unwrap())
}

pub fn current_user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host_key = dir.path().join("host_key");
        let host_key_line = keygen(&host_key);
        let client_key = dir.path().join("client_key");
        let client_pub = keygen(&client_key);
        std::fs::write(
            dir.path().join("authorized_keys"),
            format!("{client_pub}\n"),
        )
        .unwrap();
        if current_user() == "root" {
            // sshd's privilege separation needs this folder.
            std::fs::create_dir_all("/run/sshd").unwrap();
        }
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\n\
                     PidFile {}\nStrictModes no\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\nAllowTcpForwarding yes\n\
                     MaxStartups 200\nMaxSessions 200\nLogLevel ERROR\n",
                    host_key.display(),
                    dir.path().join("authorized_keys").display(),
                    dir.path().join("sshd.pid").display(),
                ),
            )
            .unwrap();
            let log = dir.path().join("sshd.log");
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("/usr/sbin/sshd (openssh-server) must be installed");
            let mut child = child;
            if wait_ready(&mut child, port) {
                let known_hosts = dir.path().join("known_hosts");
                std::fs::write(
                    &known_hosts,
                    format!("[127.0.0.1]:{port} {host_key_line}\n"),
                )
                .unwrap();
                return Self {
                    port,
                    client_key,
                    known_hosts,
                    host_key_line,
                    user: current_user(),
                    child,
                    dir,
                };
            }
            // Most likely the port was taken between probing and binding.
            let _ = child.kill();
            let _ = child.wait();
            last_log = std::fs::read_to_string(&log).unwrap_or_default();
        }
        panic!("sshd did not start: {last_log}");
    }
}

/// Waits until the server answers with its SSH banner.
fn wait_ready(child: &mut Child, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut banner = [0u8; 4];
            if s.read_exact(&mut banner).is_ok() && &banner == b"SSH-" {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
