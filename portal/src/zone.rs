//! Times as a person reads them: in a time zone (the system's time zone database, through
//! jiff), with the zone's abbreviation, to the minute. The console uses the administrator's
//! chosen zone; My account the server's own (no script tells the browser's zone).

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// A time zone and the name it was chosen by.
#[derive(Clone, Debug)]
pub struct Zone {
    pub name: String,
    tz: TimeZone,
}

impl Zone {
    /// The zone of the IANA name (`Europe/Amsterdam`), if the system's database has it.
    pub fn named(name: &str) -> Option<Zone> {
        let name = name.trim();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        {
            return None;
        }
        let tz = TimeZone::get(name).ok()?;
        Some(Zone {
            name: name.to_string(),
            tz,
        })
    }

    /// The server's own zone (`/etc/localtime`), UTC where it cannot be read.
    pub fn system() -> Zone {
        let tz = TimeZone::try_system().unwrap_or(TimeZone::UTC);
        let name = tz.iana_name().unwrap_or("UTC").to_string();
        Zone { name, tz }
    }

    /// The server's own zone, read once: what My account shows times in (a page without
    /// script cannot learn the browser's zone).
    pub fn server() -> &'static Zone {
        static SERVER: std::sync::OnceLock<Zone> = std::sync::OnceLock::new();
        SERVER.get_or_init(Zone::system)
    }

    /// `2026-03-01 14:05 CET`.
    pub fn show(&self, t: i64) -> String {
        match Timestamp::from_second(t) {
            Ok(ts) => ts
                .to_zoned_datetime(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string(),
            Err(_) => mfa_config::format_utc(t),
        }
    }

    /// `2026-03-01 14:05:09 CET`: to the second, where a person compares two times of
    /// one page visit (My account's "last changed" before and after Replace key).
    pub fn show_seconds(&self, t: i64) -> String {
        match Timestamp::from_second(t) {
            Ok(ts) => ts
                .to_zoned_datetime(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S %Z")
                .to_string(),
            Err(_) => mfa_config::format_utc(t),
        }
    }

    /// `2026-03-01`: the day of `t` in this zone.
    pub fn day(&self, t: i64) -> String {
        match Timestamp::from_second(t) {
            Ok(ts) => ts
                .to_zoned_datetime(self.tz.clone())
                .strftime("%Y-%m-%d")
                .to_string(),
            Err(_) => mfa_config::format_utc(t)[..10].to_string(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_in_the_chosen_zone() {
        let ams = Zone::named("Europe/Amsterdam").unwrap();
        // 2026-01-15T12:00:00Z is 13:00 in Amsterdam (CET), 2026-07-15 14:00 (CEST).
        assert_eq!(ams.show(1_768_478_400), "2026-01-15 13:00 CET");
        assert_eq!(ams.show(1_784_116_800), "2026-07-15 14:00 CEST");
        let utc = Zone::named("UTC").unwrap();
        assert_eq!(utc.show(1_768_478_400), "2026-01-15 12:00 UTC");
        assert_eq!(utc.day(1_768_478_400), "2026-01-15");
        assert_eq!(ams.show_seconds(1_768_478_409), "2026-01-15 13:00:09 CET");
        for bad in [
            "",
            "Nowhere/Atlantis",
            "../../etc/passwd",
            "a b",
            "Europe/Amsterdam\n",
        ] {
            assert!(Zone::named(bad).is_none() || bad.trim() != bad, "{bad:?}");
        }
        assert!(Zone::named("Nowhere/Atlantis").is_none());
        assert!(Zone::named("../../etc/passwd").is_none());
    }
}
