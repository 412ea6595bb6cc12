//! Test helper (not shipped): enrols users in a loop through the real store and prints
//! `ack NAME` after each commit returns, so a test can kill it with SIGKILL mid-write and
//! then check that every acknowledged enrolment is still there.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;

use mfa_core::{OpenMode, TotpSecret};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(config), Some(prefix)) = (args.next(), args.next()) else {
        eprintln!("usage: store-writer CONFIG PREFIX");
        std::process::exit(2);
    };
    let a = match mfa_store_open::core_from_config_file(
        &PathBuf::from(config),
        OpenMode::Create,
        "store-writer",
    ) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("store-writer: {e}");
            std::process::exit(2);
        }
    };
    let mut out = std::io::stdout().lock();
    for i in 0u64.. {
        let Ok(user) = a.user_name(&format!("{prefix}{i}")) else {
            eprintln!("store-writer: {prefix:?} makes no valid user name");
            std::process::exit(2)
        };
        let Ok(secret) = TotpSecret::generate() else {
            std::process::exit(1)
        };
        if let Err(e) = a.enrolment().enroll(
            &user,
            &secret,
            None,
            false,
            "store-writer",
            mfa_core::login::now(),
        ) {
            eprintln!("store-writer: {e}");
            std::process::exit(1);
        }
        if writeln!(out, "ack {user}")
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(1);
        }
    }
}
