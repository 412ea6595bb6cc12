//! The roll-out report: every user's status through the policy ([`rollout_status`]), the
//! invites, and the totals, streamed from the store. `mfactl report` prints it; the
//! administrator's console shows its totals, a page of its rows and its CSV. One reading of
//! the rows for both, so the console's counts are the command's.

use std::collections::BTreeMap;

use mfa_config::Config;
use mfa_model::{Invite, RolloutStatus, UserName, UserRecord};

use crate::core::Core;
use crate::error::CoreError;
use crate::policy::rollout_status;
use crate::store::{StoreError, USER_PAGE_MAX, UserPage};

/// Where a user's enrolment links stand: the open invite that lasts longest, else the last
/// one that expired unused; a used invite is history and shows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteCell {
    Open { expires: i64 },
    Expired { expired: i64 },
}

impl InviteCell {
    pub fn of(invites: &[Invite], t: i64) -> Option<Self> {
        let unused = invites.iter().filter(|i| i.used.is_none());
        let open = unused
            .clone()
            .filter(|i| i.expires > t)
            .map(|i| i.expires)
            .max();
        match open {
            Some(expires) => Some(InviteCell::Open { expires }),
            None => unused
                .map(|i| i.expires)
                .max()
                .map(|expired| InviteCell::Expired { expired }),
        }
    }
}

/// One row: a stored user, or a user invited but never seen by a login (`status` `None`,
/// a record made up for the row).
#[derive(Debug, Clone)]
pub struct Row {
    pub user: UserRecord,
    pub status: Option<RolloutStatus>,
    /// The grace deadline of a user who is not enrolled.
    pub deadline: Option<i64>,
    pub invite: Option<InviteCell>,
}

impl Row {
    /// The status column: the policy's word, or `invited` for a user no login has seen.
    pub fn status_text(&self) -> String {
        self.status
            .map_or_else(|| "invited".to_string(), |s| s.to_string())
    }

    /// Which of the console's filters the row falls under.
    pub fn kind(&self, t: i64) -> RowKind {
        match self.status {
            None => RowKind::NeverSeen,
            Some(RolloutStatus::Exempt) => RowKind::Exempt,
            _ if self.user.locked(t).is_some() => RowKind::Locked,
            Some(RolloutStatus::Overdue) => RowKind::Overdue,
            Some(s) if s.in_grace() => RowKind::Grace,
            _ if self.user.enrolled() => RowKind::Enrolled,
            _ => RowKind::Other,
        }
    }
}

/// The classes of rows the console filters on (the totals' categories).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    Enrolled,
    Grace,
    Overdue,
    Locked,
    Exempt,
    /// Invited, never seen by a login (no record).
    NeverSeen,
    /// Temporary access, not enrolled before go-live... what no other class takes.
    Other,
}

/// The roll-out totals, counted while the rows stream past.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub users: usize,
    pub enrolled: usize,
    pub grace: usize,
    pub overdue: usize,
    pub locked: usize,
    pub exempt: usize,
    /// Enrolled users by the day (midnight UTC, in seconds) their key was first set.
    pub enrolled_by_day: BTreeMap<i64, usize>,
}

impl Totals {
    /// The share of users enrolled, in per cent with one decimal.
    pub fn enrolled_percent(&self) -> f64 {
        if self.users == 0 {
            0.0
        } else {
            (self.enrolled as f64 * 1000.0 / self.users as f64).round() / 10.0
        }
    }
}

/// Which rows a page of the console's table holds.
#[derive(Debug, Clone, Default)]
pub struct RowQuery {
    /// Names starting with this (canonical; empty: all).
    pub prefix: String,
    /// After this name (the last of the page before).
    pub after: Option<String>,
    /// Only rows of this kind.
    pub kind: Option<RowKind>,
    pub limit: usize,
}

/// One page of rows, and where the next begins (`None`: this was the last).
#[derive(Debug, Clone)]
pub struct RowPage {
    pub rows: Vec<Row>,
    pub next: Option<String>,
}

/// Records a filtered page reads at most before it stops and offers to go on from there:
/// a filter few rows match cannot make one request read a million records.
pub const SCAN_PER_PAGE: usize = 20_000;

/// The report as of `now`, under a configuration (the core's, or the file as it is now:
/// the console's edits take effect there before the portal restarts).
pub struct Report<'a> {
    core: &'a Core,
    cfg: &'a Config,
    now: i64,
    by_user: BTreeMap<String, Vec<Invite>>,
    /// Users invited and never seen by a login: no record, listed with status `invited`.
    invited_only: Vec<UserName>,
    open_invites: usize,
    expired_invites: usize,
    first_invite: Option<i64>,
}

impl<'a> Report<'a> {
    /// Reads the invites; the rows are read by [`Report::each_row`] and [`Report::page`].
    pub fn new(core: &'a Core, cfg: &'a Config, now: i64) -> Result<Self, CoreError> {
        let invites = core.store.invites()?;
        let open_invites = invites
            .iter()
            .filter(|i| i.used.is_none() && i.expires > now)
            .count();
        let expired_invites = invites
            .iter()
            .filter(|i| i.used.is_none() && i.expires <= now)
            .count();
        let first_invite = invites.iter().map(|i| i.created).min();
        let mut by_user: BTreeMap<String, Vec<Invite>> = BTreeMap::new();
        for i in invites {
            by_user.entry(i.user.clone()).or_default().push(i);
        }
        let mut invited_only = Vec::new();
        for name in by_user.keys() {
            if let Ok(n) = UserName::parse(name)
                && core.store.user(&n)?.is_none()
            {
                invited_only.push(n);
            }
        }
        Ok(Self {
            core,
            cfg,
            now,
            by_user,
            invited_only,
            open_invites,
            expired_invites,
            first_invite,
        })
    }

    /// The report without the invites (no invite column, no invited-only rows): a page of
    /// users or one user's status, without reading every invite.
    pub fn without_invites(core: &'a Core, cfg: &'a Config, now: i64) -> Self {
        Self {
            core,
            cfg,
            now,
            by_user: BTreeMap::new(),
            invited_only: Vec::new(),
            open_invites: 0,
            expired_invites: 0,
            first_invite: None,
        }
    }

    pub fn now(&self) -> i64 {
        self.now
    }

    pub fn config(&self) -> &Config {
        self.cfg
    }

    /// Unused invites that still work.
    pub fn open_invites(&self) -> usize {
        self.open_invites
    }

    /// Unused invites past their expiry.
    pub fn expired_invites(&self) -> usize {
        self.expired_invites
    }

    /// Users invited and never seen by a login (the "never seen" of the console).
    pub fn invited_only(&self) -> &[UserName] {
        &self.invited_only
    }

    /// When the first invite went out, if any is kept.
    pub fn first_invite(&self) -> Option<i64> {
        self.first_invite
    }

    fn invite_of(&self, name: &str) -> Option<InviteCell> {
        InviteCell::of(
            self.by_user.get(name).map_or(&[][..], Vec::as_slice),
            self.now,
        )
    }

    /// The row of a stored record.
    pub fn row(&self, u: UserRecord) -> Row {
        // The groups as a login sees them (`[directory]` where set). A report is no
        // decision: where the directory does not answer, the row shows the status without
        // group exemptions (a user then reads as one who needs a code), never the reverse.
        let groups = if self.cfg.policy.uses_groups() {
            self.core.groups_of(&u.name).unwrap_or_default()
        } else {
            Vec::new()
        };
        let (status, deadline) = rollout_status(&u, self.cfg, &groups, self.now);
        let invite = self.invite_of(u.name.as_str());
        Row {
            user: u,
            status: Some(status),
            deadline,
            invite,
        }
    }

    fn invited_row(&self, n: &UserName) -> Row {
        Row {
            user: UserRecord::new(n, self.cfg.totp.params(), self.now),
            status: None,
            deadline: None,
            invite: self.invite_of(n.as_str()),
        }
    }

    /// Every row in name order (the stored records, the invited-only users merged in), one
    /// at a time from the store: a million users cost one record of memory. An error from
    /// `f` stops the read and is returned. Returns the totals.
    pub fn each_row<E: From<StoreError>>(
        &self,
        f: &mut dyn FnMut(Row) -> Result<(), E>,
    ) -> Result<Totals, E> {
        let mut totals = Totals::default();
        let mut pending = self.invited_only.iter().peekable();
        let mut failed = None;
        let t = self.now;
        let read = self.core.store.each_user(&mut |u| {
            let mut step = || -> Result<(), E> {
                while let Some(n) = pending.next_if(|n| n.as_str() < u.name.as_str()) {
                    f(self.invited_row(n))?;
                }
                let row = self.row(u.clone());
                count(&mut totals, &row, t);
                f(row)
            };
            // The store's read stops at the first error of `f` (a closed pipe, a full disk).
            step().map_err(|e| {
                failed = Some(e);
                StoreError::Aborted(crate::store::Abort::Bug("the report stopped"))
            })
        });
        if let Some(e) = failed {
            return Err(e);
        }
        read?;
        for n in pending {
            f(self.invited_row(n))?;
        }
        Ok(totals)
    }

    /// The totals alone ([`Report::each_row`] without rows).
    pub fn totals(&self) -> Result<Totals, CoreError> {
        self.each_row::<StoreError>(&mut |_| Ok(()))
            .map_err(CoreError::from)
    }

    /// One page of rows in name order, through the store's search by name
    /// ([`crate::store::Store::user_page`]), the invited-only users merged in. With a
    /// filter, at most [`SCAN_PER_PAGE`] records are read; a page that stops there is
    /// shorter, and `next` goes on from where it stopped.
    pub fn page(&self, q: &RowQuery) -> Result<RowPage, CoreError> {
        let limit = q.limit.clamp(1, USER_PAGE_MAX);
        let batch = if q.kind.is_some() { 500 } else { limit + 1 };
        let mut rows: Vec<Row> = Vec::new();
        let mut after = q.after.clone();
        let mut scanned = 0usize;
        let wanted = |r: &Row| q.kind.is_none_or(|k| r.kind(self.now) == k);
        loop {
            let recs = self.core.store.user_page(&UserPage {
                prefix: q.prefix.clone(),
                after: after.clone(),
                limit: batch,
            })?;
            let end_of_store = recs.len() < batch;
            let upto = recs.last().map(|r| r.name.to_string());
            // The invited-only names within this batch's range (all the rest after the
            // store's last batch).
            let invited = self.invited_only.iter().filter(|n| {
                n.as_str().starts_with(&q.prefix)
                    && after.as_deref().is_none_or(|a| n.as_str() > a)
                    && (end_of_store || upto.as_deref().is_some_and(|u| n.as_str() <= u))
            });
            let mut merged: Vec<Row> = recs.into_iter().map(|u| self.row(u)).collect();
            merged.extend(invited.map(|n| self.invited_row(n)));
            merged.sort_by(|a, b| a.user.name.cmp(&b.user.name));
            scanned += merged.len();
            for r in merged {
                if rows.len() == limit {
                    // One more than the page holds: there is a next page.
                    let next = rows.last().map(|l| l.user.name.to_string());
                    return Ok(RowPage { rows, next });
                }
                after = Some(r.user.name.to_string());
                if wanted(&r) {
                    rows.push(r);
                }
            }
            if end_of_store {
                return Ok(RowPage { rows, next: None });
            }
            if scanned >= SCAN_PER_PAGE {
                return Ok(RowPage { rows, next: after });
            }
            after = upto;
        }
    }
}

/// A CSV cell a spreadsheet will not run: one that starts with `=`, `+`, `-`, `@`, a tab or
/// a carriage return gets a leading `'` (OWASP, "CSV Injection"). The csv writer quotes
/// what needs quoting. Every CSV of the product (`mfactl report`, `log`, the console's
/// downloads) writes its cells through this.
pub fn csv_cell(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

fn count(totals: &mut Totals, row: &Row, t: i64) {
    let Some(status) = row.status else { return };
    let u = &row.user;
    totals.users += 1;
    totals.enrolled += usize::from(u.enrolled());
    totals.grace += usize::from(status.in_grace());
    totals.overdue += usize::from(status == RolloutStatus::Overdue);
    totals.locked += usize::from(u.locked(t).is_some());
    totals.exempt += usize::from(status == RolloutStatus::Exempt);
    if u.enrolled()
        && let Some(c) = u.mfa_created
    {
        *totals
            .enrolled_by_day
            .entry(c.div_euclid(86_400) * 86_400)
            .or_default() += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::TotpSecret;

    #[test]
    fn formula_cells_are_neutralised() {
        for bad in ["=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"] {
            assert_eq!(csv_cell(bad), format!("'{bad}"));
        }
        for ok in ["alice", "2026-01-01T00:00:00Z", "", "10.0.0.1", "a=b"] {
            assert_eq!(csv_cell(ok), ok);
        }
    }

    /// The rows stream in name order with the invited-only users merged in; the totals
    /// count the stored records; pages of the same rows, filtered or not, follow each other
    /// without a gap or a repeat.
    #[test]
    fn rows_totals_and_pages_agree() {
        let (_dir, core) = crate::test_core(|c| {
            c.policy.enforce_from = mfa_config::GoLive::Never;
        });
        let now = 1_800_000_000;
        let admin = core.admin("test");
        for i in 0..30 {
            let n = UserName::parse(&format!("u{i:02}")).unwrap();
            if i % 3 == 0 {
                core.enrolment()
                    .enroll(
                        &n,
                        &TotpSecret::generate().unwrap(),
                        None,
                        false,
                        "test",
                        now,
                    )
                    .unwrap();
            } else {
                admin.issue_temp_access(&n, 3600, 1, now).unwrap();
            }
        }
        for n in ["u05x", "zz"] {
            core.invites("test")
                .issue(&UserName::parse(n).unwrap(), 3600, now)
                .unwrap();
        }
        let cfg = core.config().clone();
        let r = Report::new(&core, &cfg, now).unwrap();
        let mut names = Vec::new();
        let totals = r
            .each_row::<StoreError>(&mut |row| {
                names.push(row.user.name.to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(totals.users, 30);
        assert_eq!(totals.enrolled, 10);
        assert_eq!(totals.enrolled_by_day.values().sum::<usize>(), 10);
        assert_eq!(r.invited_only().len(), 2);
        assert_eq!(names.len(), 32);
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(r.totals().unwrap(), totals);

        // Page through everything, 7 at a time; then only the never seen, then enrolled.
        for (kind, want) in [
            (None, names.clone()),
            (
                Some(RowKind::NeverSeen),
                vec!["u05x".to_string(), "zz".to_string()],
            ),
            (
                Some(RowKind::Enrolled),
                (0..30)
                    .filter(|i| i % 3 == 0)
                    .map(|i| format!("u{i:02}"))
                    .collect(),
            ),
        ] {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let p = r
                    .page(&RowQuery {
                        prefix: String::new(),
                        after: after.clone(),
                        kind,
                        limit: 7,
                    })
                    .unwrap();
                assert!(p.rows.len() <= 7);
                got.extend(p.rows.iter().map(|x| x.user.name.to_string()));
                match p.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            assert_eq!(got, want, "{kind:?}");
        }
        let p = r
            .page(&RowQuery {
                prefix: "u05".into(),
                after: None,
                kind: None,
                limit: 10,
            })
            .unwrap();
        let got: Vec<String> = p.rows.iter().map(|x| x.user.name.to_string()).collect();
        assert_eq!(got, ["u05", "u05x"]);
        assert!(p.next.is_none());
        assert_eq!(p.rows[1].status_text(), "invited");
    }
}
