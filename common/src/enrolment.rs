//! What a user sees at enrolment: the `otpauth://` URI, its QR code (terminal, SVG, PNG) and
//! the key for typing by hand. The only place a secret is ever shown.

use std::fmt::Write as _;

use qrcode::render::{svg, unicode};
use qrcode::{Color, EcLevel, QrCode};
use zeroize::Zeroizing;

use crate::secret::TotpSecret;
use crate::totp::TotpParams;

/// Percent-encodes everything but RFC 3986 unreserved characters. Written here because the
/// label needs only this one function.
fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The Key URI Format that Google Authenticator, Microsoft Authenticator and Authy read:
/// `otpauth://totp/Issuer:account?secret=...&issuer=Issuer&algorithm=SHA1&digits=6&period=30`.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &TotpSecret,
    p: &TotpParams,
) -> Zeroizing<String> {
    Zeroizing::new(format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        pct(issuer),
        pct(account),
        secret.to_base32().as_str(),
        pct(issuer),
        p.algorithm.as_str(),
        p.digits,
        p.period
    ))
}

fn code(uri: &str) -> Result<QrCode, String> {
    QrCode::with_error_correction_level(uri.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot make a QR code: {e}"))
}

/// The QR code in Unicode half blocks, light modules drawn so it scans from a dark terminal.
pub fn qr_terminal(uri: &str) -> Result<Zeroizing<String>, String> {
    let c = code(uri)?;
    Ok(Zeroizing::new(
        c.render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    ))
}

/// The QR code as an SVG document.
pub fn qr_svg(uri: &str) -> Result<Zeroizing<String>, String> {
    let c = code(uri)?;
    Ok(Zeroizing::new(
        c.render::<svg::Color<'_>>()
            .min_dimensions(256, 256)
            .quiet_zone(true)
            .build(),
    ))
}

/// The QR code as a PNG (8-bit grayscale, 8 pixels a module, 4-module quiet zone). Drawn
/// here with the small `png` crate rather than qrcode's `image` feature, which would pull a
/// whole imaging library into a PAM module.
pub fn qr_png(uri: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    let c = code(uri)?;
    let (w, scale, quiet) = (c.width(), 8usize, 4usize);
    let colors = c.to_colors();
    let side = (w + 2 * quiet) * scale;
    let mut pixels = Zeroizing::new(vec![255u8; side * side]);
    for y in 0..w {
        for x in 0..w {
            if colors.get(y * w + x) == Some(&Color::Dark) {
                for dy in 0..scale {
                    let row = ((y + quiet) * scale + dy) * side;
                    let start = row + (x + quiet) * scale;
                    if let Some(px) = pixels.get_mut(start..start + scale) {
                        px.fill(0);
                    }
                }
            }
        }
    }
    let mut out = Zeroizing::new(Vec::new());
    {
        let side32 = u32::try_from(side).map_err(|_| "QR code too large".to_string())?;
        let mut enc = png::Encoder::new(&mut *out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        wr.write_image_data(&pixels).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfa_config::Algorithm;

    #[test]
    fn uri_has_every_parameter() {
        let s = TotpSecret::from_base32("JBSWY3DPEHPK3PXP").unwrap();
        let p = TotpParams {
            algorithm: Algorithm::SHA1,
            digits: 6,
            period: 30,
        };
        let u = otpauth_uri("Example Corp", "alice@example.com", &s, &p);
        assert_eq!(
            u.as_str(),
            "otpauth://totp/Example%20Corp:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        assert!(qr_terminal(&u).unwrap().contains('█'));
        assert!(qr_svg(&u).unwrap().starts_with("<?xml"));
        assert_eq!(&qr_png(&u).unwrap()[1..4], b"PNG");
    }
}
