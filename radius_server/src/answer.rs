//! Answers: what the daemon says to a request that got through admission, and the reply
//! packet that says it. Message-Authenticator comes first in every reply and Proxy-State is
//! copied back (`mfa_radius_proto::Builder`).

use std::time::Duration;

use mfa_config::{ClientKind, ClientSettings};
use mfa_core::ClientAddr;
use mfa_core::policy::{Decision, Outcome, Reason};
use mfa_radius_proto::pam_host::{self, ChallengePush};
use mfa_radius_proto::{AttrType, Builder, Code, EncodeError, Packet};

use crate::attrs::add_pam_host_reason;

/// What to answer and what to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) code: Code,
    pub(crate) message: Option<String>,
    pub(crate) state: Option<[u8; 16]>,
    /// PAM's failure delay, slept asynchronously before a Reject.
    pub(crate) delay: Duration,
    pub(crate) reason: Reason,
    /// The client address the decision used, when not the request's own (a challenge answer
    /// uses the first round's).
    pub(crate) client: Option<ClientAddr>,
    /// What an Access-Challenge to a push-capable PAM host says of push (its attributes);
    /// a gateway reads the Reply-Message instead.
    pub(crate) push: Option<ChallengePush>,
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
        }
    }

    /// An Access-Challenge carrying a fresh State: the first round of challenge mode.
    pub(crate) fn challenge(state: [u8; 16]) -> Self {
        Answer {
            code: Code::ACCESS_CHALLENGE,
            message: Some(mfa_core::login::CODE_CHALLENGE.into()),
            state: Some(state),
            delay: Duration::ZERO,
            reason: Reason::CodeRequired,
            client: None,
            push: None,
        }
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

/// A Reject with nothing but Message-Authenticator and the Proxy-States: where an answer
/// does not encode, this (which always fits) goes instead, failing closed.
pub(crate) fn bare_reject(request: &Packet<'_>, secret: &[u8]) -> Option<Vec<u8>> {
    Builder::reply(Code::ACCESS_REJECT, request)
        .encode_reply(secret, &request.authenticator)
        .ok()
}

/// RFC 5997: a Status-Server is answered with an Access-Accept, and nothing is looked up.
pub(crate) fn status_server_reply(
    request: &Packet<'_>,
    secret: &[u8],
) -> Result<Vec<u8>, EncodeError> {
    Builder::reply(Code::ACCESS_ACCEPT, request).encode_reply(secret, &request.authenticator)
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
        let c = Answer::challenge([5; 16]);
        assert_eq!((c.code, c.outcome()), (Code::ACCESS_CHALLENGE, "challenge"));
        assert_eq!(c.reason, Reason::CodeRequired);
    }

    #[test]
    fn replies_carry_state_message_and_proxy_state() {
        let raw = request();
        let req = Packet::parse(&raw).unwrap();

        let bytes = Answer::challenge([5; 16])
            .encode(&req, SECRET, &gateway())
            .unwrap();
        let p = reply_to(&req, &bytes);
        assert_eq!(p.code, Code::ACCESS_CHALLENGE);
        assert_eq!(p.attr(AttrType::STATE), Some(&[5u8; 16][..]));
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

        let bytes = status_server_reply(&req, SECRET).unwrap();
        assert_eq!(reply_to(&req, &bytes).code, Code::ACCESS_ACCEPT);
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
