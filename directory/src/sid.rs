//! Windows security identifiers: AD's binary `objectSid` as text, and the SID of a
//! user's primary group (the domain's SID and `primaryGroupID`, the group's RID).

/// `S-1-5-21-…` from the binary form: revision, count of sub-authorities, a 48-bit
/// big-endian authority, then the sub-authorities, 32-bit little-endian each.
pub(crate) fn to_text(b: &[u8]) -> Option<String> {
    let (&rev, rest) = b.split_first()?;
    let (&n, rest) = rest.split_first()?;
    if rest.len() != 6 + 4 * usize::from(n) {
        return None;
    }
    let (auth, subs) = rest.split_at(6);
    let authority = auth.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x));
    let mut s = format!("S-{rev}-{authority}");
    for c in subs.chunks_exact(4) {
        let v = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        s.push_str(&format!("-{v}"));
    }
    Some(s)
}

/// The SID of the group whose RID is `rid` in the domain of the user whose SID is `user`.
pub(crate) fn primary_group(user: &str, rid: u32) -> Option<String> {
    let (domain, _) = user.rsplit_once('-')?;
    Some(format!("{domain}-{rid}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sids() {
        let b = [
            1u8, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0x75, 0x3a, 0x1f, 0x8a, 0x7e, 0x4b, 0x2e, 0x7b,
            0xea, 0x7b, 0xc6, 0x43, 0x54, 0x04, 0, 0,
        ];
        let s = super::to_text(&b).unwrap();
        assert_eq!(s, "S-1-5-21-2317302389-2066631550-1137081322-1108");
        assert_eq!(
            super::primary_group(&s, 513).unwrap(),
            "S-1-5-21-2317302389-2066631550-1137081322-513"
        );
        assert!(super::to_text(&b[..10]).is_none());
    }
}
