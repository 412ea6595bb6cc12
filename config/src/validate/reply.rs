//! `reply` on `[[policy.rules]]` and `preset` / `gateway_timeout` on `[[radius.clients]]`.

use super::{Problems, k};
use crate::reply::{MAX_AVPAIRS, ReplyKey, value_problem};
use crate::{ClientKind, Config, RuleAction, Seg};

/// Each rule's `reply`: something set, nothing on a rule that only refuses, every value fit
/// for its attribute.
pub(super) fn rules(cfg: &Config, v: &mut Problems<'_>) {
    for (i, r) in cfg.policy.rules.iter().enumerate() {
        let Some(reply) = &r.reply else {
            continue;
        };
        let at = |rest: &[Seg]| {
            let mut p = vec![k("policy"), k("rules"), Seg::Index(i), k("reply")];
            p.extend_from_slice(rest);
            p
        };
        if r.action == RuleAction::Deny {
            v.bad(
                at(&[]),
                "action = \"deny\" refuses every login it matches, and a refusal carries no \
                 reply attributes: remove reply"
                    .into(),
            );
        }
        if reply.is_empty() {
            v.bad(
                at(&[]),
                "sets no attribute: give class, filter_id, reply_message, fortinet_group, \
                 cisco_avpair or paloalto_user_group, or remove reply"
                    .into(),
            );
        }
        if reply.cisco_avpair.len() > MAX_AVPAIRS {
            v.bad(
                at(&[k("cisco_avpair")]),
                format!(
                    "{} entries; at most {MAX_AVPAIRS} fit in one reply",
                    reply.cisco_avpair.len()
                ),
            );
        }
        let mut avpair = 0;
        for (key, value) in reply.entries() {
            let path = if key == ReplyKey::CiscoAvpair {
                avpair += 1;
                at(&[k(key.key()), Seg::Index(avpair - 1)])
            } else {
                at(&[k(key.key())])
            };
            if let Some(why) = value_problem(key, value) {
                v.bad(path, format!("{value:?} {why}"));
            }
        }
    }
}

/// A preset names a gateway product, so it cannot be PAM hosts; a gateway's timeout is a
/// time a person waits.
pub(super) fn clients(cfg: &Config, v: &mut Problems<'_>) {
    for (i, c) in cfg.radius.clients.iter().enumerate() {
        let at = |key: &str| vec![k("radius"), k("clients"), Seg::Index(i), k(key)];
        if let Some(p) = c.preset
            && c.kind == Some(ClientKind::PamHosts)
        {
            v.bad(
                at("preset"),
                format!(
                    "preset = \"{p}\" is a gateway product, and kind = \"pam-hosts\" is Linux \
                     hosts in remote mode: remove one"
                ),
            );
        }
        if let Some(t) = c.gateway_timeout
            && !(1..=600).contains(&t.as_secs())
        {
            v.bad(
                at("gateway_timeout"),
                "must be between 1s and 10m (the time the gateway waits for one answer)".into(),
            );
        }
    }
}
