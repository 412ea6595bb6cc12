//! `reply` on a `[[policy.rules]]` entry: the attributes an Access-Accept through that rule
//! carries to the gateway (a FortiGate group, a Cisco AV pair, a Palo Alto user group, Class,
//! Filter-Id, Reply-Message). On the rule rather than in a table of its own because the rule
//! already says who (groups), through what (radius_clients) and from where (networks), and
//! an administrator reads one entry to know what a login gets, as in an NPS network policy.
//! The core puts the matched rule's attributes in its decision, on an allow only; the daemon
//! encodes them (`mfa_radius_proto::vsa`).

use serde::Deserialize;

/// The longest value of a standard attribute (RFC 2865 §5: 253 octets).
pub const MAX_STANDARD_VALUE: usize = 253;
/// The longest value of a vendor sub-attribute inside one Vendor-Specific: 253 less the
/// Vendor-Id (4) and the vendor type and length (2).
pub const MAX_VENDOR_VALUE: usize = 247;
/// Most `cisco_avpair` entries on one rule: with the other attributes, a reply stays well
/// inside RADIUS's 4096 octets.
pub const MAX_AVPAIRS: usize = 8;

/// `reply = { ... }` on a rule. Every key is optional; at least one must be set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyAttributes {
    /// Class (25): the ASA reads a group policy from it; echoed in accounting.
    #[serde(default)]
    pub class: Option<String>,
    /// Filter-Id (11): a filter or ACL name the gateway applies.
    #[serde(default)]
    pub filter_id: Option<String>,
    /// Reply-Message (18): text the gateway may show the user.
    #[serde(default)]
    pub reply_message: Option<String>,
    /// Fortinet-Group-Name (vendor 12356, type 1): the FortiGate user group.
    #[serde(default)]
    pub fortinet_group: Option<String>,
    /// Cisco-AVPair (vendor 9, type 1), one attribute per entry: `protocol:attribute=value`.
    #[serde(default)]
    pub cisco_avpair: Vec<String>,
    /// PaloAlto-User-Group (vendor 25461, type 5).
    #[serde(default)]
    pub paloalto_user_group: Option<String>,
}

/// The keys of `reply`, each one attribute of the daemon's dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKey {
    Class,
    FilterId,
    ReplyMessage,
    FortinetGroup,
    CiscoAvpair,
    PaloaltoUserGroup,
}

impl ReplyKey {
    /// The key as written in `mfa.toml`.
    pub fn key(self) -> &'static str {
        match self {
            ReplyKey::Class => "class",
            ReplyKey::FilterId => "filter_id",
            ReplyKey::ReplyMessage => "reply_message",
            ReplyKey::FortinetGroup => "fortinet_group",
            ReplyKey::CiscoAvpair => "cisco_avpair",
            ReplyKey::PaloaltoUserGroup => "paloalto_user_group",
        }
    }

    /// The attribute's dictionary name (FreeRADIUS's, as radclient prints it).
    pub fn attribute(self) -> &'static str {
        match self {
            ReplyKey::Class => "Class",
            ReplyKey::FilterId => "Filter-Id",
            ReplyKey::ReplyMessage => "Reply-Message",
            ReplyKey::FortinetGroup => "Fortinet-Group-Name",
            ReplyKey::CiscoAvpair => "Cisco-AVPair",
            ReplyKey::PaloaltoUserGroup => "PaloAlto-User-Group",
        }
    }

    /// A vendor-specific attribute (only gateways of that vendor read it).
    pub fn is_vendor(self) -> bool {
        matches!(
            self,
            ReplyKey::FortinetGroup | ReplyKey::CiscoAvpair | ReplyKey::PaloaltoUserGroup
        )
    }

    /// The longest value, in octets.
    pub fn max_len(self) -> usize {
        if self.is_vendor() {
            MAX_VENDOR_VALUE
        } else {
            MAX_STANDARD_VALUE
        }
    }
}

impl ReplyAttributes {
    /// Every value with its key, in the order they go on the wire (each `cisco_avpair` entry
    /// its own attribute, in the order written).
    pub fn entries(&self) -> Vec<(ReplyKey, &str)> {
        fn one(k: ReplyKey, v: &Option<String>) -> Option<(ReplyKey, &str)> {
            v.as_deref().map(|v| (k, v))
        }
        let mut out: Vec<(ReplyKey, &str)> = [
            one(ReplyKey::Class, &self.class),
            one(ReplyKey::FilterId, &self.filter_id),
            one(ReplyKey::ReplyMessage, &self.reply_message),
            one(ReplyKey::FortinetGroup, &self.fortinet_group),
        ]
        .into_iter()
        .flatten()
        .collect();
        out.extend(
            self.cisco_avpair
                .iter()
                .map(|p| (ReplyKey::CiscoAvpair, p.as_str())),
        );
        out.extend(one(ReplyKey::PaloaltoUserGroup, &self.paloalto_user_group));
        out
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries().is_empty()
    }
}

/// Why a reply value cannot go on the wire; `None` where it can. Text for a person, so
/// nothing invisible: printable characters only (Reply-Message and the group names may be
/// UTF-8; Class, Filter-Id and Cisco-AVPair are parsed by the gateway, so printable ASCII).
pub fn value_problem(key: ReplyKey, value: &str) -> Option<String> {
    if value.is_empty() {
        return Some("is empty: leave the key out instead".into());
    }
    if value.len() > key.max_len() {
        return Some(format!(
            "is {} octets; {} holds at most {}",
            value.len(),
            key.attribute(),
            key.max_len()
        ));
    }
    let ascii_only = matches!(
        key,
        ReplyKey::Class | ReplyKey::FilterId | ReplyKey::CiscoAvpair
    );
    if let Some(c) = value
        .chars()
        .find(|c| c.is_control() || (ascii_only && !(c.is_ascii_graphic() || *c == ' ')))
    {
        return Some(format!(
            "holds {c:?}; {} takes {} only",
            key.attribute(),
            if ascii_only {
                "printable ASCII"
            } else {
                "printable characters"
            }
        ));
    }
    if key == ReplyKey::CiscoAvpair {
        let ok = value
            .split_once('=')
            .is_some_and(|(name, _)| !name.trim().is_empty());
        if !ok {
            return Some(
                "is not a Cisco AV pair: write protocol:attribute=value (\"shell:priv-lvl=15\", \
                 \"ip:addr-pool=admins\")"
                    .into(),
            );
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_per_attribute() {
        assert_eq!(value_problem(ReplyKey::FortinetGroup, "admins"), None);
        assert_eq!(value_problem(ReplyKey::ReplyMessage, "Welkom, één"), None);
        assert!(value_problem(ReplyKey::Class, "").is_some());
        assert!(value_problem(ReplyKey::Class, &"a".repeat(253)).is_none());
        assert!(value_problem(ReplyKey::Class, &"a".repeat(254)).is_some());
        assert!(value_problem(ReplyKey::FortinetGroup, &"a".repeat(247)).is_none());
        assert!(
            value_problem(ReplyKey::FortinetGroup, &"a".repeat(248))
                .unwrap()
                .contains("at most 247")
        );
        assert!(value_problem(ReplyKey::ReplyMessage, "two\nlines").is_some());
        assert!(value_problem(ReplyKey::FilterId, "acl-é").is_some());
        assert!(value_problem(ReplyKey::CiscoAvpair, "shell:priv-lvl=15").is_none());
        assert!(value_problem(ReplyKey::CiscoAvpair, "priv-lvl").is_some());
        assert!(value_problem(ReplyKey::CiscoAvpair, "=15").is_some());
    }

    #[test]
    fn entries_keep_the_wire_order() {
        let r = ReplyAttributes {
            class: Some("c".into()),
            cisco_avpair: vec!["a=1".into(), "b=2".into()],
            paloalto_user_group: Some("g".into()),
            ..ReplyAttributes::default()
        };
        let keys: Vec<&str> = r.entries().iter().map(|(k, _)| k.key()).collect();
        assert_eq!(
            keys,
            [
                "class",
                "cisco_avpair",
                "cisco_avpair",
                "paloalto_user_group"
            ]
        );
        assert!(ReplyAttributes::default().is_empty());
    }
}
