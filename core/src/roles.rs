//! The administrators of the console (issue 22): who is one (`[admin] groups`, through the
//! system's groups), what each role may do, and [`Operator`], the service every action of
//! the console goes through. It looks the role up again at every action, refuses an
//! administrator's action on their own account, and calls the same services `mfactl` calls
//! ([`crate::admin::Admin`], [`crate::enrolment::Enrolment`], [`crate::invite::Invites`],
//! the configuration's checked edits), audited with the administrator as the actor.

use mfa_config::{AdminConfig, ExemptEdit, GoLiveEdit, TrustedEdit};
use mfa_model::{
    Action, AuditDecision, AuditEvent, DeviceId, Outcome, ReasonCode, Refusal, UserName,
};
use zeroize::Zeroizing;

use crate::core::{Core, STORE_WIDE};
use crate::error::CoreError;
use crate::login::Voucher;
use crate::secret::TotpSecret;

/// A role of the console; `Admin` may do all `Helpdesk` may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Helpdesk,
    Admin,
}

impl Role {
    /// The role's name, as `[admin] groups` names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Helpdesk => "helpdesk",
            Role::Admin => "admin",
        }
    }

    /// Whether the role allows `p`.
    pub fn allows(self, p: Permission) -> bool {
        match p {
            Permission::LookUp
            | Permission::Unlink
            | Permission::Link
            | Permission::TempAccess
            | Permission::Invite
            | Permission::Unlock
            | Permission::RevokeNetworks
            | Permission::RemoveDevice => true,
            Permission::GoLive
            | Permission::TrustedNetworks
            | Permission::Exemptions
            | Permission::BulkInvites => self == Role::Admin,
        }
    }
}

/// What an administrator does in the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Look users up, their records, the roll-out and the audit trail.
    LookUp,
    Unlink,
    /// Set a new key for a user and show it (the personal QR code).
    Link,
    TempAccess,
    Invite,
    /// Clear a lockout.
    Unlock,
    /// End a user's remembered networks.
    RevokeNetworks,
    /// Remove one of a user's phones for push approval (a lost phone, as `mfactl push
    /// remove`): the help desk's, as an unlink is.
    RemoveDevice,
    GoLive,
    TrustedNetworks,
    Exemptions,
    /// An invite for every user who is not enrolled.
    BulkInvites,
}

impl Permission {
    /// What it is, for a refusal's message.
    pub fn what(self) -> &'static str {
        match self {
            Permission::LookUp => "looking users up",
            Permission::Unlink => "unlinking a user's key",
            Permission::Link => "linking a new key",
            Permission::TempAccess => "temporary access",
            Permission::Invite => "invites",
            Permission::Unlock => "clearing a lockout",
            Permission::RevokeNetworks => "revoking remembered networks",
            Permission::RemoveDevice => "removing a phone for push approval",
            Permission::GoLive => "changing the go-live",
            Permission::TrustedNetworks => "changing the trusted networks",
            Permission::Exemptions => "changing the exemptions",
            Permission::BulkInvites => "invites for every user who is not enrolled",
        }
    }

    /// Whether it acts on one user (and so is refused on the administrator's own account).
    fn on_a_user(self) -> bool {
        !matches!(
            self,
            Permission::LookUp
                | Permission::GoLive
                | Permission::TrustedNetworks
                | Permission::Exemptions
                | Permission::BulkInvites
        )
    }
}

/// The role the groups `groups` give under `cfg`: the highest of the roles whose groups
/// hold one of them; `None` for none.
pub fn role_of(cfg: &AdminConfig, groups: &[String]) -> Option<Role> {
    let member = |list: &[String]| list.iter().any(|g| groups.contains(g));
    if member(&cfg.groups.admin) {
        Some(Role::Admin)
    } else if member(&cfg.groups.helpdesk) {
        Some(Role::Helpdesk)
    } else {
        None
    }
}

impl Core {
    /// The console role of `user`, from its groups as they are now (`[directory]` where
    /// set, else the system's NSS). A directory that does not answer gives no role.
    pub fn admin_role(&self, user: &UserName) -> Option<Role> {
        if !self.config.admin.enabled() {
            return None;
        }
        role_of(&self.config.admin, &self.groups_of(user).ok()?)
    }

    /// The console's service for the administrator `name`, whose actions are audited as
    /// done by `<front_end>:admin:<name>` (`mfa-portal:admin:alice`).
    pub fn operator(&self, front_end: &str, name: &UserName) -> Operator<'_> {
        Operator {
            core: self,
            actor: format!("{front_end}:admin:{name}"),
            name: name.clone(),
            role_for_tests: None,
        }
    }
}

/// The actions of one administrator of the console. Get one from [`Core::operator`].
#[derive(Debug, Clone)]
pub struct Operator<'a> {
    core: &'a Core,
    name: UserName,
    actor: String,
    /// The core's tests give a role without system groups.
    role_for_tests: Option<Role>,
}

impl Operator<'_> {
    /// The actor its audit events name.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    pub fn name(&self) -> &UserName {
        &self.name
    }

    /// The administrator's role now (the groups are looked up again), or
    /// [`Refusal::NotAdministrator`], audited.
    pub fn role(&self, now: i64) -> Result<Role, CoreError> {
        let role = match self.role_for_tests {
            Some(r) => Some(r),
            None => self.core.admin_role(&self.name),
        };
        match role {
            Some(r) => Ok(r),
            None => {
                let me = self.name.clone();
                self.refused(Some(&me), ReasonCode::NotAdministrator, None, now)?;
                Err(Refusal::NotAdministrator(self.name.clone()).into())
            }
        }
    }

    /// Whether the administrator may do `p` (to `target`), now: the role is looked up again,
    /// and an action on the administrator's own account is refused. A refusal is audited.
    pub fn permit(
        &self,
        p: Permission,
        target: Option<&UserName>,
        now: i64,
    ) -> Result<Role, CoreError> {
        let role = self.role(now)?;
        if !role.allows(p) {
            self.refused(target, ReasonCode::RoleRefused, Some(p.what()), now)?;
            return Err(Refusal::NotPermitted {
                operator: self.name.clone(),
                role: role.as_str(),
                what: p.what(),
            }
            .into());
        }
        if p.on_a_user() && target == Some(&self.name) {
            self.refused(target, ReasonCode::OwnAccount, Some(p.what()), now)?;
            return Err(Refusal::OwnAccount(self.name.clone()).into());
        }
        Ok(role)
    }

    /// Audits a refused action (a deny, as the portal's refusals are).
    fn refused(
        &self,
        target: Option<&UserName>,
        reason: ReasonCode,
        what: Option<&str>,
        now: i64,
    ) -> Result<(), CoreError> {
        let mut ev = AuditEvent::admin(
            now,
            target.map_or(STORE_WIDE, UserName::as_str),
            &self.actor,
            Action::Config,
            reason,
            what.map(str::to_string),
        );
        ev.decision = AuditDecision::Login(Outcome::Deny).into();
        self.append(ev)
    }

    fn append(&self, ev: AuditEvent) -> Result<(), CoreError> {
        let evs = std::slice::from_ref(&ev);
        self.core.store.append_audit(evs)?;
        self.core.sink.committed(self.core.store.as_ref(), evs);
        Ok(())
    }

    /// The name must be one the system knows or the store holds (as for `mfactl
    /// temp-access` without --force): an action on a typo is refused.
    fn admitted(&self, user: &UserName) -> Result<(), CoreError> {
        self.core
            .login()
            .admit_name(user, Voucher::Administrator { force: false })?
            .required()?;
        Ok(())
    }

    /// `mfactl unlink`.
    pub fn unlink(&self, user: &UserName, now: i64) -> Result<(), CoreError> {
        self.permit(Permission::Unlink, Some(user), now)?;
        self.core.admin(&self.actor).unlink(user, now)
    }

    /// `mfactl unlock`: says whether the user was locked.
    pub fn unlock(&self, user: &UserName, now: i64) -> Result<bool, CoreError> {
        self.permit(Permission::Unlock, Some(user), now)?;
        self.core.admin(&self.actor).unlock(user, now)
    }

    /// `mfactl temp-access`: the code, shown once.
    pub fn temp_access(
        &self,
        user: &UserName,
        valid_secs: i64,
        uses: u32,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        self.permit(Permission::TempAccess, Some(user), now)?;
        self.admitted(user)?;
        self.core
            .admin(&self.actor)
            .issue_temp_access(user, valid_secs, uses, now)
    }

    /// `mfactl unlocks revoke USER`: how many remembered networks were in force.
    pub fn revoke_networks(&self, user: &UserName, now: i64) -> Result<usize, CoreError> {
        self.permit(Permission::RevokeNetworks, Some(user), now)?;
        self.core
            .admin(&self.actor)
            .revoke_networks(user, None, now)
    }

    /// `mfactl push remove USER ID`: says whether the user had that phone.
    pub fn remove_push_device(
        &self,
        user: &UserName,
        id: &DeviceId,
        now: i64,
    ) -> Result<bool, CoreError> {
        self.permit(Permission::RemoveDevice, Some(user), now)?;
        self.core.push(&self.actor).remove_device(user, id, now)
    }

    /// `mfactl invite USER`: the token of the link, shown once.
    pub fn invite(
        &self,
        user: &UserName,
        valid_secs: i64,
        now: i64,
    ) -> Result<Zeroizing<String>, CoreError> {
        self.permit(Permission::Invite, Some(user), now)?;
        self.core.invites(&self.actor).issue(user, valid_secs, now)
    }

    /// `mfactl invite --unenrolled`.
    pub fn invite_unenrolled(
        &self,
        valid_secs: i64,
        now: i64,
    ) -> Result<Vec<(UserName, Zeroizing<String>)>, CoreError> {
        self.permit(Permission::BulkInvites, None, now)?;
        self.core
            .invites(&self.actor)
            .issue_unenrolled(valid_secs, now)
    }

    /// `mfactl enroll --no-confirm`: `secret` becomes the key of `user`, who has none (an
    /// enrolled user is refused: unlink first). The caller shows the key once.
    pub fn link(&self, user: &UserName, secret: &TotpSecret, now: i64) -> Result<(), CoreError> {
        self.permit(Permission::Link, Some(user), now)?;
        self.admitted(user)?;
        self.core
            .enrolment()
            .enroll(user, secret, None, false, &self.actor, now)
    }

    /// `mfactl go-live set|clear`: the configuration file edited in place (comments kept,
    /// the result validated before it is written), and audited.
    pub fn set_go_live(&self, edit: &GoLiveEdit, now: i64) -> Result<(), CoreError> {
        self.permit(Permission::GoLive, None, now)?;
        mfa_config::edit_enforce_from(&self.core.config.source, edit)?;
        let (reason, detail) = match edit {
            GoLiveEdit::Date(d) => (ReasonCode::GoLiveSet, format!("enforce_from = {d}")),
            GoLiveEdit::Never => (
                ReasonCode::GoLiveCleared,
                "enforce_from = \"never\"".to_string(),
            ),
        };
        self.config_event(reason, detail, now)
    }

    /// `mfactl trusted add|remove`: the same checked edit (the whole internet is refused).
    pub fn edit_trusted(&self, edit: TrustedEdit, now: i64) -> Result<(), CoreError> {
        self.permit(Permission::TrustedNetworks, None, now)?;
        mfa_config::edit_trusted_networks(&self.core.config.source, edit)?;
        let (reason, detail) = match edit {
            TrustedEdit::Add(c) => (ReasonCode::TrustedAdded, format!("trusted_networks + {c}")),
            TrustedEdit::Remove(c) => (
                ReasonCode::TrustedRemoved,
                format!("trusted_networks - {c}"),
            ),
        };
        self.config_event(reason, detail, now)
    }

    /// `mfactl exempt add|remove`: the same checked edit of `exempt_users` or
    /// `exempt_groups`.
    pub fn edit_exemptions(&self, edit: &ExemptEdit, now: i64) -> Result<(), CoreError> {
        self.permit(Permission::Exemptions, None, now)?;
        mfa_config::edit_exemptions(&self.core.config.source, edit)?;
        let (key, entry) = edit.target();
        let (reason, sign) = match edit {
            ExemptEdit::AddUser(_) | ExemptEdit::AddGroup(_) => (ReasonCode::ExemptionAdded, '+'),
            ExemptEdit::RemoveUser(_) | ExemptEdit::RemoveGroup(_) => {
                (ReasonCode::ExemptionRemoved, '-')
            }
        };
        self.config_event(reason, format!("{key} {sign} {entry}"), now)
    }

    /// The audit event of an edit of the configuration, written after the edit: a failure
    /// here says so, the change stands.
    fn config_event(&self, reason: ReasonCode, detail: String, now: i64) -> Result<(), CoreError> {
        self.append(AuditEvent::admin(
            now,
            STORE_WIDE,
            &self.actor,
            Action::Config,
            reason,
            Some(detail),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::AuditQuery;

    fn groups(cfg: &mut mfa_config::Config) {
        cfg.admin.groups.helpdesk = vec!["hd".into()];
        cfg.admin.groups.admin = vec!["adm".into()];
    }

    #[test]
    fn roles_come_from_the_groups_and_admin_wins() {
        let mut cfg = mfa_config::Config::default();
        groups(&mut cfg);
        let g = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            role_of(&cfg.admin, &g(&["users", "hd"])),
            Some(Role::Helpdesk)
        );
        assert_eq!(role_of(&cfg.admin, &g(&["hd", "adm"])), Some(Role::Admin));
        assert_eq!(role_of(&cfg.admin, &g(&["users"])), None);
        assert!(Role::Helpdesk.allows(Permission::Unlink));
        assert!(Role::Helpdesk.allows(Permission::RemoveDevice));
        assert!(!Role::Helpdesk.allows(Permission::GoLive));
        assert!(!Role::Helpdesk.allows(Permission::TrustedNetworks));
        assert!(!Role::Helpdesk.allows(Permission::Exemptions));
        assert!(!Role::Helpdesk.allows(Permission::BulkInvites));
        assert!(Role::Admin.allows(Permission::GoLive));
    }

    /// A help-desk role cannot change the go-live; nobody acts on their own account; every
    /// refusal and every action is in the audit trail with the administrator as the actor;
    /// the edits are the configuration's checked ones.
    #[test]
    fn the_operator_checks_role_and_target_and_audits_with_its_name() {
        let (dir, core) = crate::test_core(groups);
        let cfg_path = dir.path().join("mfa.toml");
        std::fs::write(&cfg_path, "[policy]\nenforce_from = \"never\"\n").unwrap();
        let mut cfg = core.config().clone();
        cfg.source = cfg_path.clone();
        let store = mfa_store_sqlite::SqliteStore::open(
            &cfg.store.path,
            crate::OpenMode::Existing,
            cfg.store.busy_timeout.0,
        )
        .unwrap();
        let core = Core::open(
            std::sync::Arc::new(cfg),
            Box::new(store),
            crate::OpenMode::Existing,
            "t",
        )
        .unwrap();
        let now = 1_800_000_000;
        let (ann, bob) = (
            UserName::parse("ann").unwrap(),
            UserName::parse("bob").unwrap(),
        );
        core.enrolment()
            .enroll(
                &bob,
                &TotpSecret::generate().unwrap(),
                None,
                false,
                "t",
                now,
            )
            .unwrap();
        core.enrolment()
            .enroll(
                &ann,
                &TotpSecret::generate().unwrap(),
                None,
                false,
                "t",
                now,
            )
            .unwrap();
        let mut hd = core.operator("mfa-portal", &ann);
        hd.role_for_tests = Some(Role::Helpdesk);
        assert_eq!(hd.actor(), "mfa-portal:admin:ann");
        let e = hd
            .set_go_live(&GoLiveEdit::Date("2027-03-01".into()), now)
            .unwrap_err();
        assert!(
            matches!(
                e,
                CoreError::Refused(Refusal::NotPermitted {
                    role: "helpdesk",
                    ..
                })
            ),
            "{e}"
        );
        assert!(
            std::fs::read_to_string(&cfg_path)
                .unwrap()
                .contains("never")
        );
        let e = hd.unlink(&ann, now).unwrap_err();
        assert!(
            matches!(e, CoreError::Refused(Refusal::OwnAccount(_))),
            "{e}"
        );
        assert!(core.store().user(&ann).unwrap().unwrap().enrolled());
        hd.unlink(&bob, now).unwrap();
        assert!(!core.store().user(&bob).unwrap().unwrap().enrolled());

        let mut adm = core.operator("mfa-portal", &bob);
        adm.role_for_tests = Some(Role::Admin);
        adm.set_go_live(&GoLiveEdit::Date("2027-03-01".into()), now)
            .unwrap();
        assert!(
            std::fs::read_to_string(&cfg_path)
                .unwrap()
                .contains("enforce_from = 2027-03-01")
        );
        // The whole internet is refused by the same check as `mfactl trusted add`.
        let e = adm
            .edit_trusted(TrustedEdit::Add("0.0.0.0/0".parse().unwrap()), now)
            .unwrap_err();
        assert!(e.to_string().contains("every IPv4 address"), "{e}");
        adm.edit_exemptions(&ExemptEdit::AddGroup("svc".into()), now)
            .unwrap();

        let log = core.store().audit(&AuditQuery::default()).unwrap();
        let by = |actor: &str, reason: &str| {
            log.iter().any(|e| e.service == actor && e.reason == reason)
        };
        assert!(by("mfa-portal:admin:ann", "role_refused"));
        assert!(by("mfa-portal:admin:ann", "own_account"));
        assert!(by("mfa-portal:admin:ann", "key_removed"));
        assert!(by("mfa-portal:admin:bob", "go_live_set"));
        assert!(by("mfa-portal:admin:bob", "exemption_added"));
        // A user in no group: refused, audited.
        let nobody = core.operator("mfa-portal", &UserName::parse("nobody-xyz").unwrap());
        assert!(matches!(
            nobody.role(now),
            Err(CoreError::Refused(Refusal::NotAdministrator(_)))
        ));
    }
}
