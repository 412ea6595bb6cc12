//! Answers: what the daemon says to a request that got through admission, and the reply
//! packet that says it. Message-Authenticator comes first in every reply and Proxy-State is
//! copied back (`mfa_radius_proto::Builder`).

use std::time::Duration;

use mfa_config::{ClientKind, ClientSettings, ReplyAttributes, ReplyKey};
use mfa_core::ClientAddr;
use mfa_core::policy::{Decision, Outcome, Reason};
use mfa_radius_proto::pam_host::{self, ChallengePush};
use mfa_radius_proto::vsa::ReplyAttr;
use mfa_radius_proto::{AccountingMa, AttrType, Builder, Code, EncodeError, Packet};

use crate::admission::Port;
use crate::attrs::add_pam_host_reason;
use crate::challenge::WireState;

/// What to answer and what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) code: Code,
    pub(crate) message: Option<String>,
    /// A challenge's State, as text ([`crate::challenge`] says why).
    pub(crate) state: Option<WireState>,
    /// PAM's failure delay, slept asynchronously before a Reject.
    pub(crate) delay: Duration,
    pub(crate) reason: Reason,
    /// The client address the decision used, when not the request's own (a challenge answer
    /// uses the first round's).
    pub(crate) client: Option<ClientAddr>,
    /// What an Access-Challenge to a push-capable PAM host says of push (its attributes);
    /// a gateway reads the Reply-Message instead.
    pub(crate) push: Option<ChallengePush>,
    /// The `[[policy.rules]]` entry the decision followed, for the log line.
    pub(crate) rule: Option<String>,
    /// The matched rule's reply attributes, from the core's decision (an allow's only):
    /// encoded on an Access-Accept to a gateway, nowhere else.
    pub(crate) reply: Option<ReplyAttributes>,
}

impl Answer {
    pub(crate) fn from_decision(d: &Decision) -> Self {
        Answer {
            code: if d.outcome == Outcome::Allow {
                Code::ACCESS_ACCEPT
            } else {
                Code::ACCESS_REJECT
            },
            message: d.message.clone(),
            state: None,
            delay: Duration::ZERO,
            reason: d.reason.clone(),
            client: None,
            push: None,
            rule: d.rule.as_ref().map(ToString::to_string),
            reply: d.reply().cloned(),
        }
    }

    /// A Reject with no message: for refusals before the policy, which tell a probing
    /// client nothing.
    pub(crate) fn reject(reason: Reason) -> Self {
        Answer {
            code: Code::ACCESS_REJECT,
            message: None,
            state: None,
            delay: Duration::ZERO,
            reason,
            client: None,
            push: None,
            rule: None,
            reply: None,
        }
    }

    /// An Access-Challenge carrying a fresh State: the first round of challenge mode.
    pub(crate) fn challenge(state: WireState) -> Self {
        Answer {
            code: Code::ACCESS_CHALLENGE,
            message: Some(mfa_core::login::CODE_CHALLENGE.into()),
            state: Some(state),
            delay: Duration::ZERO,
            reason: Reason::CodeRequired,
            client: None,
            push: None,
            rule: None,
            reply: None,
        }
    }

    /// The reply attributes this answer carries to `client`: an Access-Accept's to a
    /// gateway; none on anything else, nor to PAM hosts.
    pub(crate) fn reply_for(&self, client: &ClientSettings) -> Option<&ReplyAttributes> {
        self.reply
            .as_ref()
            .filter(|_| self.code == Code::ACCESS_ACCEPT && client.kind == ClientKind::Gateway)
    }

    /// The word for the log line and the `outcome` label of the decisions metric.
    pub(crate) fn outcome(&self) -> &'static str {
        match self.code {
            Code::ACCESS_ACCEPT => "accept",
            Code::ACCESS_CHALLENGE => "challenge",
            _ => "reject",
        }
    }

    /// The reply to `request`, signed with the client's `secret`. An error is a bug or a
    /// message too long for one packet: the caller logs it and sends [`bare_reject`].
    /// A PAM host (`client`'s kind) also learns why a Reject was sent
    /// ([`crate::attrs::add_pam_host_reason`]).
    pub(crate) fn encode(
        &self,
        request: &Packet<'_>,
        secret: &[u8],
        client: &ClientSettings,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut b = Builder::reply(self.code, request);
        if let Some(state) = &self.state {
            b.add(AttrType::STATE, state)?;
        }
        if let Some(m) = &self.message {
            b.add_split(AttrType::REPLY_MESSAGE, m.as_bytes())?;
        }
        add_pam_host_reason(&mut b, client, self.code, &self.reason)?;
        if let Some(reply) = self.reply_for(client) {
            add_reply_attributes(&mut b, reply)?;
        }
        if client.kind == ClientKind::PamHosts && self.code == Code::ACCESS_CHALLENGE {
            match self.push {
                None => {}
                Some(ChallengePush::Offered) => pam_host::add_push_offered(&mut b)?,
                Some(ChallengePush::Waiting {
                    number,
                    timeout_secs,
                }) => pam_host::add_push_waiting(&mut b, number, timeout_secs)?,
            }
        }
        b.encode_reply(secret, &request.authenticator)
    }
}

/// The dictionary attribute of each `reply` key (`mfa_radius_proto::vsa`).
fn wire_attr(key: ReplyKey) -> ReplyAttr {
    match key {
        ReplyKey::Class => ReplyAttr::Class,
        ReplyKey::FilterId => ReplyAttr::FilterId,
        ReplyKey::ReplyMessage => ReplyAttr::ReplyMessage,
        ReplyKey::FortinetGroup => ReplyAttr::FortinetGroupName,
        ReplyKey::CiscoAvpair => ReplyAttr::CiscoAvPair,
        ReplyKey::PaloaltoUserGroup => ReplyAttr::PaloAltoUserGroup,
    }
}

/// A rule's reply attributes, in the order the configuration lists them. A value that does
/// not fit (validation refuses one) fails the encoding, and the caller sends a bare reject.
fn add_reply_attributes(b: &mut Builder, reply: &ReplyAttributes) -> Result<(), EncodeError> {
    for (key, value) in reply.entries() {
        b.add_reply_attr(wire_attr(key), value.as_bytes())?;
    }
    Ok(())
}

/// A Reject with nothing but Message-Authenticator and the Proxy-States: where an answer
/// does not encode, this (which always fits) goes instead, failing closed.
pub(crate) fn bare_reject(request: &Packet<'_>, secret: &[u8]) -> Option<Vec<u8>> {
    Builder::reply(Code::ACCESS_REJECT, request)
        .encode_reply(secret, &request.authenticator)
        .ok()
}

/// RFC 5997: a Status-Server is answered with an Access-Accept, on an accounting port with
/// an Accounting-Response (§3), and nothing is looked up. Either is signed as a reply to a
/// request with a random authenticator (§4: the Status-Server's, not the zero vector).
pub(crate) fn status_server_reply(
    request: &Packet<'_>,
    secret: &[u8],
    port: Port,
) -> Result<Vec<u8>, EncodeError> {
    let code = if port == Port::Accounting {
        Code::ACCOUNTING_RESPONSE
    } else {
        Code::ACCESS_ACCEPT
    };
    Builder::reply(code, request).encode_reply(secret, &request.authenticator)
}

/// RFC 2866: the Accounting-Response to a recorded Accounting-Request, Proxy-State copied
/// back. Message-Authenticator (first) where the request had one, in the zero-vector form
/// the request's was in; none where it had none: implementations disagree on the form for
/// a response ([`AccountingMa`]), a gateway that sends none checks none, and an
/// Accounting-Response grants nothing a forgery could use (BlastRADIUS is about
/// Access-Accept).
pub(crate) fn accounting_response(
    request: &Packet<'_>,
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    let mut b = Builder::reply(Code::ACCOUNTING_RESPONSE, request);
    if !request.has_message_authenticator() {
        b.without_message_authenticator();
    }
    b.encode_accounting_response(secret, &request.authenticator, AccountingMa::ZeroVector)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn gateway() -> ClientSettings {
        ClientSettings {
            kind: mfa_config::ClientKind::Gateway,
            mode: mfa_config::RadiusMode::CodeOnly,
            first_factor: mfa_config::FirstFactor::None,
            client_ip_attribute: mfa_config::ClientIpAttribute::CallingStationId,
            require_message_authenticator: true,
        }
    }

    const SECRET: &[u8] = b"the shared secret";

    /// An Access-Request carrying two Proxy-States.
    fn request() -> Vec<u8> {
        let mut b = Builder::request(Code::ACCESS_REQUEST, 42, true);
        b.add(AttrType::USER_NAME, b"alice").unwrap();
        b.add(AttrType::PROXY_STATE, b"one").unwrap();
        b.add(AttrType::PROXY_STATE, b"two").unwrap();
        b.encode_request(SECRET, &[9; 16]).unwrap()
    }

    /// The reply parsed back, after checking it is signed for `req`.
    fn reply_to<'a>(req: &Packet<'_>, raw: &'a [u8]) -> Packet<'a> {
        let p = Packet::parse(raw).unwrap();
        p.verify_reply(SECRET, &req.authenticator).unwrap();
        assert_eq!(p.identifier, 42);
        assert_eq!(
            p.attrs(AttrType::PROXY_STATE).collect::<Vec<_>>(),
            [&b"one"[..], &b"two"[..]]
        );
        assert_eq!(
            p.attributes().first().map(|a| a.typ),
            Some(AttrType::MESSAGE_AUTHENTICATOR)
        );
        p
    }

    #[test]
    fn decisions_become_accept_or_reject_with_their_message() {
        let allow = Answer::from_decision(&Decision::allow(Reason::ValidCode));
        assert_eq!(
            (allow.code, allow.outcome()),
            (Code::ACCESS_ACCEPT, "accept")
        );
        let deny = Answer::from_decision(&Decision::deny(Reason::WrongCode));
        assert_eq!((deny.code, deny.outcome()), (Code::ACCESS_REJECT, "reject"));
        assert_eq!(deny.message.as_deref(), Some("Wrong verification code."));
        // A code still needed is no Accept (challenge mode answers it with a State).
        let need = Answer::from_decision(&Decision::need_code());
        assert_eq!(need.code, Code::ACCESS_REJECT);
        let probe = Answer::reject(Reason::InvalidUserName);
        assert_eq!(probe.message, None);
        let c = Answer::challenge([b'5'; 32]);
        assert_eq!((c.code, c.outcome()), (Code::ACCESS_CHALLENGE, "challenge"));
        assert_eq!(c.reason, Reason::CodeRequired);
    }

    /// A rule's reply attributes go on an Access-Accept to a gateway, in the order
    /// configured, and on nothing else: not a reject, a challenge, nor a PAM host's accept.
    #[test]
    fn reply_attributes_go_on_a_gateways_accept_only() {
        use mfa_core::policy::RuleMatch;
        use mfa_radius_proto::vsa;
        let raw = request();
        let req = Packet::parse(&raw).unwrap();
        let reply = ReplyAttributes {
            class: Some("OU=admins;".into()),
            filter_id: Some("acl-admins".into()),
            reply_message: Some("Welcome, admin".into()),
            fortinet_group: Some("admins".into()),
            cisco_avpair: vec!["shell:priv-lvl=15".into(), "ip:addr-pool=admins".into()],
            paloalto_user_group: Some("gp-admins".into()),
        };
        let mut d = Decision::allow(Reason::RuleNoCode);
        d.rule = Some(RuleMatch {
            index: 0,
            name: None,
            action: mfa_config::RuleAction::NoCode,
            reply: Some(Box::new(reply.clone())),
        });
        let allow = Answer::from_decision(&d);
        let bytes = allow.encode(&req, SECRET, &gateway()).unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.code, Code::ACCESS_ACCEPT);
        assert_eq!(p.attr(AttrType::CLASS), Some(&b"OU=admins;"[..]));
        assert_eq!(p.attr(AttrType::FILTER_ID), Some(&b"acl-admins"[..]));
        assert_eq!(
            p.attr(AttrType::REPLY_MESSAGE),
            Some(&b"Welcome, admin"[..])
        );
        let vsas: Vec<(u32, u8, Vec<u8>)> = p
            .attrs(AttrType::VENDOR_SPECIFIC)
            .map(|v| {
                let d = vsa::decode(v).unwrap();
                assert_eq!(d.subs.len(), 1);
                (d.vendor, d.subs[0].typ, d.subs[0].value.to_vec())
            })
            .collect();
        assert_eq!(
            vsas,
            [
                (12_356, 1, b"admins".to_vec()),
                (9, 1, b"shell:priv-lvl=15".to_vec()),
                (9, 1, b"ip:addr-pool=admins".to_vec()),
                (25_461, 5, b"gp-admins".to_vec()),
            ]
        );
        // A PAM host's accept: none of them.
        let hosts = ClientSettings {
            kind: ClientKind::PamHosts,
            ..gateway()
        };
        let bytes = allow.encode(&req, SECRET, &hosts).unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.attr(AttrType::CLASS), None);
        assert_eq!(p.count(AttrType::VENDOR_SPECIFIC), 0);
        // The same rule's refusal and challenge: none (the core gives none, and the
        // encoder would not put them there either).
        d.outcome = mfa_core::policy::Outcome::Deny;
        d.reason = Reason::Locked { until: 1 };
        let deny = Answer::from_decision(&d);
        assert_eq!(deny.reply, None);
        let mut forced = deny.clone();
        forced.reply = Some(reply.clone());
        for a in [forced, {
            let mut c = Answer::challenge([b'5'; 32]);
            c.reply = Some(reply.clone());
            c
        }] {
            let bytes = a.encode(&req, SECRET, &gateway()).unwrap();
            let p = reply_to(&req, &bytes);
            assert_ne!(p.code, Code::ACCESS_ACCEPT);
            assert_eq!(p.attr(AttrType::CLASS), None);
            assert_eq!(p.attr(AttrType::FILTER_ID), None);
            assert_eq!(p.count(AttrType::VENDOR_SPECIFIC), 0);
        }
    }

    #[test]
    fn replies_carry_state_message_and_proxy_state() {
        let raw = request();
        let req = Packet::parse(&raw).unwrap();

        let bytes = Answer::challenge([b'5'; 32])
            .encode(&req, SECRET, &gateway())
            .unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.code, Code::ACCESS_CHALLENGE);
        assert_eq!(p.attr(AttrType::STATE), Some(&[b'5'; 32][..]));
        assert_eq!(
            p.attr(AttrType::REPLY_MESSAGE),
            Some(mfa_core::login::CODE_CHALLENGE.as_bytes())
        );

        let bytes = Answer::reject(Reason::InvalidUserName)
            .encode(&req, SECRET, &gateway())
            .unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.code, Code::ACCESS_REJECT);
        assert_eq!(p.attr(AttrType::STATE), None);
        assert_eq!(p.attr(AttrType::REPLY_MESSAGE), None);

        // A long message is split over Reply-Messages.
        let mut long = Answer::from_decision(&Decision::allow(Reason::ValidCode));
        long.message = Some("x".repeat(600));
        let bytes = long.encode(&req, SECRET, &gateway()).unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.count(AttrType::REPLY_MESSAGE), 3);

        let bytes = status_server_reply(&req, SECRET, Port::Access).unwrap();
        assert_eq!(reply_to(&req, &bytes).code, Code::ACCESS_ACCEPT);
        let bytes = status_server_reply(&req, SECRET, Port::RadSec).unwrap();
        assert_eq!(reply_to(&req, &bytes).code, Code::ACCESS_ACCEPT);
        let bytes = status_server_reply(&req, SECRET, Port::Accounting).unwrap();
        assert_eq!(reply_to(&req, &bytes).code, Code::ACCOUNTING_RESPONSE);
    }

    #[test]
    fn an_accounting_response_answers_its_request() {
        for with_ma in [true, false] {
            let mut b = Builder::request(Code::ACCOUNTING_REQUEST, 42, with_ma);
            b.add(AttrType::ACCT_STATUS_TYPE, &2u32.to_be_bytes())
                .unwrap();
            b.add(AttrType::PROXY_STATE, b"one").unwrap();
            let raw = b.encode_accounting_request(SECRET).unwrap();
            let req = Packet::parse(&raw).unwrap();
            let bytes = accounting_response(&req, SECRET).unwrap();
            let p = Packet::parse(&bytes).unwrap();
            assert_eq!((p.code, p.identifier), (Code::ACCOUNTING_RESPONSE, 42));
            assert_eq!(p.attr(AttrType::PROXY_STATE), Some(&b"one"[..]));
            if with_ma {
                assert_eq!(
                    p.verify_accounting_response(SECRET, &req.authenticator),
                    Ok(AccountingMa::ZeroVector)
                );
                assert_eq!(
                    p.attributes().first().map(|a| a.typ),
                    Some(AttrType::MESSAGE_AUTHENTICATOR)
                );
            } else {
                assert_eq!(
                    p.verify_accounting_response(SECRET, &req.authenticator),
                    Err(mfa_radius_proto::VerifyError::MissingMessageAuthenticator)
                );
            }
        }
    }

    #[test]
    fn an_answer_too_long_for_a_packet_is_an_error_and_a_bare_reject_still_fits() {
        let raw = request();
        let req = Packet::parse(&raw).unwrap();
        let mut huge = Answer::from_decision(&Decision::allow(Reason::ValidCode));
        huge.message = Some("x".repeat(5000));
        assert!(matches!(
            huge.encode(&req, SECRET, &gateway()),
            Err(EncodeError::PacketTooLong { .. })
        ));
        let bytes = bare_reject(&req, SECRET).unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.code, Code::ACCESS_REJECT);
        assert_eq!(p.attr(AttrType::REPLY_MESSAGE), None);
    }
}
