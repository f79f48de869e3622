//! The language aula speaks to people: Portuguese where the environment
//! asks for it (`LC_ALL`, `LC_MESSAGES` or `LANG` starting with `pt`),
//! English otherwise. The words themselves live in `locales/app.yml`.

/// The locale codes of `locales/app.yml`.
pub const ENGLISH: &str = "en";
pub const PORTUGUESE: &str = "pt";

/// The language of messages for people, from the environment as POSIX
/// orders it: the first of `LC_ALL`, `LC_MESSAGES`, `LANG` that is set.
pub fn from_env() -> &'static str {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let chosen = get("LC_ALL")
        .or_else(|| get("LC_MESSAGES"))
        .or_else(|| get("LANG"));
    match chosen {
        Some(v) if v.starts_with("pt") => PORTUGUESE,
        _ => ENGLISH,
    }
}

#[cfg(test)]
mod tests {
    use rust_i18n::t;

    #[test]
    fn every_message_exists_in_both_languages() {
        let catalogue = include_str!("../locales/app.yml");
        let keys: Vec<&str> = catalogue
            .lines()
            .filter(|l| !l.starts_with([' ', '#', '_']) && l.ends_with(':'))
            .map(|l| l.trim_end_matches(':'))
            .collect();
        assert!(keys.len() > 40, "{} keys", keys.len());
        for key in keys {
            for lang in [super::ENGLISH, super::PORTUGUESE] {
                let text = t!(key, locale = lang);
                assert_ne!(text, key, "`{key}` has no {lang} text");
            }
            // A message made only of placeholders reads the same in both.
            if key == "cause.runner_failed" {
                continue;
            }
            assert_ne!(
                t!(key, locale = super::ENGLISH),
                t!(key, locale = super::PORTUGUESE),
                "`{key}` is not translated"
            );
        }
    }
}
