//! pam_mfa: placeholder until the PAM issue lands.
