//! The portal's words, in English and Dutch. Every page takes one [`T`]; no text is built
//! from user input except through [`crate::page::esc`].

use mfa_core::policy::UnlockScope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Nl,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Nl => "nl",
        }
    }

    pub fn t(self) -> &'static T {
        match self {
            Lang::En => &EN,
            Lang::Nl => &NL,
        }
    }

    fn parse(s: &str) -> Option<Lang> {
        let primary = s.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "nl" => Some(Lang::Nl),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// `?lang=` wins; then the first of English and Dutch in `Accept-Language`, by weight;
    /// English otherwise.
    pub fn choose(query: Option<&str>, accept: Option<&str>) -> Lang {
        if let Some(l) = query.and_then(Lang::parse) {
            return l;
        }
        let mut best: Option<(u16, Lang)> = None;
        for part in accept.unwrap_or("").split(',').take(20) {
            let mut it = part.split(';');
            let tag = it.next().unwrap_or("");
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let weight = (q.clamp(0.0, 1.0) * 1000.0) as u16;
            if let Some(l) = Lang::parse(tag)
                && weight > 0
                && best.is_none_or(|(w, _)| weight > w)
            {
                best = Some((weight, l));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }
}

/// One language's texts.
#[derive(Debug)]
pub struct T {
    pub lang_other: &'static str,
    pub skip: &'static str,
    pub portal: &'static str,
    pub enrol_title: &'static str,
    pub account_for: &'static str,
    pub step_install: &'static str,
    pub step_add: &'static str,
    pub step_scan: &'static str,
    pub account_name: &'static str,
    pub key: &'static str,
    pub step_code: &'static str,
    pub key_kind: &'static str,
    pub qr_label: &'static str,
    pub code: &'static str,
    pub save: &'static str,
    pub linked: &'static str,
    pub next_title: &'static str,
    pub next_outside: &'static str,
    pub next_always: &'static str,
    pub next_lost: &'static str,
    pub another_title: &'static str,
    pub another_intro: &'static str,
    pub done: &'static str,
    pub wrong_code: &'static str,
    pub used_title: &'static str,
    pub used: &'static str,
    pub expired_title: &'static str,
    pub expired: &'static str,
    pub unknown_title: &'static str,
    pub unknown: &'static str,
    pub enrolled_title: &'static str,
    pub enrolled: &'static str,
    pub refused_title: &'static str,
    pub csrf: &'static str,
    pub session: &'static str,
    pub too_big: &'static str,
    pub too_many: &'static str,
    pub bad_form: &'static str,
    pub failure: &'static str,
    pub not_found: &'static str,
    pub my_account: &'static str,
    pub sign_in_intro: &'static str,
    pub user: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub wrong_sign_in: &'static str,
    pub signed_in_as: &'static str,
    pub mfa_created: &'static str,
    pub mfa_changed: &'static str,
    pub never: &'static str,
    pub last_logins: &'static str,
    pub time: &'static str,
    pub service: &'static str,
    pub address: &'static str,
    pub outcome: &'static str,
    pub no_logins: &'static str,
    pub backup_title: &'static str,
    pub backup_intro: &'static str,
    pub backup_button: &'static str,
    pub backup_shown: &'static str,
    pub backup_confirm_title: &'static str,
    pub backup_confirm_some: &'static str,
    pub backup_confirm_none: &'static str,
    pub backup_confirm_button: &'static str,
    pub backup_keep: &'static str,
    pub unlock_title: &'static str,
    pub unlock_intro: &'static str,
    pub unlock_button: &'static str,
    pub unlocked: &'static str,
    pub unlock_off: &'static str,
    pub unlock_no_address: &'static str,
    /// What an unlock lets in ([`unlock_scope`]): the lead-in, its parts, the rest.
    pub unlock_scope: &'static str,
    pub unlock_code_only: &'static str,
    pub unlock_radius: &'static str,
    pub unlock_pam: &'static str,
    pub unlock_rest: &'static str,
    pub unlock_nothing: &'static str,
    pub home_intro: &'static str,
    pub replace_title: &'static str,
    pub replace_account_intro: &'static str,
    pub replace_button: &'static str,
    pub replace_intro: &'static str,
    pub replace_step_add: &'static str,
    pub replace_step_code: &'static str,
    pub replace_names: &'static str,
    pub replace_code: &'static str,
    pub replace_confirm: &'static str,
    pub replace_cancel: &'static str,
    pub replace_cancelled: &'static str,
    pub replace_none: &'static str,
    pub replaced: &'static str,
    pub replace_wrong_code: &'static str,
    pub replace_not_enrolled: &'static str,
    pub replace_end_old: &'static str,
    pub replaced_end_old: &'static str,
    pub session_ended: &'static str,
    pub too_many_user: &'static str,
    pub too_slow: &'static str,
    pub phones_title: &'static str,
    pub phones_intro: &'static str,
    pub phones_none: &'static str,
    pub phone_col: &'static str,
    pub phone_added: &'static str,
    pub phone_last_used: &'static str,
    pub phone_remove: &'static str,
    pub phone_removed: &'static str,
    pub phone_remove_none: &'static str,
    pub phone_title: &'static str,
    pub phone_intro: &'static str,
    pub phone_ios: &'static str,
    pub phone_name_label: &'static str,
    pub phone_name_default: &'static str,
    pub phone_noscript: &'static str,
    pub phone_unsupported: &'static str,
    pub phone_permission: &'static str,
    pub phone_working: &'static str,
    pub phone_failed: &'static str,
    pub phone_registered: &'static str,
    pub phone_bad_name: &'static str,
    pub phone_bad_browser: &'static str,
    pub phone_too_many: &'static str,
    pub phone_off: &'static str,
    pub back_to_account: &'static str,
    pub push_title: &'static str,
    pub push_intro: &'static str,
    pub push_expires: &'static str,
    pub push_state: &'static str,
    pub push_number: &'static str,
    pub push_approve: &'static str,
    pub push_deny: &'static str,
    pub push_fraud: &'static str,
    pub push_fraud_hint: &'static str,
    pub push_noscript: &'static str,
    pub push_type_number: &'static str,
    pub push_not_registered: &'static str,
    pub push_working: &'static str,
    pub push_failed: &'static str,
    pub push_approved: &'static str,
    pub push_denied: &'static str,
    pub push_wrong_number: &'static str,
    pub push_fraud_done: &'static str,
    pub push_closed: &'static str,
    pub push_unknown: &'static str,
    pub push_bad_device: &'static str,
    pub push_bad_signature: &'static str,
    pub push_bad_form: &'static str,
    pub state_pending: &'static str,
    pub state_approved: &'static str,
    pub state_denied: &'static str,
    pub state_expired: &'static str,
    pub state_fraud: &'static str,
    pub state_undeliverable: &'static str,
    pub pending_title: &'static str,
    pub pending_intro: &'static str,
    pub pending_loading: &'static str,
    pub pending_none: &'static str,
    pub pending_some: &'static str,
    pub sw_title: &'static str,
    pub sw_body: &'static str,
    pub sw_number: &'static str,
    pub sw_unknown: &'static str,
    pub sw_unreadable: &'static str,
    pub app_name: &'static str,
    pub app_short: &'static str,
    pub app_description: &'static str,
}

pub static EN: T = T {
    lang_other: "Nederlands",
    skip: "Skip to the page's content",
    portal: "MFA self-service",
    enrol_title: "Link your authenticator app",
    account_for: "Account",
    step_install: "Install an authenticator app on your phone: Microsoft Authenticator, Google Authenticator or Authy.",
    step_add: "In the app, add an account: in Microsoft Authenticator choose \u{201c}Other account (Google, Facebook, etc.)\u{201d}, in Google Authenticator and Authy the + button.",
    step_scan: "Scan this QR code with the app. Cannot scan? Choose to enter a setup key, and type the account name and the key below.",
    account_name: "Account name",
    key: "Key",
    step_code: "Enter the 6-digit code the app shows now, and Save.",
    key_kind: "time-based, {algorithm}, {digits} digits, every {period} seconds",
    qr_label: "QR code to scan with the authenticator app",
    code: "Code from the app",
    save: "Save",
    linked: "Your device is linked.",
    next_title: "What happens next",
    next_outside: "Next time you sign in from outside the office (the VPN, remote desktop, a server over SSH), you are asked for a code after your password. Open the app and type the code it shows at that moment; a new one appears every {period} seconds, and each works once.",
    next_always: "Next time you sign in (the VPN, remote desktop, a server over SSH), you are asked for a code after your password. Open the app and type the code it shows at that moment; a new one appears every {period} seconds, and each works once.",
    next_lost: "Keep the app on your phone. A new phone, or lost this one? Sign in to My account and choose Replace key, or ask your administrator.",
    another_title: "Link another device (optional)",
    another_intro: "With a second phone or a tablet you can still sign in when this phone is not at hand. Scan this QR code with the authenticator app on it, or type the account name and key, now: once you leave this page, they are not shown again.",
    done: "Done: go to My account",
    wrong_code: "That code is not right. Check that your phone's clock is set automatically, then type the code the app shows now. Your link still works.",
    used_title: "This link was used",
    used: "This enrolment link has been used already: the app it linked is active. A link works once. If you need to link a new phone, ask your administrator for a new link.",
    expired_title: "This link has expired",
    expired: "This enrolment link has expired. Ask your administrator for a new link.",
    unknown_title: "Unknown link",
    unknown: "This enrolment link is not valid. Check that you opened the whole link from the message, or ask your administrator for a new one.",
    enrolled_title: "Already linked",
    enrolled: "This account has an authenticator app already. To link a new phone, ask your administrator.",
    refused_title: "Request refused",
    csrf: "This form was not sent from this page (its security token is missing or wrong). Nothing was changed. Go back, reload the page and try again.",
    session: "Your session has expired, or your browser did not send its cookie. Nothing was changed. Open the link again (cookies must be allowed for this site).",
    too_big: "The form sent was too large. Nothing was changed.",
    too_many: "Too many attempts from your address. Nothing was changed. Wait a few minutes and try again.",
    bad_form: "The form sent was not understood. Nothing was changed.",
    failure: "Something went wrong on our side; nothing was changed. Try again later, or contact your administrator.",
    not_found: "There is no such page.",
    my_account: "My account",
    sign_in_intro: "Sign in with your user name, your password and the current code from your authenticator app.",
    user: "User name",
    password: "Password",
    sign_in: "Sign in",
    sign_out: "Sign out",
    wrong_sign_in: "Wrong user name, password or code. Nothing was changed.",
    signed_in_as: "Signed in as",
    mfa_created: "MFA set up",
    mfa_changed: "MFA last changed",
    never: "never",
    last_logins: "Last logins",
    time: "Time",
    service: "Service or gateway",
    address: "Client address",
    outcome: "Outcome",
    no_logins: "No logins yet.",
    backup_title: "Backup codes",
    backup_intro: "One-time codes for when your phone is not at hand. A new set replaces the old one.",
    backup_button: "Make new backup codes",
    backup_shown: "Write these codes down or print them now: they are not shown again. Each works once.",
    backup_confirm_title: "Make new backup codes?",
    backup_confirm_some: "You have {n} backup codes that have not been used. They stop working as soon as you make new ones, even if you wrote them down.",
    backup_confirm_none: "You have no usable backup codes now. The new ones are shown only once: have paper or your password manager ready.",
    backup_confirm_button: "Yes, make new backup codes",
    backup_keep: "No, keep my current codes",
    unlock_title: "Unlock remote desktop from this network",
    unlock_intro: "Remote desktop gateways cannot ask for a code. Unlock the address you are using now, for a while.",
    unlock_button: "Unlock remote desktop from this network",
    unlocked: "Unlocked. The logins named above need no code from this address until",
    unlock_off: "Unlocking is turned off on this system.",
    unlock_no_address: "Your address could not be determined, so it cannot be unlocked.",
    unlock_scope: "An unlock lets these logins of yours in without a code, from that address only:",
    unlock_code_only: "gateways that cannot ask for a code, such as remote desktop",
    unlock_radius: "the gateway",
    unlock_pam: "logins through the service",
    unlock_rest: "Every other login still asks for your code.",
    unlock_nothing: "On this system an unlock lets no login in without a code.",
    home_intro: "To link your authenticator app, open the link your administrator sent you.",
    replace_title: "Replace key",
    replace_account_intro: "A new phone, or a key that may have been seen by someone else: link a new key. Your current key keeps working until you confirm the new one.",
    replace_button: "Replace key",
    replace_intro: "This is your new key. Your current key keeps working until you confirm this one with a code.",
    replace_step_add: "In your authenticator app, add a new account (Microsoft Authenticator: \u{201c}Other account (Google, Facebook, etc.)\u{201d}; Google Authenticator and Authy: the + button).",
    replace_step_code: "Enter the 6-digit code the new entry in the app shows now, and confirm.",
    replace_names: "In the app, the new entry is named \u{201c}{new}\u{201d}. Once you have confirmed it, delete the other entry of {issuer} for {user} from the app: that one holds the old key.",
    replace_code: "Code from the new account in the app",
    replace_confirm: "Confirm new key",
    replace_cancel: "Cancel",
    replace_cancelled: "Cancelled. Your current key still works.",
    replace_none: "There is no new key waiting to be confirmed (it was confirmed or cancelled already). Nothing was changed.",
    replaced: "Your new key is saved. The old key no longer works: in the app, keep \u{201c}{new}\u{201d} and delete the other entry of {issuer} for {user}.",
    replace_wrong_code: "That code is not right for the new key, so it was not saved: your current key still works. Check that your phone's clock is set automatically, then type the code the new account shows now.",
    replace_not_enrolled: "Your account has no key to replace any more (your administrator removed it). Nothing was changed.",
    replace_end_old: "Also end what came with the old key: my backup codes, temporary access codes and unlocked networks. Tick this if the old phone may be in someone else's hands.",
    replaced_end_old: "Your new key is saved. The old key no longer works: in the app, keep \u{201c}{new}\u{201d} and delete the other entry of {issuer} for {user}. Your backup codes, temporary access codes and unlocked networks were ended too; make new backup codes below.",
    session_ended: "You were signed out: your key was changed or removed, or your account is locked, since you signed in. Nothing was changed. Sign in again.",
    too_many_user: "Too many failed sign-ins for this user name. Nothing was changed. Wait a quarter of an hour and try again.",
    too_slow: "The form took too long to arrive. Nothing was changed. Try again.",
    phones_title: "Phones that approve sign-ins",
    phones_intro: "Instead of typing a code, approve a sign-in on a registered phone: it shows a notification, you type the number the sign-in screen shows, and approve.",
    phones_none: "No phone is registered yet.",
    phone_col: "Phone",
    phone_added: "Registered (UTC)",
    phone_last_used: "Last used (UTC)",
    phone_remove: "Remove",
    phone_removed: "The phone was removed: it no longer approves your sign-ins.",
    phone_remove_none: "That phone was removed already. Nothing was changed.",
    phone_title: "Use this phone to approve sign-ins",
    phone_intro: "Register this phone for your account. When you sign in, it shows a notification: open it, type the number the sign-in screen shows, and approve. A key made on this phone signs every approval and never leaves it.",
    phone_ios: "On an iPhone or iPad: first add this page to the Home Screen (Share, Add to Home Screen), open it from there, sign in again, and then register.",
    phone_name_label: "Name of this phone",
    phone_name_default: "My phone",
    phone_noscript: "Registering a phone needs JavaScript: allow scripts for this site.",
    phone_unsupported: "This browser cannot receive sign-in requests. On an iPhone or iPad, add this page to the Home Screen first and open it from there.",
    phone_permission: "Notifications are not allowed for this site. Allow them in the browser's settings and try again.",
    phone_working: "Registering this phone\u{2026}",
    phone_failed: "This phone could not be registered. Nothing was changed. Try again.",
    phone_registered: "This phone is registered: it will show your sign-in requests.",
    phone_bad_name: "Give the phone a name of 1 to 64 characters, without control characters and without spaces at either end. Nothing was changed.",
    phone_bad_browser: "This browser's registration was not accepted: its push service is not one this system allows, or its subscription or key is not valid. Nothing was changed.",
    phone_too_many: "You have registered 10 phones already: remove one in My account first. Nothing was changed.",
    phone_off: "Approving sign-ins on a phone is turned off on this system.",
    back_to_account: "Back to My account",
    push_title: "Sign-in request",
    push_intro: "Someone is signing in with your account. Approve only if it is you, right now.",
    push_expires: "Expires (UTC)",
    push_state: "Status",
    push_number: "Number shown on the sign-in screen",
    push_approve: "Approve",
    push_deny: "Deny",
    push_fraud: "This wasn't me",
    push_fraud_hint: "\u{201c}This wasn't me\u{201d} refuses the sign-in, stops further requests for a while and tells your administrator.",
    push_noscript: "Deciding on a request needs JavaScript: allow scripts for this site.",
    push_type_number: "Type the two-digit number the sign-in screen shows.",
    push_not_registered: "This phone is not registered for this account. In My account, choose \u{201c}Use this phone to approve sign-ins\u{201d} first.",
    push_working: "Sending\u{2026}",
    push_failed: "The decision could not be sent. Check the connection and try again.",
    push_approved: "Approved. Go back to your sign-in.",
    push_denied: "Denied: the sign-in was refused.",
    push_wrong_number: "That is not the number the sign-in screen showed, so the sign-in was refused. If it was you, sign in again.",
    push_fraud_done: "Reported: the sign-in was refused, further requests are blocked for a while and your administrator has been told. If someone may know your password, change it.",
    push_closed: "This request was decided already or has expired. Nothing was changed.",
    push_unknown: "There is no such sign-in request (it may have expired and been removed).",
    push_bad_device: "This phone is not registered (any more) for this account, so it cannot decide. Nothing was changed.",
    push_bad_signature: "The decision could not be verified with this phone's key. Nothing was changed. Register this phone again in My account.",
    push_bad_form: "The decision sent was not understood. Nothing was changed.",
    state_pending: "waiting for your decision",
    state_approved: "approved",
    state_denied: "denied",
    state_expired: "expired",
    state_fraud: "reported as not yours",
    state_undeliverable: "not delivered",
    pending_title: "Sign-in requests",
    pending_intro: "Sign-in requests waiting for this phone's decision.",
    pending_loading: "Looking for requests\u{2026}",
    pending_none: "No sign-in requests are waiting.",
    pending_some: "Choose a request to decide on it.",
    sw_title: "Approve sign-in?",
    sw_body: "{service} from {address}.",
    sw_number: "Open it and type the number shown.",
    sw_unknown: "an unknown address",
    sw_unreadable: "A sign-in request arrived that cannot be read. Open the app.",
    app_name: "MFA sign-in approval",
    app_short: "Sign-in approval",
    app_description: "Approve sign-ins to your organisation's systems on this phone.",
};

pub static NL: T = T {
    lang_other: "English",
    skip: "Naar de inhoud van de pagina",
    portal: "MFA-selfservice",
    enrol_title: "Koppel je authenticator-app",
    account_for: "Account",
    step_install: "Installeer een authenticator-app op je telefoon: Microsoft Authenticator, Google Authenticator of Authy.",
    step_add: "Voeg in de app een account toe: kies in Microsoft Authenticator \u{201c}Ander account (Google, Facebook, enz.)\u{201d}, in Google Authenticator en Authy de knop +.",
    step_scan: "Scan deze QR-code met de app. Lukt scannen niet? Kies voor het invoeren van een installatiesleutel en typ de accountnaam en de sleutel hieronder over.",
    account_name: "Accountnaam",
    key: "Sleutel",
    step_code: "Voer de 6-cijferige code in die de app nu toont, en klik op Opslaan.",
    key_kind: "tijdgebaseerd, {algorithm}, {digits} cijfers, elke {period} seconden",
    qr_label: "QR-code om te scannen met de authenticator-app",
    code: "Code uit de app",
    save: "Opslaan",
    linked: "Je apparaat is gekoppeld.",
    next_title: "Hoe nu verder",
    next_outside: "Als je je de volgende keer van buiten kantoor aanmeldt (via VPN, extern bureaublad of SSH op een server), wordt na je wachtwoord om een code gevraagd. Open de app en typ de code die hij op dat moment toont; elke {period} seconden verschijnt een nieuwe, en elke code werkt \u{e9}\u{e9}n keer.",
    next_always: "Als je je de volgende keer aanmeldt (via VPN, extern bureaublad of SSH op een server), wordt na je wachtwoord om een code gevraagd. Open de app en typ de code die hij op dat moment toont; elke {period} seconden verschijnt een nieuwe, en elke code werkt \u{e9}\u{e9}n keer.",
    next_lost: "Houd de app op je telefoon. Een nieuwe telefoon, of deze kwijt? Meld je aan bij Mijn account en kies Sleutel vervangen, of vraag het je beheerder.",
    another_title: "Nog een apparaat koppelen (optioneel)",
    another_intro: "Met een tweede telefoon of een tablet kun je je nog aanmelden als deze telefoon niet bij de hand is. Scan deze QR-code met de authenticator-app daarop, of typ de accountnaam en de sleutel over, nu: zodra je deze pagina verlaat, worden ze niet meer getoond.",
    done: "Klaar: naar Mijn account",
    wrong_code: "Die code klopt niet. Controleer of de klok van je telefoon automatisch wordt ingesteld en typ de code die de app nu toont. Je link blijft geldig.",
    used_title: "Deze link is al gebruikt",
    used: "Deze koppellink is al gebruikt: de app die ermee gekoppeld is, is actief. Een link werkt maar \u{e9}\u{e9}n keer. Moet je een nieuwe telefoon koppelen, vraag dan je beheerder om een nieuwe link.",
    expired_title: "Deze link is verlopen",
    expired: "Deze koppellink is verlopen. Vraag je beheerder om een nieuwe link.",
    unknown_title: "Onbekende link",
    unknown: "Deze koppellink is niet geldig. Controleer of je de hele link uit het bericht hebt geopend, of vraag je beheerder om een nieuwe.",
    enrolled_title: "Al gekoppeld",
    enrolled: "Aan dit account is al een authenticator-app gekoppeld. Vraag je beheerder als je een nieuwe telefoon wilt koppelen.",
    refused_title: "Verzoek geweigerd",
    csrf: "Dit formulier is niet vanaf deze pagina verstuurd (het beveiligingstoken ontbreekt of klopt niet). Er is niets gewijzigd. Ga terug, laad de pagina opnieuw en probeer het nog eens.",
    session: "Je sessie is verlopen, of je browser heeft zijn cookie niet meegestuurd. Er is niets gewijzigd. Open de link opnieuw (cookies moeten voor deze site zijn toegestaan).",
    too_big: "Het verstuurde formulier was te groot. Er is niets gewijzigd.",
    too_many: "Te veel pogingen vanaf jouw adres. Er is niets gewijzigd. Wacht een paar minuten en probeer het opnieuw.",
    bad_form: "Het verstuurde formulier werd niet begrepen. Er is niets gewijzigd.",
    failure: "Er ging bij ons iets mis; er is niets gewijzigd. Probeer het later opnieuw, of neem contact op met je beheerder.",
    not_found: "Deze pagina bestaat niet.",
    my_account: "Mijn account",
    sign_in_intro: "Meld je aan met je gebruikersnaam, je wachtwoord en de huidige code uit je authenticator-app.",
    user: "Gebruikersnaam",
    password: "Wachtwoord",
    sign_in: "Aanmelden",
    sign_out: "Afmelden",
    wrong_sign_in: "Onjuiste gebruikersnaam, wachtwoord of code. Er is niets gewijzigd.",
    signed_in_as: "Aangemeld als",
    mfa_created: "MFA ingesteld",
    mfa_changed: "MFA laatst gewijzigd",
    never: "nooit",
    last_logins: "Laatste aanmeldingen",
    time: "Tijd",
    service: "Dienst of gateway",
    address: "Adres van de client",
    outcome: "Resultaat",
    no_logins: "Nog geen aanmeldingen.",
    backup_title: "Reservecodes",
    backup_intro: "Eenmalige codes voor als je telefoon niet bij de hand is. Een nieuwe set vervangt de oude.",
    backup_button: "Nieuwe reservecodes maken",
    backup_shown: "Schrijf deze codes nu op of druk ze af: ze worden niet nog eens getoond. Elke code werkt \u{e9}\u{e9}n keer.",
    backup_confirm_title: "Nieuwe reservecodes maken?",
    backup_confirm_some: "Je hebt {n} reservecodes die nog niet gebruikt zijn. Die werken niet meer zodra je nieuwe maakt, ook als je ze hebt opgeschreven.",
    backup_confirm_none: "Je hebt nu geen bruikbare reservecodes. De nieuwe worden maar \u{e9}\u{e9}n keer getoond: houd papier of je wachtwoordbeheerder bij de hand.",
    backup_confirm_button: "Ja, nieuwe reservecodes maken",
    backup_keep: "Nee, mijn huidige codes houden",
    unlock_title: "Extern bureaublad vanaf dit netwerk ontgrendelen",
    unlock_intro: "Gateways voor extern bureaublad kunnen niet om een code vragen. Ontgrendel het adres dat je nu gebruikt, voor een tijdje.",
    unlock_button: "Extern bureaublad vanaf dit netwerk ontgrendelen",
    unlocked: "Ontgrendeld. De hierboven genoemde aanmeldingen hebben vanaf dit adres geen code nodig tot",
    unlock_off: "Ontgrendelen staat op dit systeem uit.",
    unlock_no_address: "Je adres kon niet worden bepaald, dus het kan niet worden ontgrendeld.",
    unlock_scope: "Een ontgrendeling laat deze aanmeldingen van jou zonder code toe, alleen vanaf dat adres:",
    unlock_code_only: "gateways die niet om een code kunnen vragen, zoals extern bureaublad",
    unlock_radius: "de gateway",
    unlock_pam: "aanmeldingen via de dienst",
    unlock_rest: "Elke andere aanmelding vraagt nog steeds om je code.",
    unlock_nothing: "Op dit systeem laat een ontgrendeling geen enkele aanmelding zonder code toe.",
    home_intro: "Open de link die je beheerder je stuurde om je authenticator-app te koppelen.",
    replace_title: "Sleutel vervangen",
    replace_account_intro: "Een nieuwe telefoon, of een sleutel die iemand anders gezien kan hebben: koppel een nieuwe sleutel. Je huidige sleutel blijft werken tot je de nieuwe bevestigt.",
    replace_button: "Sleutel vervangen",
    replace_intro: "Dit is je nieuwe sleutel. Je huidige sleutel blijft werken tot je deze met een code bevestigt.",
    replace_step_add: "Voeg in je authenticator-app een nieuw account toe (Microsoft Authenticator: \u{201c}Ander account (Google, Facebook, enz.)\u{201d}; Google Authenticator en Authy: de knop +).",
    replace_step_code: "Voer de 6-cijferige code in die het nieuwe account in de app nu toont, en bevestig.",
    replace_names: "In de app heet het nieuwe account \u{201c}{new}\u{201d}. Verwijder na het bevestigen het andere account van {issuer} voor {user} uit de app: daarin zit de oude sleutel.",
    replace_code: "Code van het nieuwe account in de app",
    replace_confirm: "Nieuwe sleutel bevestigen",
    replace_cancel: "Annuleren",
    replace_cancelled: "Geannuleerd. Je huidige sleutel werkt nog.",
    replace_none: "Er wacht geen nieuwe sleutel op bevestiging (hij is al bevestigd of geannuleerd). Er is niets gewijzigd.",
    replaced: "Je nieuwe sleutel is opgeslagen. De oude sleutel werkt niet meer: houd in de app \u{201c}{new}\u{201d} en verwijder het andere account van {issuer} voor {user}.",
    replace_wrong_code: "Die code klopt niet voor de nieuwe sleutel, dus die is niet opgeslagen: je huidige sleutel werkt nog. Controleer of de klok van je telefoon automatisch wordt ingesteld en typ de code die het nieuwe account nu toont.",
    replace_not_enrolled: "Je account heeft geen sleutel meer om te vervangen (je beheerder heeft hem verwijderd). Er is niets gewijzigd.",
    replace_end_old: "Be\u{eb}indig ook wat bij de oude sleutel hoorde: mijn reservecodes, tijdelijke toegangscodes en ontgrendelde netwerken. Vink dit aan als de oude telefoon in andermans handen kan zijn.",
    replaced_end_old: "Je nieuwe sleutel is opgeslagen. De oude sleutel werkt niet meer: houd in de app \u{201c}{new}\u{201d} en verwijder het andere account van {issuer} voor {user}. Ook je reservecodes, tijdelijke toegangscodes en ontgrendelde netwerken zijn be\u{eb}indigd; maak hieronder nieuwe reservecodes.",
    session_ended: "Je bent afgemeld: sinds je aanmelding is je sleutel gewijzigd of verwijderd, of is je account geblokkeerd. Er is niets gewijzigd. Meld je opnieuw aan.",
    too_many_user: "Te veel mislukte aanmeldingen voor deze gebruikersnaam. Er is niets gewijzigd. Wacht een kwartier en probeer het opnieuw.",
    too_slow: "Het formulier deed er te lang over om aan te komen. Er is niets gewijzigd. Probeer het opnieuw.",
    phones_title: "Telefoons die aanmeldingen goedkeuren",
    phones_intro: "Keur een aanmelding goed op een geregistreerde telefoon in plaats van een code te typen: de telefoon toont een melding, je typt het getal dat het aanmeldscherm toont en keurt goed.",
    phones_none: "Er is nog geen telefoon geregistreerd.",
    phone_col: "Telefoon",
    phone_added: "Geregistreerd (UTC)",
    phone_last_used: "Laatst gebruikt (UTC)",
    phone_remove: "Verwijderen",
    phone_removed: "De telefoon is verwijderd: hij keurt je aanmeldingen niet meer goed.",
    phone_remove_none: "Die telefoon was al verwijderd. Er is niets gewijzigd.",
    phone_title: "Deze telefoon gebruiken om aanmeldingen goed te keuren",
    phone_intro: "Registreer deze telefoon voor je account. Als je je aanmeldt, toont hij een melding: open die, typ het getal dat het aanmeldscherm toont en keur goed. Een sleutel die op deze telefoon wordt gemaakt, ondertekent elke goedkeuring en verlaat de telefoon nooit.",
    phone_ios: "Op een iPhone of iPad: zet deze pagina eerst op het beginscherm (Deel, Zet op beginscherm), open hem van daaruit, meld je opnieuw aan en registreer dan.",
    phone_name_label: "Naam van deze telefoon",
    phone_name_default: "Mijn telefoon",
    phone_noscript: "Voor het registreren van een telefoon is JavaScript nodig: sta scripts toe voor deze site.",
    phone_unsupported: "Deze browser kan geen aanmeldverzoeken ontvangen. Zet op een iPhone of iPad deze pagina eerst op het beginscherm en open hem van daaruit.",
    phone_permission: "Meldingen zijn voor deze site niet toegestaan. Sta ze toe in de instellingen van de browser en probeer het opnieuw.",
    phone_working: "Deze telefoon wordt geregistreerd\u{2026}",
    phone_failed: "Deze telefoon kon niet worden geregistreerd. Er is niets gewijzigd. Probeer het opnieuw.",
    phone_registered: "Deze telefoon is geregistreerd: hij toont voortaan je aanmeldverzoeken.",
    phone_bad_name: "Geef de telefoon een naam van 1 tot 64 tekens, zonder stuurtekens en zonder spaties aan het begin of eind. Er is niets gewijzigd.",
    phone_bad_browser: "De registratie van deze browser is niet geaccepteerd: de pushdienst wordt op dit systeem niet toegestaan, of het abonnement of de sleutel is ongeldig. Er is niets gewijzigd.",
    phone_too_many: "Je hebt al 10 telefoons geregistreerd: verwijder er eerst een in Mijn account. Er is niets gewijzigd.",
    phone_off: "Aanmeldingen goedkeuren op een telefoon staat op dit systeem uit.",
    back_to_account: "Terug naar Mijn account",
    push_title: "Aanmeldverzoek",
    push_intro: "Iemand meldt zich aan met jouw account. Keur alleen goed als jij dat bent, nu.",
    push_expires: "Verloopt (UTC)",
    push_state: "Status",
    push_number: "Getal op het aanmeldscherm",
    push_approve: "Goedkeuren",
    push_deny: "Weigeren",
    push_fraud: "Dit was ik niet",
    push_fraud_hint: "\u{201c}Dit was ik niet\u{201d} weigert de aanmelding, stopt verdere verzoeken een tijdje en waarschuwt je beheerder.",
    push_noscript: "Voor het beslissen over een verzoek is JavaScript nodig: sta scripts toe voor deze site.",
    push_type_number: "Typ het getal van twee cijfers dat het aanmeldscherm toont.",
    push_not_registered: "Deze telefoon is niet geregistreerd voor dit account. Kies eerst in Mijn account \u{201c}Deze telefoon gebruiken om aanmeldingen goed te keuren\u{201d}.",
    push_working: "Bezig met versturen\u{2026}",
    push_failed: "De beslissing kon niet worden verstuurd. Controleer de verbinding en probeer het opnieuw.",
    push_approved: "Goedgekeurd. Ga terug naar je aanmelding.",
    push_denied: "Geweigerd: de aanmelding is afgewezen.",
    push_wrong_number: "Dat is niet het getal dat het aanmeldscherm toonde, dus de aanmelding is afgewezen. Was jij het, meld je dan opnieuw aan.",
    push_fraud_done: "Gemeld: de aanmelding is afgewezen, verdere verzoeken zijn een tijdje geblokkeerd en je beheerder is gewaarschuwd. Kan iemand je wachtwoord kennen, wijzig het dan.",
    push_closed: "Over dit verzoek is al beslist of het is verlopen. Er is niets gewijzigd.",
    push_unknown: "Dit aanmeldverzoek bestaat niet (het kan verlopen en verwijderd zijn).",
    push_bad_device: "Deze telefoon is (niet meer) geregistreerd voor dit account en kan dus niet beslissen. Er is niets gewijzigd.",
    push_bad_signature: "De beslissing kon niet worden gecontroleerd met de sleutel van deze telefoon. Er is niets gewijzigd. Registreer deze telefoon opnieuw in Mijn account.",
    push_bad_form: "De verstuurde beslissing werd niet begrepen. Er is niets gewijzigd.",
    state_pending: "wacht op je beslissing",
    state_approved: "goedgekeurd",
    state_denied: "geweigerd",
    state_expired: "verlopen",
    state_fraud: "gemeld als niet van jou",
    state_undeliverable: "niet afgeleverd",
    pending_title: "Aanmeldverzoeken",
    pending_intro: "Aanmeldverzoeken die wachten op een beslissing van deze telefoon.",
    pending_loading: "Verzoeken worden gezocht\u{2026}",
    pending_none: "Er wachten geen aanmeldverzoeken.",
    pending_some: "Kies een verzoek om erover te beslissen.",
    sw_title: "Aanmelding goedkeuren?",
    sw_body: "{service} vanaf {address}.",
    sw_number: "Open de melding en typ het getoonde getal.",
    sw_unknown: "een onbekend adres",
    sw_unreadable: "Er kwam een aanmeldverzoek binnen dat niet te lezen is. Open de app.",
    app_name: "MFA-aanmeldgoedkeuring",
    app_short: "Goedkeuring",
    app_description: "Keur aanmeldingen bij de systemen van je organisatie goed op deze telefoon.",
};

/// `template` with each `{name}` replaced by its value: the texts that carry a number or a
/// name keep their word order in each language.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values.iter().fold(template.to_string(), |s, (k, v)| {
        s.replace(&format!("{{{k}}}"), v)
    })
}

/// What kind of key the app is to add ("time-based, SHA1, 6 digits, every 30 seconds"), in
/// the page's language: shown beside the key for apps that ask when it is typed by hand.
pub fn key_kind(t: &T, p: &mfa_model::TotpParams) -> String {
    fill(
        t.key_kind,
        &[
            ("algorithm", p.algorithm.as_str()),
            ("digits", &p.digits.to_string()),
            ("period", &p.period.to_string()),
        ],
    )
}

/// What an unlock lets in, in `lang`, from the configuration (`[policy] remember_for`, as
/// the policy applies it): shown beside the Unlock button, so the user knows what it does
/// before pressing it.
pub fn unlock_scope(lang: Lang, scope: &UnlockScope) -> String {
    let t = lang.t();
    if scope.is_empty() {
        return t.unlock_nothing.to_string();
    }
    let mut parts = Vec::new();
    if let Some(names) = &scope.code_only {
        parts.push(if names.is_empty() {
            t.unlock_code_only.to_string()
        } else {
            format!("{} ({})", t.unlock_code_only, names.join(", "))
        });
    }
    parts.extend(
        scope
            .radius
            .iter()
            .map(|n| format!("{} {n}", t.unlock_radius)),
    );
    parts.extend(scope.pam.iter().map(|s| format!("{} {s}", t.unlock_pam)));
    format!("{} {}. {}", t.unlock_scope, parts.join("; "), t.unlock_rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unlock_says_what_it_unlocks() {
        let mut scope = UnlockScope {
            code_only: Some(vec!["rd-gateway".into()]),
            ..UnlockScope::default()
        };
        let en = unlock_scope(Lang::En, &scope);
        assert!(en.contains("remote desktop (rd-gateway)"), "{en}");
        assert!(en.contains("Every other login still asks"), "{en}");
        assert!(!en.contains("sshd"), "{en}");
        scope.pam.push("sshd".into());
        scope.radius.push("vpn".into());
        let nl = unlock_scope(Lang::Nl, &scope);
        assert!(nl.contains("de gateway vpn"), "{nl}");
        assert!(nl.contains("aanmeldingen via de dienst sshd"), "{nl}");
        let none = unlock_scope(Lang::En, &UnlockScope::default());
        assert!(none.contains("lets no login in"), "{none}");
    }

    /// The `{name}` holes of the texts are the same in both languages, so no value is
    /// left out (or a hole left open) in one of them.
    #[test]
    fn both_languages_have_the_same_placeholders() {
        let holes = |t: &T| {
            let dbg = format!("{t:?}");
            let mut v: Vec<String> = dbg
                .split('{')
                .skip(2)
                .filter_map(|r| r.split_once('}').map(|(k, _)| k.to_string()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(holes(&EN), holes(&NL));
        let p = mfa_model::TotpParams {
            algorithm: mfa_model::Algorithm::SHA1,
            digits: 6,
            period: 30,
        };
        assert_eq!(
            key_kind(&NL, &p),
            "tijdgebaseerd, SHA1, 6 cijfers, elke 30 seconden"
        );
        assert_eq!(
            key_kind(&EN, &p),
            "time-based, SHA1, 6 digits, every 30 seconds"
        );
    }

    #[test]
    fn language_choice() {
        assert_eq!(Lang::choose(Some("nl"), Some("en")), Lang::Nl);
        assert_eq!(
            Lang::choose(None, Some("nl-NL,nl;q=0.9,en;q=0.8")),
            Lang::Nl
        );
        assert_eq!(Lang::choose(None, Some("de,en;q=0.5,nl;q=0.4")), Lang::En);
        assert_eq!(Lang::choose(None, Some("fr")), Lang::En);
        assert_eq!(Lang::choose(Some("xx"), None), Lang::En);
    }
}
