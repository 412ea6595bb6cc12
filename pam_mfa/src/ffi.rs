//! Every libpam call of the module, behind [`Pam`]. The only place with `unsafe`.
//!
//! The six `pam_sm_*` entry points come from pam-bindings' `pam_hooks!`, which also validates
//! argv and turns a panic into PAM_ABORT. The conversation is called here directly rather
//! than through pam-bindings' `Conv::send`, because that copies the message into a buffer it
//! frees without wiping, and the self-enrolment messages carry the new key.
#![allow(unsafe_code)]

use std::ffi::{CStr, c_char, c_int, c_void};
use std::panic::{AssertUnwindSafe, catch_unwind};

use mfa_core::audit::Syslog;
use pam::constants::{PAM_SILENT, PamFlag, PamResultCode};
use pam::items::{AuthTok, RHost, Service};
use pam::module::{PamHandle, PamHooks};
use zeroize::{Zeroize, Zeroizing};

use crate::flow::{Log, Pam, PamCode, PamError, Phase, authenticate, not_here};

const PAM_SUCCESS: c_int = 0;
const PAM_CONV: c_int = 5;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
/// Longest answer we read back; codes are 6 to 8 digits, the rest is typing noise.
const MAX_ANSWER: usize = 1024;

#[repr(C)]
#[allow(dead_code)] // read by the application, not by us
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
#[allow(dead_code)] // resp_retcode is unused by Linux-PAM
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = unsafe extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int;

/// `struct pam_conv` from <security/_pam_types.h>.
#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata_ptr: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_get_item(pamh: *const c_void, item_type: c_int, item: *mut *const c_void) -> c_int;
}

struct PamMfa;
pam::pam_hooks!(PamMfa);

impl PamHooks for PamMfa {
    fn sm_authenticate(pamh: &mut PamHandle, args: Vec<&CStr>, flags: PamFlag) -> PamResultCode {
        let log = SyslogLog(Syslog::open("pam_mfa"));
        // pam-bindings would turn a panic into PAM_ABORT; catching it here as well gives the
        // plain PAM_AUTH_ERR the stacks expect, and a line in the log.
        let result = catch_unwind(AssertUnwindSafe(|| {
            let args: Vec<&str> = match args.iter().map(|a| a.to_str()).collect() {
                Ok(a) => a,
                Err(_) => {
                    log.error("refusing to authenticate: a module argument is not UTF-8");
                    return PamCode::AuthErr;
                }
            };
            let mut io = Handle(pamh);
            authenticate(&mut io, &log, &args, flags & PAM_SILENT != 0)
        }));
        match result {
            // Every code the flow returns is one libpam defines; anything else would be a
            // bug, and denies.
            Ok(code) => PamResultCode::try_from(code.raw()).unwrap_or_else(|raw| {
                log.error(&format!(
                    "denied: pam_mfa chose an undefined PAM code {raw}"
                ));
                PamResultCode::PAM_AUTH_ERR
            }),
            Err(_) => {
                log.error("denied: internal error (panic) in pam_mfa");
                PamResultCode::PAM_AUTH_ERR
            }
        }
    }

    /// Nothing to establish: the module grants no credentials, and an error here would break
    /// stacks that call setcred for every auth module. Not logged: setcred belongs to the
    /// auth phase, where a correct stack calls it after every successful login.
    fn sm_setcred(_pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        PamResultCode::PAM_SUCCESS
    }

    fn acct_mgmt(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        nothing_here(pamh, Phase::Account)
    }

    fn sm_open_session(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        nothing_here(pamh, Phase::OpenSession)
    }

    fn sm_close_session(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        nothing_here(pamh, Phase::CloseSession)
    }

    fn sm_chauthtok(pamh: &mut PamHandle, _args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        nothing_here(pamh, Phase::Password)
    }
}

/// A phase the module does nothing in: PAM_IGNORE, as before, and now a line in syslog
/// (see [`not_here`]). A panic (there should be none) still answers PAM_IGNORE: nothing is
/// granted either way.
fn nothing_here(pamh: &mut PamHandle, phase: Phase) -> PamResultCode {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let log = SyslogLog(Syslog::open("pam_mfa"));
        let service = Handle(pamh).service().ok().flatten();
        not_here(&log, phase, service.as_deref())
    }));
    PamResultCode::PAM_IGNORE
}

struct SyslogLog(Syslog);

impl Log for SyslogLog {
    fn error(&self, msg: &str) {
        self.0.err(msg);
    }

    fn debug(&self, msg: &str) {
        self.0.info(&format!("debug: {msg}"));
    }
}

struct Handle<'a>(&'a mut PamHandle);

/// A failed libpam call as the module reports it.
fn pam_err(call: &'static str, code: PamResultCode) -> PamError {
    PamError::Call {
        call,
        code: PamCode::from_raw(code as c_int),
    }
}

fn text(c: &CStr) -> String {
    // Not UTF-8: still set, so still "remote"; an empty string is never trusted.
    c.to_str().map(str::to_owned).unwrap_or_default()
}

impl Handle<'_> {
    /// Sends one message through the application's conversation function. The message
    /// buffer and the answer are wiped before they are freed.
    fn converse(
        &mut self,
        style: c_int,
        text: &str,
    ) -> Result<Option<Zeroizing<String>>, PamError> {
        let mut conv_ptr: *const c_void = std::ptr::null();
        // SAFETY: self.0 is the live handle libpam passed to this hook; PAM_CONV is a valid
        // item type and conv_ptr a valid place for the result.
        let rc = unsafe {
            pam_get_item(
                std::ptr::from_mut(self.0).cast_const().cast(),
                PAM_CONV,
                &raw mut conv_ptr,
            )
        };
        if rc != PAM_SUCCESS {
            return Err(PamError::Call {
                call: "pam_get_item(PAM_CONV)",
                code: PamCode::from_raw(rc),
            });
        }
        if conv_ptr.is_null() {
            return Err(PamError::NoConversation);
        }
        // SAFETY: for PAM_CONV libpam returns a pointer to the application's `struct pam_conv`,
        // valid for the duration of this call.
        let conv = unsafe { &*conv_ptr.cast::<PamConv>() };
        let Some(func) = conv.conv else {
            return Err(PamError::NoConversation);
        };
        let mut buf = Zeroizing::new(Vec::with_capacity(text.len() + 1));
        buf.extend(text.bytes().map(|b| if b == 0 { b'?' } else { b }));
        buf.push(0);
        let msg = PamMessage {
            msg_style: style,
            msg: buf.as_ptr().cast(),
        };
        let mut msg_ptr: *const PamMessage = &raw const msg;
        let mut resp: *mut PamResponse = std::ptr::null_mut();
        // SAFETY: one message, pointed to by msg_ptr, with a NUL-terminated text that outlives
        // the call; resp is a valid place for the answer array. The function and appdata are
        // the application's own pair.
        let rc = unsafe { func(1, &raw mut msg_ptr, &raw mut resp, conv.appdata_ptr) };
        if rc != PAM_SUCCESS {
            // On failure the application keeps (or has freed) any answer: do not touch it.
            return Err(PamError::Call {
                call: "conversation",
                code: PamCode::from_raw(rc),
            });
        }
        if resp.is_null() {
            return Ok(None);
        }
        // SAFETY: on success the application hands us an array of one pam_response, allocated
        // with malloc, which we now own.
        let r = unsafe { &mut *resp };
        let answer = if r.resp.is_null() {
            None
        } else {
            // SAFETY: resp.resp is a malloc'd NUL-terminated string we own.
            let bytes = unsafe { CStr::from_ptr(r.resp) }.to_bytes();
            let n = bytes.len();
            let mut copy = Zeroizing::new(bytes[..n.min(MAX_ANSWER)].to_vec());
            // SAFETY: the string has n bytes before its NUL and we own it; wipe then free.
            unsafe {
                std::slice::from_raw_parts_mut(r.resp.cast::<u8>(), n).zeroize();
                libc::free(r.resp.cast());
            }
            r.resp = std::ptr::null_mut();
            Some(match String::from_utf8(std::mem::take(&mut *copy)) {
                Ok(s) => Zeroizing::new(s),
                Err(e) => {
                    e.into_bytes().zeroize();
                    // Not a code whatever it is; counted as a wrong one.
                    Zeroizing::new("?".to_owned())
                }
            })
        };
        // SAFETY: the response array is malloc'd and ours (see above).
        unsafe { libc::free(resp.cast()) };
        Ok(answer)
    }
}

impl Pam for Handle<'_> {
    fn user(&mut self) -> Result<String, PamError> {
        match self.0.get_user(None) {
            Ok(u) => Ok(u),
            Err(e) => Err(pam_err("pam_get_user", e)),
        }
    }

    fn rhost(&self) -> Result<Option<String>, PamError> {
        match self.0.get_item::<RHost>() {
            Ok(r) => Ok(r.map(|r| text(r.0))),
            Err(e) => Err(pam_err("pam_get_item(PAM_RHOST)", e)),
        }
    }

    fn service(&self) -> Result<Option<String>, PamError> {
        match self.0.get_item::<Service>() {
            Ok(s) => Ok(s.map(|s| text(s.0))),
            Err(e) => Err(pam_err("pam_get_item(PAM_SERVICE)", e)),
        }
    }

    fn authtok(&self) -> Result<Option<Zeroizing<String>>, PamError> {
        match self.0.get_item::<AuthTok>() {
            Ok(Some(t)) => Ok(t
                .to_owned_secret()
                .as_str()
                .ok()
                .map(|s| Zeroizing::new(s.to_owned()))),
            Ok(None) => Ok(None),
            Err(e) => Err(pam_err("pam_get_item(PAM_AUTHTOK)", e)),
        }
    }

    fn prompt_hidden(&mut self, prompt: &str) -> Result<Option<Zeroizing<String>>, PamError> {
        self.converse(PAM_PROMPT_ECHO_OFF, prompt)
    }

    fn info(&mut self, text: &str) -> Result<(), PamError> {
        self.converse(PAM_TEXT_INFO, text).map(|_| ())
    }

    fn error(&mut self, text: &str) -> Result<(), PamError> {
        self.converse(PAM_ERROR_MSG, text).map(|_| ())
    }
}
