//! The PAM *client* side: checks a user's password through a PAM service, as `login` or `sshd`
//! would, so the RADIUS daemon's first factor works with pam_unix, SSSD or LDAP unchanged.
//!
//! Hand-written declarations instead of pam-sys: the crates.io PAM client crates run bindgen,
//! which needs libclang at build time, for the handful of functions used here. This is the only
//! crate besides the PAM module that contains `unsafe`.
//!
//! Failure delays (pam_unix asks for ~2 s on every failure) are *not* slept here: a
//! `PAM_FAIL_DELAY` callback records the requested delay, and the caller applies it
//! asynchronously, so a wrong password never parks a worker thread.

use std::ffi::{CStr, CString, c_char, c_int, c_uint, c_void};
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

mod ffi {
    use std::ffi::{c_char, c_int, c_uint, c_void};

    pub const PAM_SUCCESS: c_int = 0;
    pub const PAM_BUF_ERR: c_int = 5;
    pub const PAM_CONV_ERR: c_int = 19;
    pub const PAM_ABORT: c_int = 26;

    pub const PAM_RHOST: c_int = 4;
    pub const PAM_FAIL_DELAY: c_int = 10;

    pub const PAM_PROMPT_ECHO_OFF: c_int = 1;
    pub const PAM_ERROR_MSG: c_int = 3;
    pub const PAM_TEXT_INFO: c_int = 4;

    pub const PAM_SILENT: c_int = 0x8000;
    pub const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;

    /// Opaque `pam_handle_t`.
    #[repr(C)]
    pub struct PamHandle {
        _private: [u8; 0],
    }

    #[repr(C)]
    pub struct PamMessage {
        pub msg_style: c_int,
        pub msg: *const c_char,
    }

    #[repr(C)]
    pub struct PamResponse {
        pub resp: *mut c_char,
        pub resp_retcode: c_int,
    }

    pub type ConvFn = unsafe extern "C" fn(
        num_msg: c_int,
        msg: *mut *const PamMessage,
        resp: *mut *mut PamResponse,
        appdata_ptr: *mut c_void,
    ) -> c_int;

    pub type DelayFn =
        unsafe extern "C" fn(retval: c_int, usec_delay: c_uint, appdata_ptr: *mut c_void);

    #[repr(C)]
    pub struct PamConv {
        pub conv: Option<ConvFn>,
        pub appdata_ptr: *mut c_void,
    }

    #[link(name = "pam")]
    unsafe extern "C" {
        pub fn pam_start(
            service_name: *const c_char,
            user: *const c_char,
            pam_conversation: *const PamConv,
            pamh: *mut *mut PamHandle,
        ) -> c_int;
        pub fn pam_start_confdir(
            service_name: *const c_char,
            user: *const c_char,
            pam_conversation: *const PamConv,
            confdir: *const c_char,
            pamh: *mut *mut PamHandle,
        ) -> c_int;
        pub fn pam_end(pamh: *mut PamHandle, pam_status: c_int) -> c_int;
        pub fn pam_authenticate(pamh: *mut PamHandle, flags: c_int) -> c_int;
        pub fn pam_acct_mgmt(pamh: *mut PamHandle, flags: c_int) -> c_int;
        pub fn pam_set_item(pamh: *mut PamHandle, item_type: c_int, item: *const c_void) -> c_int;
    }
}

/// What the PAM stack said about a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PamCheck {
    /// Authentication and account management both returned `PAM_SUCCESS`.
    pub ok: bool,
    /// The first non-success PAM status (0 when `ok`).
    pub status: i32,
    /// The failure delay the stack asked for (pam_unix: ~2 s, randomised), to be applied by
    /// the caller before answering. Zero on success.
    pub fail_delay: Duration,
    /// Why the check could not be run at all (bad input, `pam_start` failed); `ok` is false.
    pub error: Option<String>,
}

impl PamCheck {
    fn refused(error: String) -> Self {
        PamCheck {
            ok: false,
            status: -1,
            fail_delay: Duration::ZERO,
            error: Some(error),
        }
    }

    /// A short, log-safe description of the outcome.
    pub fn reason(&self) -> String {
        if self.ok {
            return "password accepted".into();
        }
        if let Some(e) = &self.error {
            return e.clone();
        }
        format!("PAM refused: {}", status_name(self.status))
    }
}

/// The symbolic name of a Linux-PAM status code.
pub fn status_name(status: i32) -> &'static str {
    match status {
        0 => "PAM_SUCCESS",
        1 => "PAM_OPEN_ERR",
        2 => "PAM_SYMBOL_ERR",
        3 => "PAM_SERVICE_ERR",
        4 => "PAM_SYSTEM_ERR",
        5 => "PAM_BUF_ERR",
        6 => "PAM_PERM_DENIED",
        7 => "PAM_AUTH_ERR",
        8 => "PAM_CRED_INSUFFICIENT",
        9 => "PAM_AUTHINFO_UNAVAIL",
        10 => "PAM_USER_UNKNOWN",
        11 => "PAM_MAXTRIES",
        12 => "PAM_NEW_AUTHTOK_REQD",
        13 => "PAM_ACCT_EXPIRED",
        19 => "PAM_CONV_ERR",
        20 => "PAM_AUTHTOK_ERR",
        26 => "PAM_ABORT",
        _ => "other PAM error",
    }
}

/// One password check.
#[derive(Debug, Clone, Copy)]
pub struct PamRequest<'a> {
    /// The PAM service (file under /etc/pam.d).
    pub service: &'a str,
    pub user: &'a str,
    pub password: &'a [u8],
    /// Set as `PAM_RHOST` so pam_access-style rules see the end user's address.
    pub rhost: Option<&'a str>,
    /// Read service files from this directory instead of /etc/pam.d (`pam_start_confdir`,
    /// Linux-PAM 1.4+). For tests and unusual installs.
    pub confdir: Option<&'a Path>,
}

/// State shared with the C callbacks through `appdata_ptr`. Lives on `check`'s stack frame
/// for the whole life of the PAM handle.
struct AppData {
    password: Zeroizing<Vec<u8>>,
    /// The password is handed out once: a stack that prompts twice gets a conversation error
    /// instead of a second guess with the same secret.
    answered: bool,
    fail_delay_usec: u32,
}

/// Checks `user`'s password through PAM: `pam_authenticate`, then `pam_acct_mgmt` (so expired
/// or locked accounts fail too). Blocking: call it from a blocking pool. Never sleeps the PAM
/// failure delay; see [`PamCheck::fail_delay`].
pub fn check_password(service: &str, user: &str, password: &[u8]) -> PamCheck {
    check(&PamRequest {
        service,
        user,
        password,
        rhost: None,
        confdir: None,
    })
}

/// [`check_password`] with every option.
pub fn check(req: &PamRequest<'_>) -> PamCheck {
    let Ok(service) = CString::new(req.service) else {
        return PamCheck::refused("PAM service name contains a NUL byte".into());
    };
    let Ok(user) = CString::new(req.user) else {
        return PamCheck::refused("user name contains a NUL byte".into());
    };
    if req.password.contains(&0) {
        return PamCheck::refused("password contains a NUL byte".into());
    }
    let rhost = match req.rhost.map(CString::new) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(_)) => return PamCheck::refused("remote host contains a NUL byte".into()),
    };
    let confdir = match req.confdir {
        None => None,
        Some(p) => match p.to_str().map(CString::new) {
            Some(Ok(c)) => Some(c),
            _ => return PamCheck::refused("PAM confdir is not a valid C string".into()),
        },
    };

    let mut data = AppData {
        password: Zeroizing::new(req.password.to_vec()),
        answered: false,
        fail_delay_usec: 0,
    };
    let conv = ffi::PamConv {
        conv: Some(conversation),
        appdata_ptr: (&raw mut data).cast::<c_void>(),
    };
    let mut handle: *mut ffi::PamHandle = std::ptr::null_mut();
    let rc = match &confdir {
        // SAFETY: all pointers are valid NUL-terminated strings or live structs for the call;
        // libpam copies `conv` and the strings. `data` (behind appdata_ptr) outlives the
        // handle, which is ended below before this frame returns.
        Some(dir) => unsafe {
            ffi::pam_start_confdir(
                service.as_ptr(),
                user.as_ptr(),
                &conv,
                dir.as_ptr(),
                &mut handle,
            )
        },
        // SAFETY: as above, without the confdir.
        None => unsafe { ffi::pam_start(service.as_ptr(), user.as_ptr(), &conv, &mut handle) },
    };
    if rc != ffi::PAM_SUCCESS || handle.is_null() {
        if !handle.is_null() {
            // SAFETY: a non-null handle from pam_start must be released with pam_end.
            unsafe { ffi::pam_end(handle, rc) };
        }
        return PamCheck::refused(format!(
            "pam_start for service {:?} failed: {}",
            req.service,
            status_name(rc)
        ));
    }
    let handle = Handle(handle);

    let delay_fn: ffi::DelayFn = record_fail_delay;
    // SAFETY: PAM_FAIL_DELAY takes a function pointer of exactly this C signature; libpam
    // stores the pointer value. The handle is live.
    let rc = unsafe { ffi::pam_set_item(handle.0, ffi::PAM_FAIL_DELAY, delay_fn as *const c_void) };
    if rc != ffi::PAM_SUCCESS {
        // Without the callback libpam would sleep on this thread; refuse rather than block.
        return handle.finish(PamCheck::refused(format!(
            "cannot set PAM_FAIL_DELAY: {}",
            status_name(rc)
        )));
    }
    if let Some(r) = &rhost {
        // SAFETY: PAM_RHOST takes a C string, which libpam copies. The handle is live.
        let rc = unsafe { ffi::pam_set_item(handle.0, ffi::PAM_RHOST, r.as_ptr().cast()) };
        if rc != ffi::PAM_SUCCESS {
            return handle.finish(PamCheck::refused(format!(
                "cannot set PAM_RHOST: {}",
                status_name(rc)
            )));
        }
    }

    let flags = ffi::PAM_SILENT | ffi::PAM_DISALLOW_NULL_AUTHTOK;
    // SAFETY: the handle is live; the conversation callback only touches `data`, which is
    // alive and not otherwise borrowed while PAM runs.
    let mut status = unsafe { ffi::pam_authenticate(handle.0, flags) };
    if status == ffi::PAM_SUCCESS {
        // SAFETY: as above.
        status = unsafe { ffi::pam_acct_mgmt(handle.0, ffi::PAM_SILENT) };
    }
    // End the handle before reading `data`: module cleanup may still use the conversation.
    handle.end(status);
    let ok = status == ffi::PAM_SUCCESS;
    PamCheck {
        ok,
        status,
        fail_delay: if ok {
            Duration::ZERO
        } else {
            Duration::from_micros(u64::from(data.fail_delay_usec))
        },
        error: None,
    }
}

/// Owns a started PAM handle; `pam_end` runs exactly once, on every path.
struct Handle(*mut ffi::PamHandle);

impl Handle {
    fn end(mut self, status: c_int) {
        self.end_with(status);
    }

    fn finish(mut self, check: PamCheck) -> PamCheck {
        self.end_with(ffi::PAM_ABORT);
        check
    }

    fn end_with(&mut self, status: c_int) {
        if !self.0.is_null() {
            // SAFETY: the handle came from pam_start and is ended once (nulled afterwards).
            unsafe { ffi::pam_end(self.0, status) };
            self.0 = std::ptr::null_mut();
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.end_with(ffi::PAM_ABORT);
    }
}

/// The conversation: answers the first echo-off prompt with the password, ignores
/// informational and error messages, refuses everything else. Never unwinds into C.
unsafe extern "C" fn conversation(
    num_msg: c_int,
    msg: *mut *const ffi::PamMessage,
    resp: *mut *mut ffi::PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: libpam passes `num_msg` message pointers, a writable `resp` slot and the
        // appdata_ptr we registered, which points at a live AppData used only by this thread.
        unsafe { converse(num_msg, msg, resp, appdata_ptr) }
    }))
    .unwrap_or(ffi::PAM_CONV_ERR)
}

/// # Safety
/// As for [`conversation`]: arguments straight from libpam.
unsafe fn converse(
    num_msg: c_int,
    msg: *mut *const ffi::PamMessage,
    resp: *mut *mut ffi::PamResponse,
    appdata_ptr: *mut c_void,
) -> c_int {
    if resp.is_null() || msg.is_null() || appdata_ptr.is_null() {
        return ffi::PAM_CONV_ERR;
    }
    let Ok(n) = usize::try_from(num_msg) else {
        return ffi::PAM_CONV_ERR;
    };
    if n == 0 || n > 32 {
        return ffi::PAM_CONV_ERR;
    }
    // SAFETY: appdata_ptr is the &mut AppData registered in `check`, alive for the handle.
    let data = unsafe { &mut *appdata_ptr.cast::<AppData>() };
    // SAFETY: calloc of n zeroed responses; libpam frees the array and each `resp` with free().
    let replies = unsafe { libc::calloc(n, std::mem::size_of::<ffi::PamResponse>()) }
        .cast::<ffi::PamResponse>();
    if replies.is_null() {
        return ffi::PAM_BUF_ERR;
    }
    for i in 0..n {
        // SAFETY: Linux-PAM passes an array of `num_msg` pointers to messages.
        let m = unsafe { *msg.add(i) };
        if m.is_null() {
            // SAFETY: `replies` holds n initialised (zeroed or filled) responses.
            unsafe { free_replies(replies, n) };
            return ffi::PAM_CONV_ERR;
        }
        // SAFETY: m points at a valid pam_message for the duration of the call.
        let style = unsafe { (*m).msg_style };
        match style {
            ffi::PAM_PROMPT_ECHO_OFF if !data.answered => {
                data.answered = true;
                let len = data.password.len();
                // SAFETY: malloc of len+1 bytes; libpam frees it (after overwriting, in pam_unix).
                let p = unsafe { libc::malloc(len + 1) }.cast::<c_char>();
                if p.is_null() {
                    // SAFETY: as above.
                    unsafe { free_replies(replies, n) };
                    return ffi::PAM_BUF_ERR;
                }
                // SAFETY: p has room for len bytes plus the terminating NUL; the password has
                // no interior NUL (checked in `check`).
                unsafe {
                    std::ptr::copy_nonoverlapping(data.password.as_ptr().cast(), p, len);
                    *p.add(len) = 0;
                    (*replies.add(i)).resp = p;
                }
            }
            ffi::PAM_TEXT_INFO | ffi::PAM_ERROR_MSG => {}
            _ => {
                // A second password prompt, an echo-on prompt (user name, OTP), or a binary
                // prompt: nothing we can answer honestly.
                // SAFETY: as above.
                unsafe { free_replies(replies, n) };
                return ffi::PAM_CONV_ERR;
            }
        }
    }
    // SAFETY: resp is a valid out-pointer from libpam.
    unsafe { *resp = replies };
    ffi::PAM_SUCCESS
}

/// # Safety
/// `replies` must be a calloc'd array of `n` responses whose `resp` are null or malloc'd.
unsafe fn free_replies(replies: *mut ffi::PamResponse, n: usize) {
    for i in 0..n {
        // SAFETY: i < n, inside the array.
        let r = unsafe { (*replies.add(i)).resp };
        if !r.is_null() {
            // SAFETY: r is a NUL-terminated string we malloc'd; wipe it before freeing.
            unsafe {
                let len = CStr::from_ptr(r).to_bytes().len();
                std::ptr::write_bytes(r, 0, len);
                libc::free(r.cast());
            }
        }
    }
    // SAFETY: the array came from calloc.
    unsafe { libc::free(replies.cast()) };
}

/// PAM_FAIL_DELAY callback: remember the longest delay asked for instead of sleeping.
unsafe extern "C" fn record_fail_delay(
    _retval: c_int,
    usec_delay: c_uint,
    appdata_ptr: *mut c_void,
) {
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if appdata_ptr.is_null() {
            return;
        }
        // SAFETY: libpam passes the conversation's appdata_ptr, our live AppData.
        let data = unsafe { &mut *appdata_ptr.cast::<AppData>() };
        data.fail_delay_usec = data.fail_delay_usec.max(usec_delay);
    }));
}
