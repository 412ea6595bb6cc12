//! Module arguments from the pam.d line.

use std::fmt;
use std::path::PathBuf;

/// Where the code comes from when a previous module in the stack already collected a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstPass {
    /// Always prompt.
    Prompt,
    /// Use a code-shaped PAM_AUTHTOK; prompt when there is none or it is refused.
    Try,
    /// Use PAM_AUTHTOK only; never prompt.
    Use,
}

/// When the module answers PAM_IGNORE ("I decided nothing") instead of PAM_SUCCESS, for
/// stacks that let another module decide in that case (`ignore=`). Never without the
/// argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreWhen {
    /// `ignore=unenrolled`: the user has no authenticator yet and is let in without a code
    /// only because of go-live or grace (reasons `before_go_live`, `grace_period`).
    Unenrolled,
    /// `ignore=no_code`: any decision that lets the user in without a code: trusted network,
    /// trusted local login, exempt user or group, go-live, grace.
    NoCode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub config: PathBuf,
    pub debug: bool,
    pub first_pass: FirstPass,
    pub ignore: Option<IgnoreWhen>,
}

/// A pam.d line we refuse to run with. Refused rather than ignored: a misspelt `config=`
/// would silently fall back to another policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgError(pub String);

impl fmt::Display for ArgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Args {
    pub fn parse<'a>(args: impl IntoIterator<Item = &'a str>) -> Result<Self, ArgError> {
        let mut out = Args {
            config: PathBuf::from(mfa_config::DEFAULT_PATH),
            debug: false,
            first_pass: FirstPass::Prompt,
            ignore: None,
        };
        let mut config_seen = false;
        for a in args {
            match a {
                "debug" => out.debug = true,
                // use_first_pass is the stricter of the two, so it wins when both are given.
                "use_first_pass" => out.first_pass = FirstPass::Use,
                "try_first_pass" => {
                    if out.first_pass != FirstPass::Use {
                        out.first_pass = FirstPass::Try;
                    }
                }
                _ if a.starts_with("ignore=") => {
                    if out.ignore.is_some() {
                        return Err(ArgError("ignore= is given more than once".into()));
                    }
                    out.ignore = Some(match &a["ignore=".len()..] {
                        "unenrolled" => IgnoreWhen::Unenrolled,
                        "no_code" => IgnoreWhen::NoCode,
                        other => {
                            return Err(ArgError(format!(
                                "ignore={other}: unknown condition (known: ignore=unenrolled, \
                                 ignore=no_code)"
                            )));
                        }
                    });
                }
                _ => match a.strip_prefix("config=") {
                    Some("") => return Err(ArgError("config= needs a file name".into())),
                    Some(p) if !p.starts_with('/') => {
                        return Err(ArgError(format!(
                            "config={p}: the path must be absolute (the working directory of \
                             sshd or sudo is not ours to rely on)"
                        )));
                    }
                    Some(_) if config_seen => {
                        return Err(ArgError("config= is given more than once".into()));
                    }
                    Some(p) => {
                        out.config = PathBuf::from(p);
                        config_seen = true;
                    }
                    None => {
                        return Err(ArgError(format!(
                            "unknown argument {a:?} (known: config=PATH, debug, try_first_pass, \
                             use_first_pass, ignore=unenrolled|no_code)"
                        )));
                    }
                },
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let a = Args::parse([]).unwrap();
        assert_eq!(a.config, PathBuf::from("/etc/mfa/mfa.toml"));
        assert!(!a.debug);
        assert_eq!(a.first_pass, FirstPass::Prompt);
        assert_eq!(a.ignore, None);
    }

    #[test]
    fn ignore_conditions() {
        let a = Args::parse(["ignore=unenrolled"]).unwrap();
        assert_eq!(a.ignore, Some(IgnoreWhen::Unenrolled));
        let a = Args::parse(["ignore=no_code"]).unwrap();
        assert_eq!(a.ignore, Some(IgnoreWhen::NoCode));
        for bad in [
            &["ignore="][..],
            &["ignore=always"],
            &["ignore=unenrolled", "ignore=no_code"],
            &["ignore"],
        ] {
            assert!(Args::parse(bad.iter().copied()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn all_known() {
        let a = Args::parse(["config=/etc/mfa/sudo.toml", "debug", "try_first_pass"]).unwrap();
        assert_eq!(a.config, PathBuf::from("/etc/mfa/sudo.toml"));
        assert!(a.debug);
        assert_eq!(a.first_pass, FirstPass::Try);
        for order in [
            ["try_first_pass", "use_first_pass"],
            ["use_first_pass", "try_first_pass"],
        ] {
            assert_eq!(Args::parse(order).unwrap().first_pass, FirstPass::Use);
        }
    }

    #[test]
    fn bad_lines_are_refused() {
        for bad in [
            &["conifg=/etc/mfa/mfa.toml"][..],
            &["nullok"],
            &["config="],
            &["config=mfa.toml"],
            &["config=/a", "config=/b"],
            &["DEBUG"],
        ] {
            assert!(Args::parse(bad.iter().copied()).is_err(), "{bad:?}");
        }
    }
}
