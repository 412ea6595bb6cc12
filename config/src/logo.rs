//! `[portal] logo`: the organisation's logo, which the portal serves itself at `/logo` (so
//! the pages name no outside resource). Read once, at the portal's start and by
//! `mfactl config check`, and refused unless it is a small regular file of a known image
//! type: the file is served to every visitor of the sign-in page, so a wrong path, a huge
//! file or an HTML page named `logo.png` must stop the start, not reach the browsers.

use std::io::Read;
use std::path::Path;

/// The largest logo accepted: a header image, not a photograph.
pub const LOGO_MAX_BYTES: u64 = 256 * 1024;

/// A logo read and checked: its bytes and the `Content-Type` they are served with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logo {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
}

/// Reads the logo at `path`: a regular file, at most [`LOGO_MAX_BYTES`], whose first bytes
/// say PNG, JPEG, GIF or WebP, or an SVG document without scripts, event handlers or links
/// to anything but itself. The error says what is wrong with the file, naming it.
pub fn read_logo(path: &Path) -> Result<Logo, String> {
    let shown = path.display();
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{shown} is not a regular file"));
    }
    if meta.len() > LOGO_MAX_BYTES {
        return Err(format!(
            "{shown} is {} bytes; a logo may have at most {LOGO_MAX_BYTES} (256 KiB)",
            meta.len()
        ));
    }
    let mut bytes = Vec::new();
    f.take(LOGO_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    if bytes.len() as u64 > LOGO_MAX_BYTES {
        return Err(format!(
            "{shown} grew past {LOGO_MAX_BYTES} bytes while it was read"
        ));
    }
    let content_type = image_type(&bytes).map_err(|why| format!("{shown}: {why}"))?;
    Ok(Logo {
        bytes,
        content_type,
    })
}

/// The image type of `b` from its first bytes (never from the file's name).
fn image_type(b: &[u8]) -> Result<&'static str, String> {
    if b.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok("image/png");
    }
    if b.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok("image/jpeg");
    }
    if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
        return Ok("image/gif");
    }
    if b.len() >= 12 && b.starts_with(b"RIFF") && b.get(8..12) == Some(b"WEBP") {
        return Ok("image/webp");
    }
    let not_an_image = || {
        "is not a PNG, JPEG, GIF, WebP or SVG image (the type is read from the file's first bytes, not its name)".to_string()
    };
    let text = std::str::from_utf8(b).map_err(|_| not_an_image())?;
    let lower = text.trim_start_matches('\u{feff}').to_ascii_lowercase();
    let head = lower.trim_start();
    if !(head.starts_with("<svg") || head.starts_with("<?xml") || head.starts_with("<!--"))
        || !lower.contains("<svg")
    {
        return Err(not_an_image());
    }
    for bad in [
        "<script",
        "<foreignobject",
        "javascript:",
        "<!entity",
        "<iframe",
    ] {
        if lower.contains(bad) {
            return Err(format!(
                "an SVG logo must not hold {bad}: it is served to every visitor"
            ));
        }
    }
    if has_event_handler(&lower) {
        return Err("an SVG logo must not hold event handlers (onload=, onclick=...)".into());
    }
    if links_elsewhere(&lower) {
        return Err(
            "an SVG logo must not link to other files (href= other than #fragment): the portal names no outside resource"
                .into(),
        );
    }
    Ok("image/svg+xml")
}

/// An attribute `on...=` (an SVG event handler), after a space or a new line.
fn has_event_handler(svg: &str) -> bool {
    svg.match_indices("on").any(|(i, _)| {
        let before = svg[..i].chars().next_back();
        let rest = &svg[i + 2..];
        let name_len = rest.chars().take_while(char::is_ascii_alphabetic).count();
        before.is_some_and(char::is_whitespace)
            && name_len > 0
            && rest[name_len..].trim_start().starts_with('=')
    })
}

/// An `href` (or `xlink:href`) whose value is not a fragment of the document itself.
fn links_elsewhere(svg: &str) -> bool {
    svg.match_indices("href").any(|(i, _)| {
        let rest = svg[i + 4..].trim_start();
        let Some(value) = rest.strip_prefix('=') else {
            return false;
        };
        let value = value.trim_start().trim_start_matches(['"', '\'']);
        !value.starts_with('#')
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn a_logo_is_a_small_image_of_a_known_type() {
        let d = tempfile::tempdir().unwrap();
        let png = write(d.path(), "a.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
        assert_eq!(read_logo(&png).unwrap().content_type, "image/png");
        let svg = write(
            d.path(),
            "a.svg",
            b"<?xml version=\"1.0\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 10 10\"><defs><g id=\"a\"/></defs><use href=\"#a\"/><rect width=\"10\" height=\"10\" fill=\"#1e5aa8\"/></svg>",
        );
        assert_eq!(read_logo(&svg).unwrap().content_type, "image/svg+xml");
        // The type comes from the bytes: an HTML page named .png is refused.
        let html = write(d.path(), "b.png", b"<html><body>hi</body></html>");
        assert!(read_logo(&html).unwrap_err().contains("is not a PNG"));
        // Too large.
        let big = write(
            d.path(),
            "big.png",
            &[b"\x89PNG\r\n\x1a\n".as_slice(), &vec![0u8; 300 * 1024]].concat(),
        );
        assert!(read_logo(&big).unwrap_err().contains("at most 262144"));
        // Missing, a directory.
        assert!(
            read_logo(&d.path().join("none.png"))
                .unwrap_err()
                .contains("cannot read")
        );
        assert!(
            read_logo(d.path())
                .unwrap_err()
                .contains("not a regular file")
        );
        // SVGs that could do or load something.
        for (name, body) in [
            ("s1.svg", "<svg><script>alert(1)</script></svg>"),
            ("s2.svg", "<svg onload=\"alert(1)\"></svg>"),
            (
                "s3.svg",
                "<svg><image href=\"https://example.com/x.png\"/></svg>",
            ),
            (
                "s4.svg",
                "<svg><a xlink:href='javascript:alert(1)'>x</a></svg>",
            ),
            (
                "s5.svg",
                "<svg><foreignObject><p>x</p></foreignObject></svg>",
            ),
        ] {
            let p = write(d.path(), name, body.as_bytes());
            assert!(read_logo(&p).is_err(), "{name}");
        }
    }
}
