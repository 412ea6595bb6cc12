//! A new key as every page shows it (enrolment, Replace key).

use mfa_core::enrolment::{Sheet, qr_svg};
use mfa_core::{TotpSecret, UserName};
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::page::esc;
use crate::text::{T, key_kind};

/// A key shown and not yet confirmed: whose, its entry's name in the app, the key, and the
/// CSRF token of the form that confirms it.
pub struct NewKey<'a> {
    pub user: &'a UserName,
    pub account: &'a str,
    pub secret: &'a TotpSecret,
    pub csrf: &'a str,
}

/// The QR code (inline SVG), the account name, the key in groups of four in upper case,
/// its kind in the page's language. `account`: the entry's name in the app (the user's
/// name, or a replacement's own name).
pub fn block(
    t: &T,
    p: &Portal,
    account: &str,
    secret: &TotpSecret,
) -> Result<Zeroizing<String>, String> {
    let cfg = p.core.config();
    let params = cfg.totp.params();
    let sheet = Sheet::for_account(&cfg.totp.issuer, account, secret, &params);
    let svg = qr_svg(&sheet.uri)?;
    // The SVG document without its XML prolog, inline in the page; named for screen
    // readers, which otherwise read nothing for it.
    let svg_inline = svg
        .find("<svg")
        .and_then(|i| svg.get(i..))
        .ok_or("QR code without <svg>")?;
    let key_upper = Zeroizing::new(sheet.key.to_ascii_uppercase());
    Ok(Zeroizing::new(format!(
        "<div class=\"qr\" id=\"qr\" role=\"img\" aria-label=\"{}\">{}</div><dl class=\"keyfacts\"><dt>{}</dt><dd><strong id=\"account\">{}</strong></dd><dt>{}</dt><dd><span class=\"key\" id=\"key\">{}</span></dd></dl><p class=\"kind\"><small id=\"kind\">{}</small></p>",
        esc(t.qr_label),
        svg_inline,
        esc(t.account_name),
        esc(&sheet.account),
        esc(t.key),
        esc(&key_upper),
        esc(&key_kind(t, &params)),
    )))
}
