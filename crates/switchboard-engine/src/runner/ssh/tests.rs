use std::process::Command;

use proptest::prelude::*;

use super::*;

/// What a real POSIX shell (`/bin/sh`, as sshd would start the remote
/// user's shell) makes of a command line: the arguments `printf` receives.
fn shell_split(line: &str) -> Vec<String> {
    let script = format!("printf '%s\\0' {line}");
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut parts: Vec<String> = out
        .stdout
        .split(|b| *b == 0)
        .map(|p| String::from_utf8(p.to_vec()).unwrap())
        .collect();
    parts.pop();
    parts
}

#[test]
fn hostile_arguments_stay_single_arguments_for_a_real_shell() {
    let hostile = [
        "; rm -rf /",
        "$(id)",
        "`id`",
        "a'b",
        "'",
        "''",
        "\"$HOME\"",
        "*",
        "a\nb",
        "",
        " spaced  out ",
        "\\",
        "--help",
        "$((1+1))",
        "|| true",
        "#comment",
        "~",
        "{a,b}",
    ];
    let argv: Vec<String> = hostile.iter().map(|s| (*s).to_owned()).collect();
    let line = quote_arguments(&argv).unwrap();
    assert_eq!(shell_split(&line), argv);
}

#[test]
fn the_remote_line_reports_its_pid_then_execs_the_command() {
    let line = remote_command(&["echo".into(), "it's".into()]).unwrap();
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "it's\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let pid = stderr.trim().strip_prefix(PID_PREAMBLE).unwrap();
    assert!(pid.parse::<u32>().unwrap() > 1, "{stderr}");
}

#[test]
fn nul_bytes_are_refused() {
    let err = quote_arguments(&["echo".into(), "a\0b".into()]).unwrap_err();
    assert!(err.contains("NUL"), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn any_argument_reaches_the_shell_unchanged(args in proptest::collection::vec("[^\u{0}]{0,12}", 1..5)) {
        let line = quote_arguments(&args).unwrap();
        prop_assert_eq!(shell_split(&line), args);
    }
}

#[test]
fn jump_hosts_parse() {
    assert_eq!(
        JumpHost::parse("ops@bastion.example.com:2222").unwrap(),
        JumpHost {
            address: "bastion.example.com".into(),
            port: 2222,
            user: Some("ops".into())
        }
    );
    assert_eq!(JumpHost::parse("bastion").unwrap().port, 22);
    assert_eq!(JumpHost::parse("[::1]:2200").unwrap().address, "::1");
    assert_eq!(JumpHost::parse("::1").unwrap().port, 22);
    assert!(JumpHost::parse("@x").is_err());
    assert!(JumpHost::parse("x:notaport").is_err());
    assert!(JumpHost::parse(":22").is_err());
}

/// A fresh ed25519 public key, made by ssh-keygen.
fn new_public_key(dir: &std::path::Path, name: &str) -> (PublicKey, String) {
    let path = dir.join(name);
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success());
    let line = std::fs::read_to_string(path.with_extension("pub")).unwrap();
    let base64 = line.split_whitespace().nth(1).unwrap().to_owned();
    (
        russh::keys::parse_public_key_base64(&base64).unwrap(),
        line.trim().to_owned(),
    )
}

#[test]
fn known_hosts_tells_known_changed_and_unknown_keys_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (key, line) = new_public_key(dir.path(), "a");
    let (other, _) = new_public_key(dir.path(), "b");
    let entry = |host: &str| {
        let mut parts = line.split_whitespace();
        format!(
            "{host} {} {}\n",
            parts.next().unwrap(),
            parts.next().unwrap()
        )
    };
    let file = dir.path().join("known_hosts");
    std::fs::write(
        &file,
        format!("# comment\n{}{}", entry("[10.0.0.5]:2222"), entry("web-1")),
    )
    .unwrap();
    let names = |host: &str, port: u16| vec![(host.to_owned(), port)];
    assert_eq!(
        known_host_status(&file, &names("10.0.0.5", 2222), &key).unwrap(),
        KnownHost::Known
    );
    // Port 22 entries are written without brackets; other ports with.
    assert_eq!(
        known_host_status(&file, &names("10.0.0.5", 22), &key).unwrap(),
        KnownHost::Unknown
    );
    assert_eq!(
        known_host_status(&file, &names("web-1", 22), &key).unwrap(),
        KnownHost::Known
    );
    // Listed under its inventory name when the address is not listed.
    assert_eq!(
        known_host_status(
            &file,
            &[("10.9.9.9".into(), 22), ("web-1".into(), 22)],
            &key
        )
        .unwrap(),
        KnownHost::Known
    );
    assert_eq!(
        known_host_status(&file, &names("10.0.0.5", 2222), &other).unwrap(),
        KnownHost::Changed { line: 2 }
    );
    assert_eq!(
        known_host_status(&file, &names("db-1", 22), &key).unwrap(),
        KnownHost::Unknown
    );
    // Listed only with a key of another type: not silently a new host.
    let rsa_dir = tempfile::tempdir().unwrap();
    let rsa_path = rsa_dir.path().join("rsa");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-f"])
        .arg(&rsa_path)
        .status()
        .unwrap();
    assert!(status.success());
    let rsa_line = std::fs::read_to_string(rsa_path.with_extension("pub")).unwrap();
    let mut rsa_fields = rsa_line.split_whitespace();
    let other_type = dir.path().join("other_type");
    std::fs::write(
        &other_type,
        format!(
            "db-9 {} {}\n",
            rsa_fields.next().unwrap(),
            rsa_fields.next().unwrap()
        ),
    )
    .unwrap();
    assert_eq!(
        known_host_status(&other_type, &names("db-9", 22), &key).unwrap(),
        KnownHost::OtherType { line: 1 }
    );
    // A revoked key is refused whatever host lists it.
    let revoked = dir.path().join("revoked");
    let mut parts = line.split_whitespace();
    let (kind, base64) = (parts.next().unwrap(), parts.next().unwrap());
    std::fs::write(
        &revoked,
        format!("web-1 {kind} {base64}\n# note\n@revoked * {kind} {base64}\n"),
    )
    .unwrap();
    assert_eq!(
        known_host_status(&revoked, &names("web-1", 22), &key).unwrap(),
        KnownHost::Revoked { line: 3 }
    );
    // A missing file lists nothing.
    assert_eq!(
        known_host_status(&dir.path().join("none"), &names("web-1", 22), &key).unwrap(),
        KnownHost::Unknown
    );
}
