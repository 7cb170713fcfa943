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
//
// The last tests go through the `Engine` with LDAP configured and the
// sample catalog (examples/catalog), whose policies let group `sre` run
// `service.*` from the API, the CLI and the web UI, and forbid service
// accounts to run critical actions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchboard_core::audit::AuditRecord;
use switchboard_core::directory::{Directory, PrincipalEntry, PrincipalKind};
use switchboard_core::policy::Verb;
use switchboard_core::token::{Scope, token_hash};
use switchboard_core::{Catalog, Origin, Principal, Timestamp};
use switchboard_engine::ldap::{LdapConfig, LdapDirectory, LdapError, Membership};
use switchboard_engine::tokens::Authenticated;
use switchboard_engine::{Engine, EngineConfig, EngineError, Identity};
use switchboard_store::NewToken;

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

// ---------------------------------------------------------------------
// Through the engine: identities, who-can and tokens with LDAP configured.
// ---------------------------------------------------------------------

/// The bootstrap admin token the engine tests configure (by its hash).
const ADMIN_TOKEN: &str = "sb_ldap_engine_test_admin_token_0123456789";

/// An engine on a fresh database in its own folder, with the sample
/// catalog, `ldap`, the bootstrap admin token, and one principal declared
/// in the configuration: carol (also in LDAP, in `auditors`), declared in
/// `sre`, since the configuration wins over the directory.
struct TestEngine {
    engine: Engine,
    _dir: tempfile::TempDir,
}

async fn start_engine(ldap: LdapConfig) -> TestEngine {
    let dir = tempfile::tempdir().unwrap();
    let catalog =
        Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/catalog"))
            .unwrap();
    let url = format!("sqlite://{}", dir.path().join("db.sqlite").display());
    let store = switchboard_store::open(&url).await.unwrap();
    let directory = Directory::new(
        vec![PrincipalEntry {
            name: principal("carol"),
            kind: PrincipalKind::User,
            display_name: Some("Carol (declared)".to_owned()),
            groups: groups(&["sre"]),
        }],
        BTreeMap::new(),
    )
    .unwrap();
    let config = EngineConfig {
        temp_dir: dir.path().to_path_buf(),
        admin_token_hash: Some(token_hash(ADMIN_TOKEN)),
        directory,
        ldap: Some(ldap),
        ..EngineConfig::default()
    };
    let engine = Engine::start(store, catalog, config).await.unwrap();
    TestEngine { engine, _dir: dir }
}

/// Awaits an engine call that talks to the directory, failing the test if
/// it never returns (it must give up on its own).
async fn bounded<T>(what: &str, call: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, call)
        .await
        .unwrap_or_else(|_| panic!("{what} never returned"))
}

fn identity(name: &str, kind: PrincipalKind, member_of: &[&str]) -> Identity {
    Identity {
        principal: principal(name),
        kind,
        groups: groups(member_of),
    }
}

/// A token for `name`, issued by the admin through the engine.
async fn issue(engine: &Engine, name: &str, scopes: Vec<Scope>) -> String {
    let (token, record) = bounded(
        "create_token",
        engine.create_token(
            &Principal::admin(),
            &Origin::api(),
            principal(name),
            scopes,
            format!("for {name}"),
            Some(Duration::from_secs(3600)),
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("creating a token for {name}: {e}"));
    assert_eq!(record.principal, principal(name));
    token
}

async fn authenticate(engine: &Engine, token: &str) -> Result<Authenticated, EngineError> {
    bounded("authenticate", engine.authenticate(token, &Origin::api())).await
}

async fn audit(engine: &Engine) -> Vec<AuditRecord> {
    engine.audit_records(0, None, 1000).await.unwrap()
}

/// The `auth.failed` records saying the directory could not be reached.
fn directory_failures(records: &[AuditRecord]) -> Vec<&AuditRecord> {
    records
        .iter()
        .filter(|r| r.event.kind == "auth.failed")
        .filter(|r| r.event.detail["reason"] == "the user directory cannot be reached")
        .collect()
}

/// Checks what the engine does while `url`, its directory, cannot answer:
/// `token` (of the LDAP user alice) is refused as `DirectoryUnavailable`
/// and audited as such, and nothing that needs LDAP answers; the admin
/// and the declared carol (whose `carol_token` is given) still sign in.
async fn check_fails_closed(engine: &Engine, url: &str, token: &str, carol_token: Option<&str>) {
    let failures_before = directory_failures(&audit(engine).await).len();
    for _ in 0..2 {
        match authenticate(engine, token).await {
            Err(EngineError::DirectoryUnavailable(why)) => {
                assert!(why.contains(url), "{why}");
            }
            Err(e) => panic!("expected DirectoryUnavailable, got {e:?}"),
            Ok(who) => panic!("signed in while the directory is down: {who:?}"),
        }
    }
    let records = audit(engine).await;
    let failures = directory_failures(&records);
    assert_eq!(failures.len(), failures_before + 2, "{records:#?}");
    let subject = format!("credential:{}", &token_hash(token)[..12]);
    for r in failures {
        assert_eq!(r.event.subject, subject);
        assert_eq!(r.event.outcome, "denied");
        assert_eq!(r.event.actor, Principal::anonymous());
        assert_eq!(r.event.origin, Origin::api());
        let error = r.event.detail["error"].as_str().unwrap();
        assert!(error.contains(url), "{error}");
    }
    // The token itself is never written down.
    let all = serde_json::to_string(&records).unwrap();
    assert!(!all.contains(token));

    // Nothing else that needs the directory answers either.
    let who_can = bounded(
        "who_can",
        engine.who_can(Verb::Run, Some("service.restart"), None, None),
    )
    .await;
    assert!(
        matches!(who_can, Err(EngineError::DirectoryUnavailable(_))),
        "{who_can:?}"
    );
    let alice = principal("alice");
    let explained = bounded(
        "explain",
        engine.explain(
            &alice,
            Verb::Run,
            Some("service.restart"),
            None,
            &Origin::api(),
        ),
    )
    .await;
    assert!(
        matches!(explained, Err(EngineError::DirectoryUnavailable(_))),
        "{explained:?}"
    );
    let known = bounded("is_known", engine.is_known(&principal("bob"))).await;
    assert!(
        matches!(known, Err(EngineError::DirectoryUnavailable(_))),
        "{known:?}"
    );
    // "Cannot tell" is neither "unknown principal" nor a new token.
    let created = bounded(
        "create_token",
        engine.create_token(
            &Principal::admin(),
            &Origin::api(),
            principal("bob"),
            vec![Scope::Read],
            "while down".to_owned(),
            None,
        ),
    )
    .await;
    assert!(
        matches!(created, Err(EngineError::DirectoryUnavailable(_))),
        "{created:?}"
    );

    // Those never looked up still sign in.
    let admin = authenticate(engine, ADMIN_TOKEN).await.unwrap();
    assert_eq!(admin.principal(), &Principal::admin());
    assert_eq!(admin.scopes, Scope::ALL.to_vec());
    if let Some(carol_token) = carol_token {
        let carol = authenticate(engine, carol_token).await.unwrap();
        assert_eq!(
            carol.identity,
            identity("carol", PrincipalKind::User, &["sre"])
        );
    }
}

#[tokio::test]
async fn engine_identities_who_can_and_tokens_come_from_ldap() {
    let slapd = Slapd::start();
    let t = start_engine(slapd.config(Membership::Member, serde_json::json!({}))).await;
    let engine = &t.engine;

    // Identities carry the directory's groups, nested ones included, and
    // its kind; the configuration wins for the principals it declares.
    for (name, expected) in [
        (
            "alice",
            identity("alice", PrincipalKind::User, &["ops", "sre"]),
        ),
        (
            "deploy-bot",
            identity("deploy-bot", PrincipalKind::ServiceAccount, &["dev"]),
        ),
        ("carol", identity("carol", PrincipalKind::User, &["sre"])),
    ] {
        let got = bounded("identity_of", engine.identity_of(&principal(name), &[]))
            .await
            .unwrap();
        assert_eq!(got, expected);
    }
    // Asserted groups (from an identity provider) are added, not substituted.
    let got = bounded(
        "identity_of",
        engine.identity_of(&principal("bob"), &["oncall".to_owned()]),
    )
    .await
    .unwrap();
    assert_eq!(
        got,
        identity(
            "bob",
            PrincipalKind::User,
            &["dev", "loop-a", "loop-b", "oncall"]
        )
    );
    for (name, known) in [
        ("alice", true),
        ("deploy-bot", true),
        ("carol", true),
        ("admin", true),
        ("nobody", false),
    ] {
        assert_eq!(
            bounded("is_known", engine.is_known(&principal(name)))
                .await
                .unwrap(),
            known,
            "{name}"
        );
    }

    // Who can restart a service: alice through `sre`, carol as declared,
    // and the admin; no other LDAP user. `sre` may through the API, the
    // CLI, the web UI and the #ops room.
    let who = bounded(
        "who_can",
        engine.who_can(Verb::Run, Some("service.restart"), None, None),
    )
    .await
    .unwrap();
    let names: BTreeSet<&str> = who
        .principals
        .iter()
        .map(|g| g.principal.as_str())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["admin", "alice", "carol"]),
        "{who:#?}"
    );
    // Everyone known was examined: carol once (the configuration's), the
    // other LDAP users and the admin.
    assert_eq!(who.examined, 5, "{who:#?}");
    let alice = who
        .principals
        .iter()
        .find(|g| g.principal.as_str() == "alice")
        .unwrap();
    assert_eq!(alice.kind, PrincipalKind::User);
    let doors: BTreeSet<&str> = alice.doors.iter().map(String::as_str).collect();
    assert_eq!(
        doors,
        BTreeSet::from(["api", "cli", "web", "chat:slack:#ops"]),
        "{alice:#?}"
    );
    assert!(
        alice
            .policies
            .iter()
            .any(|p| p.id == "sre-runs-fleet-actions"),
        "{alice:#?}"
    );
    assert!(who.everyone.is_none(), "{who:#?}");
    let group_names: BTreeSet<&str> = who.groups.iter().map(|g| g.group.as_str()).collect();
    assert!(group_names.contains("sre"), "{who:#?}");
    assert!(!group_names.contains("dev"), "{who:#?}");
    assert!(!group_names.contains("ops"), "{who:#?}");

    // The directory's kind reaches the policies: service accounts may not
    // run critical actions, whatever their groups.
    let (who, decision) = bounded(
        "explain",
        engine.explain(
            &principal("deploy-bot"),
            Verb::Run,
            Some("db.failover"),
            None,
            &Origin::api(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(who.kind, PrincipalKind::ServiceAccount);
    assert!(!decision.allowed);
    assert!(
        decision
            .policies
            .iter()
            .any(|p| p.id == "no-unattended-critical-runs"),
        "{decision:#?}"
    );
    let (_, decision) = bounded(
        "explain",
        engine.explain(
            &principal("bob"),
            Verb::Run,
            Some("service.restart"),
            None,
            &Origin::api(),
        ),
    )
    .await
    .unwrap();
    assert!(!decision.allowed, "{decision:#?}");

    // Tokens: LDAP users are known; their tokens sign in with the
    // directory's groups, and the policies decide with them.
    let catalog = engine.catalog();
    let restart = catalog.action("service.restart").unwrap();
    let token = issue(engine, "alice", vec![Scope::Read, Scope::Run]).await;
    let alice = authenticate(engine, &token).await.unwrap();
    assert_eq!(
        alice.identity,
        identity("alice", PrincipalKind::User, &["ops", "sre"])
    );
    assert_eq!(alice.scopes, vec![Scope::Read, Scope::Run]);
    engine
        .authorize(
            &alice.identity,
            &Origin::api(),
            Verb::Run,
            Some(restart),
            &[],
            None,
        )
        .await
        .unwrap();
    let token = issue(engine, "deploy-bot", vec![Scope::Read]).await;
    let bot = authenticate(engine, &token).await.unwrap();
    assert_eq!(
        bot.identity,
        identity("deploy-bot", PrincipalKind::ServiceAccount, &["dev"])
    );
    let token = issue(engine, "bob", vec![Scope::Run]).await;
    let bob = authenticate(engine, &token).await.unwrap();
    let denied = engine
        .authorize(
            &bob.identity,
            &Origin::api(),
            Verb::Run,
            Some(restart),
            &[],
            None,
        )
        .await;
    assert!(
        matches!(denied, Err(EngineError::Forbidden(_))),
        "{denied:?}"
    );

    // A name neither declared nor in the directory gets no token; nor does
    // one that is no valid principal in the directory ("bad name" cannot
    // even be asked for), nor a filter injection, nor another spelling of a
    // directory user (LDAP would match `ALICE` to alice).
    for name in ["nobody", "a*)(uid=*", "*", "ALICE"] {
        let refused = bounded(
            "create_token",
            engine.create_token(
                &Principal::admin(),
                &Origin::api(),
                principal(name),
                vec![Scope::Read],
                "should fail".to_owned(),
                None,
            ),
        )
        .await;
        match refused {
            Err(EngineError::UnknownPrincipal(p)) => assert_eq!(p, principal(name)),
            other => panic!("{name}: expected UnknownPrincipal, got {other:?}"),
        }
    }
    let shouting = bounded("identity_of", engine.identity_of(&principal("ALICE"), &[]))
        .await
        .unwrap();
    assert!(
        shouting.groups.is_empty(),
        "ALICE is not alice: {shouting:?}"
    );
    assert!(directory_failures(&audit(engine).await).is_empty());

    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn engine_fails_closed_when_the_directory_goes_away() {
    let mut slapd = Slapd::start();
    // Nothing cached: every sign-in asks the directory.
    let t = start_engine(slapd.config(
        Membership::Member,
        serde_json::json!({"cache_ttl": "0s", "timeout": "2s"}),
    ))
    .await;
    let engine = &t.engine;
    let token = issue(engine, "alice", vec![Scope::Read, Scope::Run]).await;
    let carol_token = issue(engine, "carol", vec![Scope::Read]).await;
    assert_eq!(
        authenticate(engine, &token).await.unwrap().identity,
        identity("alice", PrincipalKind::User, &["ops", "sre"])
    );

    slapd.stop();
    check_fails_closed(engine, &slapd.url(), &token, Some(&carol_token)).await;

    // Errors are not remembered: once the directory is back, alice signs
    // in with her groups again.
    slapd.restart();
    assert_eq!(
        authenticate(engine, &token).await.unwrap().identity,
        identity("alice", PrincipalKind::User, &["ops", "sre"])
    );
    assert!(
        bounded(
            "who_can",
            engine.who_can(Verb::Run, Some("service.restart"), None, None)
        )
        .await
        .unwrap()
        .principals
        .iter()
        .any(|g| g.principal.as_str() == "alice")
    );

    engine.shutdown(Duration::from_secs(1)).await;
}

#[tokio::test]
async fn engine_fails_closed_when_the_directory_is_unreachable() {
    let (password_env, _) = service_password();
    // Nothing listens: refused at once. A listener that never answers: the
    // bind times out.
    let silent = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    for port in [closed_port(), silent_port] {
        let url = format!("ldap://127.0.0.1:{port}/");
        let t = start_engine(config(
            &url,
            &password_env,
            Membership::Member,
            serde_json::json!({"cache_ttl": "0s", "timeout": "500ms"}),
        ))
        .await;
        let engine = &t.engine;
        // The engine cannot issue a token for alice without the directory,
        // so this one goes into the store directly, as if issued earlier.
        let token = "sb_ldap_engine_test_alice_token_0123456789";
        engine
            .store()
            .create_token(&NewToken {
                hash: token_hash(token),
                principal: principal("alice"),
                scopes: vec![Scope::Read, Scope::Run],
                description: "issued while the directory was up".to_owned(),
                created_by: Principal::admin(),
                created_at: Timestamp::now(),
                expires_at: None,
            })
            .await
            .unwrap();
        check_fails_closed(engine, &url, token, None).await;
        // A token nobody issued is refused as such, without asking the
        // directory and without saying more.
        let unknown = authenticate(engine, "sb_never_issued_0123456789").await;
        assert!(
            matches!(unknown, Err(EngineError::Unauthenticated(_))),
            "{unknown:?}"
        );
        engine.shutdown(Duration::from_secs(1)).await;
    }
    drop(silent);
}

/// Who may do what, from a known configuration: the sample catalog's
/// policies, carol declared in sre, alice in sre only through the
/// directory's `sre` group, bob in the directory's `dev`.
#[tokio::test]
async fn the_report_names_who_may_do_what_including_through_a_directory_group() {
    use switchboard_core::report::{Selection, render};
    use switchboard_engine::report::ReportOptions;

    let slapd = Slapd::start();
    let t = start_engine(slapd.config(Membership::Member, serde_json::json!({}))).await;
    let alice_token = issue(&t.engine, "alice", vec![Scope::Read, Scope::Run]).await;
    let options = ReportOptions {
        since: None,
        selection: Selection {
            actions: vec!["service.*".to_owned(), "db.failover".to_owned()],
            hosts: Vec::new(),
        },
        doors: Vec::new(),
    };
    let report = bounded("report", t.engine.report(&options)).await.unwrap();
    let holders = |action: &str, verb: &str| -> (Vec<String>, Vec<String>) {
        let row = report
            .access
            .iter()
            .find(|a| a.action == action && a.verb == verb)
            .unwrap_or_else(|| panic!("no row for {verb} {action}"));
        (
            row.principals.iter().map(|h| h.who.clone()).collect(),
            row.groups.iter().map(|h| h.who.clone()).collect(),
        )
    };
    // Exactly the selection: three rights of each of the two actions.
    let rights: Vec<(String, String)> = report
        .access
        .iter()
        .map(|a| (a.action.clone(), a.verb.clone()))
        .collect();
    let expected: Vec<(String, String)> = ["db.failover", "service.restart"]
        .into_iter()
        .flat_map(|a| ["run", "approve", "cancel"].map(|v| (a.to_owned(), v.to_owned())))
        .collect();
    assert_eq!(rights, expected);
    // alice may restart only because the directory puts her in sre; bob,
    // in the directory's dev, may not.
    assert_eq!(
        holders("service.restart", "run"),
        (
            vec!["carol".to_owned(), "alice".to_owned(), "admin".to_owned()],
            vec!["group:sre".to_owned()]
        )
    );
    let alice = &report
        .access
        .iter()
        .find(|a| a.action == "service.restart" && a.verb == "run")
        .unwrap()
        .principals[1];
    assert_eq!(alice.doors, ["api", "cli", "web", "chat:slack:#ops"]);
    assert_eq!(alice.policies, ["sre-runs-fleet-actions"]);
    assert_eq!(
        holders("db.failover", "approve"),
        (vec!["admin".to_owned()], vec!["group:sre-leads".to_owned()])
    );
    let failover = &report.access[0];
    assert_eq!(
        failover.approval.as_deref(),
        Some("1 of group:sre-leads, not the requester")
    );
    assert!(
        report
            .access
            .iter()
            .all(|a| a.principals.iter().all(|h| h.who != "bob")),
        "{report:#?}"
    );
    let sources: Vec<(&str, &str)> = report
        .identity
        .principals
        .iter()
        .map(|p| (p.name.as_str(), p.source.as_str()))
        .collect();
    assert_eq!(
        sources,
        [
            ("carol", "config"),
            ("alice", "ldap"),
            ("bob", "ldap"),
            ("deploy-bot", "ldap"),
            ("admin", "built-in")
        ]
    );
    let token = &report.identity.tokens[0];
    assert_eq!(
        (
            token.owner.as_str(),
            token.scopes.clone(),
            token.state.as_str()
        ),
        ("alice", vec!["read".to_owned(), "run".to_owned()], "active")
    );
    assert!(report.evidence.audit_intact);
    // No format holds the token's secret, nor the directory's password.
    let formats = [
        serde_json::to_string(&report).unwrap(),
        render::markdown(&report),
        render::html(&report),
        render::access_csv(&report),
    ];
    for text in formats {
        for secret in [
            alice_token.as_str(),
            ROOT_PASSWORD,
            &token_hash(&alice_token),
        ] {
            assert!(!text.contains(secret), "a secret in the report");
        }
    }
}
