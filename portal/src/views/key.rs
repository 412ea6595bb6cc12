//! A new key as every page shows it (enrolment, Replace key).

use mfa_core::enrolment::{Sheet, qr_svg};
use mfa_core::{TotpSecret, UserName};
use zeroize::Zeroizing;

use crate::app::Portal;
use crate::page::esc;
use crate::text::T;

/// A key shown and not yet confirmed: whose, the key, and the CSRF token of the form that
/// confirms it.
pub struct NewKey<'a> {
    pub user: &'a UserName,
    pub secret: &'a TotpSecret,
    pub csrf: &'a str,
}

/// The QR code (inline SVG), the account name, the key in groups of four in upper case,
/// its kind.
pub fn block(
    t: &T,
    p: &Portal,
    user: &UserName,
    secret: &TotpSecret,
) -> Result<Zeroizing<String>, String> {
    let cfg = p.core.config();
    let params = cfg.totp.params();
    let sheet = Sheet::new(&cfg.totp.issuer, user, secret, &params);
    let svg = qr_svg(&sheet.uri)?;
    // The SVG document without its XML prolog, inline in the page.
    let svg_inline = svg
        .find("<svg")
        .and_then(|i| svg.get(i..))
        .ok_or("QR code without <svg>")?;
    let key_upper = Zeroizing::new(sheet.key.to_ascii_uppercase());
    Ok(Zeroizing::new(format!(
        "<div class=\"qr\" id=\"qr\">{}</div><p>{}: <strong id=\"account\">{}</strong><br>{}: <span class=\"key\" id=\"key\">{}</span><br><small>{}</small></p>",
        svg_inline,
        esc(t.account_name),
        esc(&sheet.account),
        esc(t.key),
        esc(&key_upper),
        esc(&sheet.kind),
    )))
}
