//! Link options of pam_mfa.so alone (the daemon and mfactl link as before).
//!
//! Every login loads the module into a fresh process (sshd's child, sudo, su), so what the
//! dynamic loader does with it is paid at every login (docs/BENCHMARKS.md, "PAM: the
//! module's fixed cost"). Its 11,700 relative relocations, 24 bytes each in `.rela.dyn`
//! (277 KiB read at every dlopen), pack into 4 KiB of `DT_RELR` (`-z pack-relative-relocs`):
//! glibc 2.36 and later apply them, and the module then records the symbol version
//! `GLIBC_ABI_DT_RELR`, which dpkg-shlibdeps turns into `libc6 (>= 2.36)` in the package's
//! Depends. So it is only used where the building system's glibc has it: a module built on
//! an older system (or `MFA_PAM_RELR=0`) keeps the plain relocations, and still loads
//! everywhere. Immediate binding and RELRO (`-z now`, `-z relro`, rustc's defaults) stay:
//! they are a hardening, not a cost worth cutting.
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MFA_PAM_RELR");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let wanted = match var("MFA_PAM_RELR").as_str() {
        "0" => false,
        "1" => true,
        _ => {
            var("CARGO_CFG_TARGET_OS") == "linux"
                && var("CARGO_CFG_TARGET_ENV") == "gnu"
                && matches!(var("CARGO_CFG_TARGET_ARCH").as_str(), "x86_64" | "aarch64")
                && var("HOST") == var("TARGET")
                && host_glibc().is_some_and(|v| v >= (2, 36))
        }
    };
    if wanted {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,pack-relative-relocs");
    }
}

/// The building system's glibc (`getconf GNU_LIBC_VERSION` prints `glibc 2.36`).
fn host_glibc() -> Option<(u32, u32)> {
    let out = Command::new("getconf")
        .arg("GNU_LIBC_VERSION")
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let (major, minor) = text.trim().strip_prefix("glibc ")?.split_once('.')?;
    let minor = minor.split('.').next()?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}
