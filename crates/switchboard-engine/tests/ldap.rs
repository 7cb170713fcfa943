#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on the unexpected"
)]
// `LdapDirectory` against a real OpenLDAP server: each test starts its own
// `slapd` on a free loopback port, in a temporary folder, seeded with the
// directory below. Needs the Debian packages `slapd` and `ldap-utils`
// (`scripts/test` installs them); without them the tests fail, they are
// never skipped.
//
// The directory (dc=example,dc=org):
//   ou=people    alice (Alice Liddell), bob, carol, deploy-bot (a service
//                account: employeeType=service), and "bad name", whose uid
//                is not a valid principal
//   ou=services  cn=switchboard, the account Switchboard binds as
//   ou=groups    sre = {alice}, ops = {sre}, dev = {bob, deploy-bot},
//                loop-a = {bob, loop-b}, loop-b = {loop-a} (a cycle),
//                auditors = groupOfUniqueNames {carol}
// Only bound users may read it. The `memberof` overlay keeps `memberOf` for
// groupOfNames, so carol has no `memberOf`.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_core::Principal;
use switchboard_core::directory::{PrincipalEntry, PrincipalKind};
use switchboard_engine::ldap::{LdapConfig, LdapDirectory, LdapError, Membership};

const SUFFIX: &str = "dc=example,dc=org";
const ROOT_DN: &str = "cn=admin,dc=example,dc=org";
const ROOT_PASSWORD: &str = "root-secret";
const SERVICE_DN: &str = "cn=switchboard,ou=services,dc=example,dc=org";
/// Longest wait for slapd to accept connections (a slow CI machine).
const START_WITHIN: Duration = Duration::from_secs(30);
/// Longest an operation that must fail may take before the test calls it hung.
const HANG: Duration = Duration::from_secs(60);

const INSTALL: &str = "install them with `apt-get install slapd ldap-utils` (scripts/test does)";

/// The OpenLDAP programs the tests run.
struct Programs {
    slapd: PathBuf,
    slapadd: PathBuf,
    ldapadd: PathBuf,
    modules: PathBuf,
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn programs() -> Programs {
    let need = |name: &str| {
        find_program(name).unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the LDAP tests need a real OpenLDAP server; {INSTALL}"
            )
        })
    };
    let modules = PathBuf::from("/usr/lib/ldap");
    assert!(
        modules.join("back_mdb.so").is_file() && modules.join("memberof.so").is_file(),
        "the OpenLDAP modules back_mdb and memberof are not in {}; {INSTALL}",
        modules.display()
    );
    for schema in ["core", "cosine", "inetorgperson"] {
        let file = format!("/etc/ldap/schema/{schema}.schema");
        assert!(Path::new(&file).is_file(), "{file} is missing; {INSTALL}");
    }
    Programs {
        slapd: need("slapd"),
        slapadd: need("slapadd"),
        ldapadd: need("ldapadd"),
        modules,
    }
}

/// The service account's password and the environment variable holding it.
/// A test cannot set an environment variable (that takes `unsafe`, which
/// the workspace denies), so the password is the value of one the test
/// process already has, and `env:` references name that one.
fn service_password() -> (String, String) {
    let usable = |v: &str| {
        !v.is_empty() && v.chars().all(|c| c.is_ascii_graphic()) && !v.starts_with([':', '<'])
    };
    ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "PATH", "HOME"]
        .into_iter()
        .filter_map(|name| Some((name.to_owned(), std::env::var(name).ok()?)))
        .chain(std::env::vars())
        .find(|(_, value)| usable(value))
        .expect("no environment variable with a printable value to use as a password")
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    free_port()
}

fn run(program: &Path, args: &[&str], what: &str) {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL}", program.display()));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A slapd of this test's own; stopped (killed) when dropped.
struct Slapd {
    programs: Programs,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// The environment variable whose value is the service account's password.
    password_env: String,
    /// A file holding that password.
    password_file: PathBuf,
}

impl Slapd {
    /// Writes the configuration, seeds the directory and starts the server.
    fn start() -> Self {
        let programs = programs();
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("data")).unwrap();
        let (password_env, password) = service_password();
        let password_file = root.join("bind-password");
        std::fs::write(&password_file, format!("{password}\n")).unwrap();
        let conf = format!(
            "include /etc/ldap/schema/core.schema\n\
             include /etc/ldap/schema/cosine.schema\n\
             include /etc/ldap/schema/inetorgperson.schema\n\
             modulepath {modules}\n\
             moduleload back_mdb\n\
             moduleload memberof\n\
             pidfile {root}/slapd.pid\n\
             argsfile {root}/slapd.args\n\
             database mdb\n\
             maxsize 16777216\n\
             suffix \"{SUFFIX}\"\n\
             rootdn \"{ROOT_DN}\"\n\
             rootpw {ROOT_PASSWORD}\n\
             directory {root}/data\n\
             overlay memberof\n\
             access to attrs=userPassword by anonymous auth by * none\n\
             access to * by users read by anonymous auth\n",
            modules = programs.modules.display(),
            root = root.display(),
        );
        std::fs::write(root.join("slapd.conf"), conf).unwrap();
        std::fs::write(root.join("seed.ldif"), seed_ldif(&password)).unwrap();
        std::fs::write(root.join("groups.ldif"), GROUPS_LDIF).unwrap();
        let conf = root.join("slapd.conf");
        let conf = conf.to_str().unwrap();
        // People and accounts go in offline; groups go in through the
        // running server, so that the memberof overlay records `memberOf`
        // (slapadd bypasses overlays).
        let seed = root.join("seed.ldif");
        run(
            &programs.slapadd,
            &["-f", conf, "-l", seed.to_str().unwrap()],
            "slapadd",
        );
        let mut slapd = Self {
            programs,
            port: 0,
            dir,
            child: None,
            password_env,
            password_file,
        };
        // Another process may take the free port before slapd binds it.
        let mut last = String::new();
        for _ in 0..5 {
            slapd.port = free_port();
            match slapd.try_run() {
                Ok(()) => break,
                Err(log) => last = log,
            }
        }
        assert!(slapd.child.is_some(), "slapd did not start:\n{last}");
        let groups = slapd.dir.path().join("groups.ldif");
        run(
            &slapd.programs.ldapadd,
            &[
                "-x",
                "-H",
                &slapd.url(),
                "-D",
                ROOT_DN,
                "-w",
                ROOT_PASSWORD,
                "-f",
                groups.to_str().unwrap(),
            ],
            "ldapadd of the groups",
        );
        slapd
    }

    /// Starts slapd on `self.port` and waits until it accepts connections;
    /// `Err` with its log if it exits first.
    fn try_run(&mut self) -> Result<(), String> {
        let root = self.dir.path();
        let log_path = root.join("slapd.log");
        let log = std::fs::File::create(&log_path).unwrap();
        // `-d 0`: stay in the foreground (so the test owns the process).
        let mut child = Command::new(&self.programs.slapd)
            .arg("-f")
            .arg(root.join("slapd.conf"))
            .arg("-h")
            .arg(self.url())
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start slapd: {e}; {INSTALL}"));
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + START_WITHIN;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(format!("slapd exited ({status}):\n{log}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("slapd did not accept connections within {START_WITHIN:?}:\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, with the same data.
    fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.try_run() {
            panic!("slapd did not start again:\n{log}");
        }
    }

    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}/", self.port)
    }

    /// A configuration for this server, binding as the service account
    /// with an `env:` reference, and `overrides` on top.
    fn config(&self, membership: Membership, overrides: serde_json::Value) -> LdapConfig {
        config(&self.url(), &self.password_env, membership, overrides)
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn config(
    url: &str,
    password_env: &str,
    membership: Membership,
    overrides: serde_json::Value,
) -> LdapConfig {
    let mut value = serde_json::json!({
        "url": url,
        "bind_dn": SERVICE_DN,
        "bind_password": format!("env:{password_env}"),
        "user_base": format!("ou=people,{SUFFIX}"),
        "group_base": format!("ou=groups,{SUFFIX}"),
        "membership": match membership {
            Membership::Member => "member",
            Membership::MemberOf => "member_of",
        },
        "service_account_filter": "(employeeType=service)",
    });
    let map = value.as_object_mut().unwrap();
    for (key, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            map.remove(key);
        } else {
            map.insert(key.clone(), v.clone());
        }
    }
    let config: LdapConfig = serde_json::from_value(value).unwrap();
    config.validate().unwrap();
    config
}

fn seed_ldif(service_password: &str) -> String {
    let person = |uid: &str, cn: &str, extra: &str| {
        format!(
            "dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\n{extra}\n"
        )
    };
    let ou = |name: &str| {
        format!("dn: ou={name},{SUFFIX}\nobjectClass: organizationalUnit\nou: {name}\n\n")
    };
    [
        format!(
            "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n"
        ),
        ou("people"),
        ou("groups"),
        ou("services"),
        person("alice", "Alice Liddell", ""),
        person("bob", "Bob", ""),
        person("carol", "Carol", ""),
        person("deploy-bot", "Deploy Bot", "employeeType: service\n"),
        format!(
            "dn: cn=bad name,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: bad name\ncn: bad name\nsn: bad\n\n"
        ),
        format!(
            "dn: {SERVICE_DN}\nobjectClass: person\ncn: switchboard\nsn: switchboard\nuserPassword: {service_password}\n\n"
        ),
    ]
    .concat()
}

const GROUPS_LDIF: &str = "\
dn: cn=sre,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: sre
member: uid=alice,ou=people,dc=example,dc=org

dn: cn=ops,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: ops
member: cn=sre,ou=groups,dc=example,dc=org

dn: cn=dev,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: dev
member: uid=bob,ou=people,dc=example,dc=org
member: uid=deploy-bot,ou=people,dc=example,dc=org

dn: cn=loop-a,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: loop-a
member: uid=bob,ou=people,dc=example,dc=org

dn: cn=loop-b,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: loop-b
member: cn=loop-a,ou=groups,dc=example,dc=org

dn: cn=loop-a,ou=groups,dc=example,dc=org
changetype: modify
add: member
member: cn=loop-b,ou=groups,dc=example,dc=org

dn: cn=auditors,ou=groups,dc=example,dc=org
objectClass: groupOfUniqueNames
cn: auditors
uniqueMember: uid=carol,ou=people,dc=example,dc=org
";

fn principal(name: &str) -> Principal {
    Principal::new(name).unwrap()
}

fn groups(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|g| (*g).to_owned()).collect()
}

fn entry(name: &str, display: &str, kind: PrincipalKind, member_of: &[&str]) -> PrincipalEntry {
    PrincipalEntry {
        name: principal(name),
        kind,
        display_name: Some(display.to_owned()),
        groups: groups(member_of),
    }
}

/// Everyone in the seeded directory, as `all_users` must list them.
fn everyone(membership: Membership) -> Vec<PrincipalEntry> {
    let carol: &[&str] = match membership {
        Membership::Member => &["auditors"],
        // The overlay keeps memberOf for groupOfNames only.
        Membership::MemberOf => &[],
    };
    vec![
        entry(
            "alice",
            "Alice Liddell",
            PrincipalKind::User,
            &["ops", "sre"],
        ),
        entry(
            "bob",
            "Bob",
            PrincipalKind::User,
            &["dev", "loop-a", "loop-b"],
        ),
        entry("carol", "Carol", PrincipalKind::User, carol),
        entry(
            "deploy-bot",
            "Deploy Bot",
            PrincipalKind::ServiceAccount,
            &["dev"],
        ),
    ]
}

async fn lookup(dir: &LdapDirectory, name: &str) -> Option<PrincipalEntry> {
    dir.user(&principal(name))
        .await
        .unwrap_or_else(|e| panic!("looking up {name}: {e}"))
}

/// Checks single lookups against the seeded directory.
async fn check_lookups(dir: &LdapDirectory, membership: Membership) {
    for expected in everyone(membership) {
        assert_eq!(
            lookup(dir, expected.name.as_str()).await.as_ref(),
            Some(&expected)
        );
    }
    assert_eq!(lookup(dir, "nobody").await, None);
    // A valid principal that, pasted unescaped into the filter, would
    // match every uid starting with `a`.
    assert_eq!(lookup(dir, "a*)(uid=*").await, None);
    assert_eq!(lookup(dir, "*").await, None);
    // LDAP matches uids regardless of case; the entry has the directory's spelling.
    assert_eq!(
        lookup(dir, "ALICE").await.map(|e| e.name),
        Some(principal("alice"))
    );
}

#[tokio::test]
async fn users_and_nested_groups_by_member() {
    let slapd = Slapd::start();
    let dir = LdapDirectory::new(slapd.config(Membership::Member, serde_json::json!({})));
    check_lookups(&dir, Membership::Member).await;

    // Without a group base, no groups are found (never made up).
    let dir = LdapDirectory::new(slapd.config(
        Membership::Member,
        serde_json::json!({"group_base": null, "service_account_filter": null}),
    ));
    assert_eq!(
        lookup(&dir, "deploy-bot").await,
        Some(entry("deploy-bot", "Deploy Bot", PrincipalKind::User, &[]))
    );
}

#[tokio::test]
async fn users_and_nested_groups_by_member_of() {
    let slapd = Slapd::start();
    let dir = LdapDirectory::new(slapd.config(Membership::MemberOf, serde_json::json!({})));
    check_lookups(&dir, Membership::MemberOf).await;

    // Without a group base every group in memberOf counts; with one
    // elsewhere, none does.
    let dir = LdapDirectory::new(slapd.config(
        Membership::MemberOf,
        serde_json::json!({"group_base": null}),
    ));
    check_lookups(&dir, Membership::MemberOf).await;
    let dir = LdapDirectory::new(slapd.config(
        Membership::MemberOf,
        serde_json::json!({"group_base": format!("ou=services,{SUFFIX}")}),
    ));
    assert_eq!(lookup(&dir, "alice").await.unwrap().groups, groups(&[]));
}

#[tokio::test]
async fn all_users_lists_everyone_with_their_groups() {
    let slapd = Slapd::start();
    for (membership, overrides) in [
        (Membership::Member, serde_json::json!({})),
        (Membership::MemberOf, serde_json::json!({})),
        (
            Membership::MemberOf,
            serde_json::json!({"group_base": null}),
        ),
    ] {
        let dir = LdapDirectory::new(slapd.config(membership, overrides.clone()));
        // "bad name" is not a valid principal: skipped, with a warning.
        assert_eq!(
            dir.all_users().await.unwrap(),
            everyone(membership),
            "{membership:?} {overrides}"
        );
    }
}

#[tokio::test]
async fn binds_with_a_password_from_a_secret_reference() {
    let slapd = Slapd::start();
    let alice = Some(entry(
        "alice",
        "Alice Liddell",
        PrincipalKind::User,
        &["ops", "sre"],
    ));

    let from_env = LdapDirectory::new(slapd.config(Membership::Member, serde_json::json!({})));
    assert_eq!(lookup(&from_env, "alice").await, alice);

    let file = format!("file:{}", slapd.password_file.display());
    let from_file = LdapDirectory::new(slapd.config(
        Membership::Member,
        serde_json::json!({"bind_password": file}),
    ));
    assert_eq!(lookup(&from_file, "alice").await, alice);
    assert_eq!(
        from_file.all_users().await.unwrap(),
        everyone(Membership::Member)
    );

    // Anonymous: only bound users may read the directory, and a refusal is
    // an error, not "no such user".
    let anonymous = LdapDirectory::new(slapd.config(
        Membership::Member,
        serde_json::json!({"bind_dn": null, "bind_password": null}),
    ));
    let err = anonymous.user(&principal("alice")).await.unwrap_err();
    assert!(matches!(err, LdapError::Search { .. }), "{err:?}");
    assert!(
        err.to_string().contains("insufficientAccessRights"),
        "{err}"
    );

    let wrong_file = slapd.dir.path().join("wrong-password");
    std::fs::write(&wrong_file, "not-the-password-4711\n").unwrap();
    let wrong = LdapDirectory::new(slapd.config(
        Membership::Member,
        serde_json::json!({"bind_password": format!("file:{}", wrong_file.display())}),
    ));
    let err = wrong.user(&principal("alice")).await.unwrap_err();
    assert!(matches!(err, LdapError::Bind { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&slapd.url()), "{message}");
    assert!(message.contains(SERVICE_DN), "{message}");
    assert!(message.contains("invalidCredentials"), "{message}");
    assert!(!message.contains("4711"), "{message}");
    assert!(matches!(
        wrong.all_users().await.unwrap_err(),
        LdapError::Bind { .. }
    ));

    let unset = LdapDirectory::new(slapd.config(
        Membership::Member,
        serde_json::json!({"bind_password": "env:SWITCHBOARD_TEST_SURELY_UNSET"}),
    ));
    let err = unset.user(&principal("alice")).await.unwrap_err();
    assert!(matches!(err, LdapError::Password { .. }), "{err:?}");
    assert!(
        err.to_string().contains("SWITCHBOARD_TEST_SURELY_UNSET"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_directory_is_an_error_never_an_answer() {
    let (password_env, _) = service_password();
    // Nothing listens on the port: refused at once.
    // A listener that never answers: the connection opens, the bind (or,
    // anonymously, the search) times out.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for port in [closed_port(), silent_port] {
        let url = format!("ldap://127.0.0.1:{port}/");
        for overrides in [
            serde_json::json!({"timeout": "500ms"}),
            serde_json::json!({"timeout": "500ms", "bind_dn": null, "bind_password": null}),
        ] {
            let dir = LdapDirectory::new(config(
                &url,
                &password_env,
                Membership::Member,
                overrides.clone(),
            ));
            for _ in 0..2 {
                let err = tokio::time::timeout(HANG, dir.user(&principal("alice")))
                    .await
                    .expect("the lookup never gave up")
                    .unwrap_err();
                assert!(
                    matches!(err, LdapError::Connect { .. } | LdapError::Timeout { .. }),
                    "{err:?}"
                );
                assert!(err.to_string().contains(&url), "{err}");
                let err = tokio::time::timeout(HANG, dir.all_users())
                    .await
                    .expect("the listing never gave up")
                    .unwrap_err();
                assert!(
                    matches!(err, LdapError::Connect { .. } | LdapError::Timeout { .. }),
                    "{err:?}"
                );
            }
        }
    }
    drop(silent);
}

#[tokio::test]
async fn answers_are_cached_and_errors_are_not() {
    let mut slapd = Slapd::start();
    let cached = LdapDirectory::new(slapd.config(Membership::Member, serde_json::json!({})));
    let uncached = LdapDirectory::new(
        slapd.config(Membership::Member, serde_json::json!({"cache_ttl": "0s"})),
    );

    // An error is not remembered: once the directory is back, it answers.
    slapd.stop();
    assert!(cached.user(&principal("alice")).await.is_err());
    assert!(cached.all_users().await.is_err());
    slapd.restart();
    let alice = lookup(&cached, "alice").await;
    assert!(alice.is_some());
    assert_eq!(lookup(&cached, "nobody").await, None);
    let all = cached.all_users().await.unwrap();
    assert_eq!(all, everyone(Membership::Member));
    assert_eq!(lookup(&uncached, "alice").await, alice);

    // The directory goes away: what was looked up is still answered,
    // "no such user" included; anything else is an error.
    slapd.stop();
    assert_eq!(lookup(&cached, "alice").await, alice);
    assert_eq!(lookup(&cached, "nobody").await, None);
    assert_eq!(cached.all_users().await.unwrap(), all);
    assert!(cached.user(&principal("bob")).await.is_err());
    assert!(uncached.user(&principal("alice")).await.is_err());
    assert!(uncached.all_users().await.is_err());
}
