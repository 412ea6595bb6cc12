//! Real directories for the `[directory]` tests: a Samba AD DC (`samba -M single`) and a
//! slapd with the memberof overlay, each on a 127.x address of its own, with a test CA and a
//! server certificate naming that address (rustls checks it; Samba's own has no SAN).
//!
//! The AD domain (TEST / test.lan) is provisioned and filled once per test process
//! ([`ad_template`], 10-20 s) and copied (`cp -a`) for each DC, which starts in about a
//! second; every server is killed on Drop and stops by itself after 20 minutes anyway.
//! Without `/usr/sbin/samba` (or slapd) the tests say so and skip: scripts/test.sh installs
//! them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "Adm1nPass!2024";
pub const ADMIN_DN: &str = "CN=Administrator,CN=Users,DC=test,DC=lan";
pub const BASE_DN: &str = "DC=test,DC=lan";
/// alice: in g_inner, which is in g_mid, which is in g_outer.
pub const ALICE_PASSWORD: &str = "Al1cePass!x";
/// bob: primary group g_prim (not a `member` of it), which is in g_primouter.
pub const BOB_PASSWORD: &str = "B0bPass!xyz";
/// carol: disabled, with this password.
pub const CAROL_PASSWORD: &str = "Car0lPass!x";

/// The address the `n`th server of this process listens on: 127.23.P.n, P from the process
/// id, so two test processes on one machine do not meet.
fn address(n: u32) -> String {
    format!("127.23.{}.{}", std::process::id() % 250, n)
}

fn next_address() -> String {
    static N: AtomicU32 = AtomicU32::new(10);
    address(N.fetch_add(1, Ordering::Relaxed))
}

fn run(cmd: &mut Command) -> String {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{cmd:?} failed:\n{text}");
    text
}

fn sh(script: &str) -> String {
    run(Command::new("sh").arg("-ec").arg(script))
}

/// Whether the Samba tests can run; prints why not.
pub fn have_samba() -> bool {
    let ok = Path::new("/usr/sbin/samba").exists() && Path::new("/usr/bin/samba-tool").exists();
    if !ok {
        eprintln!(
            "SKIPPED: /usr/sbin/samba is not installed (apt-get install samba samba-ad-dc samba-ad-provision winbind ldap-utils; scripts/test.sh does)"
        );
    }
    ok
}

/// Whether the slapd tests can run; prints why not.
pub fn have_slapd() -> bool {
    let ok = Path::new("/usr/sbin/slapd").exists() && Path::new("/usr/bin/ldapadd").exists();
    if !ok {
        eprintln!("SKIPPED: slapd is not installed (apt-get install slapd ldap-utils)");
    }
    ok
}

/// A test CA (one per process) and server certificates it signs.
pub struct TestCa {
    pub dir: PathBuf,
}

impl TestCa {
    pub fn pem(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// A key and certificate for `ip` in `dir` (`key.pem`, `cert.pem`).
    pub fn issue(&self, dir: &Path, ip: &str) {
        std::fs::create_dir_all(dir).unwrap();
        sh(&format!(
            "cd '{d}'
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out srv.csr -subj '/CN={ip}' 2>/dev/null
printf 'subjectAltName=IP:%s,DNS:dc1.test.lan\\nextendedKeyUsage=serverAuth\\n' '{ip}' > ext.cnf
openssl x509 -req -in srv.csr -CA '{ca}/ca.pem' -CAkey '{ca}/ca.key' -CAcreateserial -out cert.pem -days 2 -extfile ext.cnf 2>/dev/null
cp '{ca}/ca.pem' ca.pem
chmod 600 key.pem",
            d = dir.display(),
            ca = self.dir.display()
        ));
    }
}

/// A CA made now in `dir`.
pub fn new_ca(dir: &Path) -> TestCa {
    std::fs::create_dir_all(dir).unwrap();
    sh(&format!(
        "cd '{}'
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj '/CN=Test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign 2>/dev/null",
        dir.display()
    ));
    TestCa {
        dir: dir.to_path_buf(),
    }
}

/// The provisioned, filled domain every DC of this process is a copy of, and its CA.
pub struct AdTemplate {
    pub dir: PathBuf,
    pub ip: String,
    pub ca: TestCa,
}

/// Where this process keeps its template; templates of processes that are gone are removed
/// first, so an interrupted run leaves no lasting litter.
fn template_root() -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(rd) = std::fs::read_dir(&tmp) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("mfa-ad-template-")
                && !Path::new(&format!("/proc/{pid}")).exists()
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    tmp.join(format!("mfa-ad-template-{}", std::process::id()))
}

/// The domain, provisioned and filled on first use (once per process).
pub fn ad_template() -> &'static AdTemplate {
    static T: OnceLock<AdTemplate> = OnceLock::new();
    T.get_or_init(|| {
        let start = Instant::now();
        let root = template_root();
        let _ = std::fs::remove_dir_all(&root);
        let d = root.join("dc");
        let ip = address(1);
        for sub in ["log", "run", "cache", "tls"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let opt = |o: &str| format!("--option={o}");
        run(Command::new("samba-tool").args([
            "domain".to_string(),
            "provision".into(),
            format!("--targetdir={}", d.display()),
            "--realm=TEST.LAN".into(),
            "--domain=TEST".into(),
            format!("--adminpass={ADMIN_PASSWORD}"),
            "--server-role=dc".into(),
            "--dns-backend=NONE".into(),
            "--use-rfc2307".into(),
            "--host-name=dc1".into(),
            format!("--host-ip={ip}"),
            opt(&format!("interfaces={ip}/8")),
            opt("bind interfaces only=yes"),
            opt("server services=ldap, cldap, kdc"),
            opt(&format!("pid directory={}/run", d.display())),
            opt(&format!("log file={}/log/log.%m", d.display())),
            opt(&format!("ncalrpc dir={}/run/ncalrpc", d.display())),
            opt(&format!("winbindd socket directory={}/run/winbindd", d.display())),
            opt(&format!("ntp signd socket directory={}/run/ntp_signd", d.display())),
        ]));
        let conf = d.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf).unwrap().replace(
            "[global]\n",
            &format!(
                "[global]\n\tldap server require strong auth = no\n\ttls keyfile = {d}/tls/key.pem\n\ttls certfile = {d}/tls/cert.pem\n\ttls cafile = {d}/tls/ca.pem\n",
                d = d.display()
            ),
        );
        std::fs::write(&conf, text).unwrap();
        let s = format!("-s {}", conf.display());
        sh(&format!(
            "samba-tool user add alice '{ALICE_PASSWORD}' --given-name=Alice --surname=Anders {s}
samba-tool user add bob '{BOB_PASSWORD}' {s}
samba-tool user add carol '{CAROL_PASSWORD}' {s}
samba-tool user disable carol {s}
for g in g_inner g_mid g_outer g_prim g_primouter; do samba-tool group add $g {s}; done
samba-tool group addmembers g_inner alice {s}
samba-tool group addmembers g_mid g_inner {s}
samba-tool group addmembers g_outer g_mid {s}
samba-tool group addmembers g_prim bob {s}
samba-tool group addmembers g_primouter g_prim {s}
samba-tool user setprimarygroup bob g_prim {s}"
        ));
        let ca = new_ca(&root.join("ca"));
        eprintln!(
            "provisioned the Samba AD template in {:.1} s",
            start.elapsed().as_secs_f64()
        );
        AdTemplate { dir: d, ip, ca }
    })
}

/// A running Samba AD DC, a copy of the template on an address of its own.
pub struct SambaDc {
    pub ip: String,
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl SambaDc {
    /// A copy of the domain, started and answering.
    pub fn start() -> SambaDc {
        let t = ad_template();
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dc");
        run(Command::new("cp").arg("-a").arg(&t.dir).arg(&dir));
        let ip = next_address();
        let conf = dir.join("etc/smb.conf");
        let text = std::fs::read_to_string(&conf)
            .unwrap()
            .replace(&t.dir.display().to_string(), &dir.display().to_string())
            .replace(&t.ip, &ip);
        std::fs::write(&conf, text).unwrap();
        t.ca.issue(&dir.join("tls"), &ip);
        let mut dc = SambaDc {
            ip,
            dir,
            child: None,
            _tmp: tmp,
        };
        dc.run();
        dc
    }

    /// Starts the server (again) and waits until it answers a bind.
    pub fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("log/samba.out")).unwrap();
        let child = Command::new("samba")
            .arg("-s")
            .arg(self.dir.join("etc/smb.conf"))
            .args(["-i", "-M", "single", "--maximum-runtime=1200"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        loop {
            let ok = Command::new("ldapsearch")
                .args(["-x", "-H", &format!("ldap://{}", self.ip), "-D", ADMIN_DN])
                .args(["-w", ADMIN_PASSWORD, "-s", "base", "-b", "", "dnsHostName"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "samba on {} did not answer: {}",
                self.ip,
                std::fs::read_to_string(self.dir.join("log/samba.out")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (SIGTERM, then waits for it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn url(&self) -> String {
        format!("ldaps://{}", self.ip)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }
}

impl Drop for SambaDc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `[directory]` table for AD `servers`, the password file written (0600) into `site_dir`.
pub fn ad_directory_toml(site_dir: &Path, servers: &[String], ca_file: &Path) -> String {
    let pw = site_dir.join("directory.pw");
    if !pw.exists() {
        crate::write_private(&pw, &format!("{ADMIN_PASSWORD}\n"));
    }
    let list: Vec<String> = servers.iter().map(|s| format!("{s:?}")).collect();
    format!(
        "[directory]\nservers = [{}]\nca_file = {:?}\ntimeout = \"3s\"\nbind_dn = {ADMIN_DN:?}\nbind_password_file = {:?}\nbase_dn = {BASE_DN:?}\nkind = \"ad\"\n",
        list.join(", "),
        ca_file.display().to_string(),
        pw.display().to_string()
    )
}

pub const SLAPD_BASE: &str = "dc=example,dc=org";
pub const SLAPD_ADMIN: &str = "cn=admin,dc=example,dc=org";
pub const SLAPD_ADMIN_PASSWORD: &str = "sl4pd-secret";
pub const SLAPD_PASSWORD: &str = "Sl4pdUser!pw";

/// A running slapd (mdb, memberof and refint overlays, StartTLS with a test CA) with:
/// users alice and bob; alice in inner, inner in mid, mid in outer; bob in other.
pub struct Slapd {
    pub ip: String,
    pub port: u16,
    pub dir: PathBuf,
    child: Option<Child>,
    _tmp: tempfile::TempDir,
}

impl Slapd {
    pub fn start() -> Slapd {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().to_path_buf();
        for sub in ["db", "run", "tls"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let ca = new_ca(&d.join("ca"));
        let ip = next_address();
        ca.issue(&d.join("tls"), &ip);
        let port = crate::free_tcp_port();
        let conf = format!(
            "include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include /etc/ldap/schema/nis.schema
pidfile {d}/run/slapd.pid
argsfile {d}/run/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
moduleload refint
password-hash {{SSHA}}
disallow bind_anon
TLSCACertificateFile {d}/tls/ca.pem
TLSCertificateFile {d}/tls/cert.pem
TLSCertificateKeyFile {d}/tls/key.pem
database mdb
suffix \"{SLAPD_BASE}\"
rootdn \"{SLAPD_ADMIN}\"
rootpw {SLAPD_ADMIN_PASSWORD}
directory {d}/db
maxsize 104857600
index objectClass eq
index uid,cn,mail,member,memberOf eq
overlay memberof
memberof-group-oc groupOfNames
memberof-member-ad member
memberof-memberof-ad memberOf
memberof-refint TRUE
overlay refint
refint_attributes member
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
",
            d = d.display()
        );
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        let mut s = Slapd {
            ip,
            port,
            dir: d,
            child: None,
            _tmp: tmp,
        };
        s.run();
        let ldif = format!(
            "dn: {SLAPD_BASE}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
dn: ou=people,{SLAPD_BASE}\nobjectClass: organizationalUnit\nou: people\n\n\
dn: ou=groups,{SLAPD_BASE}\nobjectClass: organizationalUnit\nou: groups\n\n\
dn: uid=alice,ou=people,{SLAPD_BASE}\nobjectClass: inetOrgPerson\nuid: alice\ncn: Alice Anders\nsn: Anders\nuserPassword: {SLAPD_PASSWORD}\n\n\
dn: uid=bob,ou=people,{SLAPD_BASE}\nobjectClass: inetOrgPerson\nobjectClass: posixAccount\nuid: bob\ncn: Bob\nsn: B\nuidNumber: 5002\ngidNumber: 5001\nhomeDirectory: /home/bob\nuserPassword: {SLAPD_PASSWORD}\n\n\
dn: cn=staff,ou=groups,{SLAPD_BASE}\nobjectClass: posixGroup\ncn: staff\ngidNumber: 5001\n\n\
dn: cn=allstaff,ou=groups,{SLAPD_BASE}\nobjectClass: groupOfNames\ncn: allstaff\nmember: cn=staff,ou=groups,{SLAPD_BASE}\n\n\
dn: cn=inner,ou=groups,{SLAPD_BASE}\nobjectClass: groupOfNames\ncn: inner\nmember: uid=alice,ou=people,{SLAPD_BASE}\n\n\
dn: cn=mid,ou=groups,{SLAPD_BASE}\nobjectClass: groupOfNames\ncn: mid\nmember: cn=inner,ou=groups,{SLAPD_BASE}\n\n\
dn: cn=outer,ou=groups,{SLAPD_BASE}\nobjectClass: groupOfNames\ncn: outer\nmember: cn=mid,ou=groups,{SLAPD_BASE}\n\n\
dn: cn=other,ou=groups,{SLAPD_BASE}\nobjectClass: groupOfNames\ncn: other\nmember: uid=bob,ou=people,{SLAPD_BASE}\n"
        );
        let path = s.dir.join("data.ldif");
        std::fs::write(&path, ldif).unwrap();
        run(Command::new("ldapadd")
            .args([
                "-x",
                "-H",
                &s.url(),
                "-D",
                SLAPD_ADMIN,
                "-w",
                SLAPD_ADMIN_PASSWORD,
            ])
            .arg("-f")
            .arg(&path));
        s
    }

    pub fn run(&mut self) {
        let child = Command::new("slapd")
            .args(["-h", &format!("{}/", self.url()), "-f"])
            .arg(self.dir.join("slapd.conf"))
            .args(["-d", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect((self.ip.as_str(), self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "slapd did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://{}:{}", self.ip, self.port)
    }

    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("tls/ca.pem")
    }

    /// `[directory]` for this server (StartTLS), the password file written into `site_dir`.
    pub fn directory_toml(&self, site_dir: &Path) -> String {
        let pw = site_dir.join("directory.pw");
        if !pw.exists() {
            crate::write_private(&pw, &format!("{SLAPD_ADMIN_PASSWORD}\n"));
        }
        format!(
            "[directory]\nservers = [{:?}]\nca_file = {:?}\ntimeout = \"3s\"\nbind_dn = {SLAPD_ADMIN:?}\nbind_password_file = {:?}\nbase_dn = {SLAPD_BASE:?}\nkind = \"openldap\"\n",
            self.url(),
            self.ca_file().display().to_string(),
            pw.display().to_string()
        )
    }
}

impl Slapd {
    /// Stops the server (it is killed; nothing it holds matters after a test).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop();
    }
}
