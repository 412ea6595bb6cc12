//! The QR codes `mfactl enroll` shows decode, with an independent decoder (zbar), to exactly
//! the otpauth URI that authenticator apps read: the PNG file, the SVG file (rendered by
//! librsvg), and the terminal rendering rebuilt pixel by pixel from its half-block characters.

use std::process::Command;

use mfa_e2e::{Site, require_tool, text};

fn zbar(path: &std::path::Path) -> String {
    require_tool("zbarimg");
    let o = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "zbarimg could not decode {}: {}",
        path.display(),
        text(&o)
    );
    String::from_utf8(o.stdout).unwrap().trim().to_string()
}

/// Terminal QR (Unicode half blocks, light modules drawn) as a binary PGM, 4 px a module.
fn terminal_qr_to_pgm(lines: &[&str]) -> Vec<u8> {
    let width = lines.iter().map(|l| l.chars().count()).max().unwrap();
    let mut rows: Vec<Vec<bool>> = Vec::new(); // true = light
    for l in lines {
        let mut top = vec![false; width];
        let mut bottom = vec![false; width];
        for (i, c) in l.chars().enumerate() {
            let (t, b) = match c {
                '█' => (true, true),
                '▀' => (true, false),
                '▄' => (false, true),
                ' ' => (false, false),
                other => panic!("unexpected character {other:?} in the terminal QR"),
            };
            top[i] = t;
            bottom[i] = b;
        }
        rows.push(top);
        rows.push(bottom);
    }
    let scale = 4;
    let (w, h) = (width * scale + 16 * scale, rows.len() * scale + 16 * scale);
    let mut img = format!("P5\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            let (my, mx) = ((y / scale).checked_sub(8), (x / scale).checked_sub(8));
            let light = match (my, mx) {
                (Some(my), Some(mx)) if my < rows.len() && mx < width => rows[my][mx],
                _ => true,
            };
            img.push(if light { 255 } else { 0 });
        }
    }
    img
}

#[test]
fn qr_codes_decode_to_the_otpauth_uri() {
    // A directory with names beyond ASCII ([users] unicode = "allow"; by default a name is
    // ASCII: see [users] in docs/CONFIG.md).
    let site = Site::with_config(
        "[store]\npath = \"m.db\"\n[totp]\nissuer = \"Example Corp\"\n[users]\nunicode = \"allow\"\n",
    );
    let png = site.path().join("q.png");
    let svg = site.path().join("q.svg");
    let o = site.mfactl(&[
        "enroll",
        // Not ASCII, so the account name in the URI is percent-encoded (a canonical name has no
        // `@` any more: see [users] in docs/CONFIG.md).
        "jörg",
        "--secret",
        "JBSWY3DPEHPK3PXP",
        "--no-confirm",
        "--qr-png",
        png.to_str().unwrap(),
        "--qr-svg",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let want = "otpauth://totp/Example%20Corp:j%C3%B6rg?secret=JBSWY3DPEHPK3PXP&issuer=Example%20Corp&algorithm=SHA1&digits=6&period=30";
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains(&format!("URI:      {want}")), "{out}");
    assert!(out.contains("Key:      JBSW Y3DP EHPK 3PXP"), "{out}");

    assert_eq!(zbar(&png), want, "PNG");

    require_tool("rsvg-convert");
    let svg_png = site.path().join("svg.png");
    let r = Command::new("rsvg-convert")
        .arg(&svg)
        .arg("-o")
        .arg(&svg_png)
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r));
    assert_eq!(zbar(&svg_png), want, "SVG");

    let qr_lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.is_empty() && l.chars().all(|c| "█▀▄ ".contains(c)))
        .collect();
    assert!(qr_lines.len() > 10, "no terminal QR in:\n{out}");
    let pgm = site.path().join("term.pgm");
    std::fs::write(&pgm, terminal_qr_to_pgm(&qr_lines)).unwrap();
    assert_eq!(zbar(&pgm), want, "terminal rendering");
}
