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

/// A terminal's background: what a cell shows where nothing is drawn, and (the other
/// one) the colour it draws text in when no escape sets one.
#[derive(Clone, Copy, Debug)]
enum Background {
    Dark,
    Light,
}

/// The SGR colour a parameter list sets: `Some(true)` light, `Some(false)` dark, `None` the
/// terminal's default. Only what a QR code needs: the 8/16 basic colours and the 256-colour
/// palette's grey ramp ends (16 black, 231 white).
fn sgr(params: &[u32], fg: &mut Option<bool>, bg: &mut Option<bool>) {
    let mut i = 0;
    while i < params.len() {
        match params[i] {
            0 => (*fg, *bg) = (None, None),
            30 => *fg = Some(false),
            31..=36 | 90 => panic!("a coloured QR module: {params:?}"),
            37 | 97 => *fg = Some(true),
            39 => *fg = None,
            40 => *bg = Some(false),
            47 | 107 => *bg = Some(true),
            49 => *bg = None,
            38 | 48 if params.get(i + 1) == Some(&5) => {
                let light = match params.get(i + 2) {
                    Some(16) => false,
                    Some(231) => true,
                    other => panic!("unexpected palette colour {other:?}"),
                };
                if params[i] == 38 {
                    *fg = Some(light);
                } else {
                    *bg = Some(light);
                }
                i += 2;
            }
            other => panic!("unexpected SGR parameter {other}"),
        }
        i += 1;
    }
}

/// The terminal QR (Unicode half blocks, with or without colour escapes) as a binary PGM,
/// 4 px a module, as a terminal with `background` shows it (text in the other shade), in a
/// window of that background.
fn terminal_qr_to_pgm(lines: &[&str], background: Background) -> Vec<u8> {
    let default_bg = matches!(background, Background::Light);
    let mut rows: Vec<Vec<bool>> = Vec::new(); // true = light
    let (mut fg, mut bg) = (None, None);
    for l in lines {
        let mut top = Vec::new();
        let mut bottom = Vec::new();
        let mut chars = l.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '\x1b' {
                assert_eq!(chars.next(), Some('['), "{l:?}");
                let mut p = String::new();
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                    p.push(c);
                }
                let params: Vec<u32> = p.split(';').map(|n| n.parse().unwrap_or(0)).collect();
                sgr(&params, &mut fg, &mut bg);
                continue;
            }
            let ink = fg.unwrap_or(!default_bg);
            let paper = bg.unwrap_or(default_bg);
            let (t, b) = match c {
                '█' => (ink, ink),
                '▀' => (ink, paper),
                '▄' => (paper, ink),
                ' ' => (paper, paper),
                '\r' => continue,
                other => panic!("unexpected character {other:?} in the terminal QR"),
            };
            top.push(t);
            bottom.push(b);
        }
        rows.push(top);
        rows.push(bottom);
    }
    let width = rows.iter().map(Vec::len).max().unwrap();
    let scale = 4;
    let (w, h) = (width * scale + 16 * scale, rows.len() * scale + 16 * scale);
    let mut img = format!("P5\n{w} {h}\n255\n").into_bytes();
    for y in 0..h {
        for x in 0..w {
            let (my, mx) = ((y / scale).checked_sub(8), (x / scale).checked_sub(8));
            let light = match (my, mx) {
                (Some(my), Some(mx)) if my < rows.len() => {
                    rows[my].get(mx).copied().unwrap_or(default_bg)
                }
                _ => default_bg,
            };
            img.push(if light { 255 } else { 0 });
        }
    }
    img
}

/// The lines of a terminal QR in `out`: half blocks and spaces, maybe in colour escapes.
fn qr_lines(out: &str) -> Vec<&str> {
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| {
            let bare: String = strip_escapes(l);
            let bare = bare.trim_end_matches('\r');
            !bare.is_empty() && bare.chars().all(|c| "█▀▄ ".contains(c))
        })
        .collect();
    assert!(lines.len() > 10, "no terminal QR in:\n{out}");
    lines
}

fn strip_escapes(l: &str) -> String {
    let mut out = String::new();
    let mut chars = l.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether zbar reads the terminal QR as a terminal with `background` shows it.
fn terminal_decodes(dir: &std::path::Path, out: &str, background: Background) -> Option<String> {
    require_tool("zbarimg");
    let pgm = dir.join(format!("term-{background:?}.pgm"));
    std::fs::write(&pgm, terminal_qr_to_pgm(&qr_lines(out), background)).unwrap();
    let o = Command::new("zbarimg")
        .args(["-q", "--raw"])
        .arg(&pgm)
        .output()
        .unwrap();
    o.status
        .success()
        .then(|| String::from_utf8(o.stdout).unwrap().trim().to_string())
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

    // Not a terminal (a pipe): plain characters for a dark background, as before.
    assert!(!out.contains('\x1b'), "{out}");
    assert_eq!(
        terminal_decodes(site.path(), &out, Background::Dark).as_deref(),
        Some(want),
        "terminal rendering"
    );
}

/// The terminal QR scans on a dark and on a light background: on a terminal (a pty from
/// `script`) `mfactl enroll` draws it in its own colours, black on white, which a terminal
/// of either theme shows alike; `--qr light` and `--qr dark` draw plain characters for one
/// background each (a file, a pager, NO_COLOR), and each scans on its own background only.
#[test]
fn the_terminal_qr_scans_on_dark_and_light_backgrounds() {
    require_tool("script");
    let site = Site::with_config("[store]\npath = \"m.db\"\n[totp]\nissuer = \"Example\"\n");
    let want = "otpauth://totp/Example:pat?secret=JBSWY3DPEHPK3PXP&issuer=Example&algorithm=SHA1&digits=6&period=30";
    let mfactl = mfa_e2e::bin("mfactl");
    let cmd = format!(
        "'{}' --config '{}' enroll pat --secret JBSWY3DPEHPK3PXP --no-confirm",
        mfactl.display(),
        site.config.display()
    );
    // `script` gives mfactl a pseudo-terminal and copies what it writes there.
    let o = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(
        out.contains("\x1b[38;5;16;48;5;231m"),
        "no colours on a terminal: {out:?}"
    );
    for bg in [Background::Dark, Background::Light] {
        assert_eq!(
            terminal_decodes(site.path(), &out, bg).as_deref(),
            Some(want),
            "on a terminal, {bg:?} background"
        );
    }

    // Plain characters: each style scans on the background it names, and only there (what
    // the default did before on a light terminal).
    let plain = |style: &str, user: &str| {
        let o = site.mfactl(&[
            "enroll",
            user,
            "--secret",
            "JBSWY3DPEHPK3PXP",
            "--no-confirm",
            "--qr",
            style,
        ]);
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    };
    let uri = |user: &str| want.replace(":pat?", &format!(":{user}?"));
    let light = plain("light", "lee");
    assert_eq!(
        terminal_decodes(site.path(), &light, Background::Light),
        Some(uri("lee"))
    );
    assert_eq!(
        terminal_decodes(site.path(), &light, Background::Dark),
        None
    );
    let dark = plain("dark", "dee");
    assert_eq!(
        terminal_decodes(site.path(), &dark, Background::Dark),
        Some(uri("dee"))
    );
    assert_eq!(
        terminal_decodes(site.path(), &dark, Background::Light),
        None
    );
    // `--qr color` forces the colours where no terminal is: both backgrounds again.
    let colour = plain("color", "cole");
    for bg in [Background::Dark, Background::Light] {
        assert_eq!(
            terminal_decodes(site.path(), &colour, bg),
            Some(uri("cole")),
            "{bg:?}"
        );
    }
    // --help says which.
    let help = text(&site.mfactl(&["enroll", "--help"]));
    assert!(
        help.contains("scans on a dark and on a light background alike"),
        "{help}"
    );
}
