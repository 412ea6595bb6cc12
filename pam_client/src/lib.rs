//! PAM client FFI: placeholder until the RADIUS issue lands.
