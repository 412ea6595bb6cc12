//! Test helper (not shipped): sign-in requests through the core, as a front end (PAM,
//! mfa-radiusd) makes and settles them, for the portal's push tests and the push
//! benchmark. Every answer is one JSON line on stdout; exit 0, or 1 for a refusal.
//!
//! ```text
//! push-request CONFIG start USER SERVICE IP [--no-number]
//!     {"id": HEX, "number": N|null, "expires": T}   or {"refused": CODE, "message": ..}
//! push-request CONFIG status ID             {"state": "pending"|...|null}
//! push-request CONFIG verify USER SERVICE IP ID
//!     {"allowed": bool, "outcome": .., "reason": CODE}   (Login::verify_push)
//! ```
//!
//! The request is what a PAM login of USER to SERVICE from IP is, admitted as after its
//! first factor; `start` is called only where the policy asks for a code, as the front
//! ends do.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use mfa_core::login::{Service, now};
use mfa_core::{ClientAddr, Core, CoreError, OpenMode, PushId, Refusal, Request, Voucher};

fn out(v: serde_json::Value, ok: bool) -> ExitCode {
    println!("{v}");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("push-request: {msg}");
    ExitCode::from(2)
}

fn request(core: &Core, user: &str, service: &str, ip: &str) -> Result<Request, CoreError> {
    let u = core.user_name(user)?;
    let req = Request::new(
        &u,
        ClientAddr::Remote(ip.parse().ok()),
        Service::Pam(service.to_string()),
    );
    let admission = core.login().admit_name(&u, Voucher::FirstFactor)?;
    Ok(req.admit(&admission))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(config) = args.first() else {
        return fail("usage: push-request CONFIG start|status|verify ...");
    };
    let core = match mfa_store_open::core_from_config_file(
        config.as_ref(),
        OpenMode::Existing,
        "push-request",
    ) {
        Ok(c) => c,
        Err(e) => return fail(&e.to_string()),
    };
    let rest: Vec<&str> = args[1..].iter().map(String::as_str).collect();
    let r = match rest.as_slice() {
        ["start", user, service, ip, more @ ..] => {
            let show = !more.contains(&"--no-number");
            request(&core, user, service, ip).and_then(|req| {
                match core.push("push-request").start(&req, show) {
                    Ok(s) => Ok(out(
                        serde_json::json!({"id": s.id.hex(), "number": s.number, "expires": s.expires}),
                        true,
                    )),
                    Err(CoreError::Refused(Refusal::Push(p))) => Ok(out(
                        serde_json::json!({"refused": mfa_core::Reason::PushRefused(p).code(), "message": p.to_string()}),
                        false,
                    )),
                    Err(e) => Err(e),
                }
            })
        }
        ["status", id] => {
            let Some(id) = PushId::parse_hex(id) else {
                return fail("not a request id");
            };
            core.push("push-request")
                .status(&id, now())
                .map(|s| out(serde_json::json!({"state": s.map(|s| s.as_str())}), true))
        }
        ["verify", user, service, ip, id] => {
            let Some(id) = PushId::parse_hex(id) else {
                return fail("not a request id");
            };
            request(&core, user, service, ip).and_then(|req| {
                let d = core.login().verify_push(&req, &id)?;
                Ok(out(
                    serde_json::json!({
                        "allowed": d.is_allowed(),
                        "outcome": format!("{:?}", d.outcome),
                        "reason": d.reason.code(),
                    }),
                    true,
                ))
            })
        }
        _ => return fail("usage: push-request CONFIG start|status|verify ..."),
    };
    r.unwrap_or_else(|e| fail(&e.to_string()))
}
