//! Password hashing (argon2id with OWASP's parameters) and the password policy.

use std::sync::OnceLock;

use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;
/// Longest password accepted (bounds the hashing work an attacker can ask for).
pub const MAX_LENGTH: usize = 256;

/// The most common passwords, refused whatever their length.
const COMMON: [&str; 20] = [
    "123456",
    "123456789",
    "12345678",
    "password",
    "qwerty123",
    "qwerty1",
    "111111",
    "12345",
    "secret",
    "123123",
    "1234567890",
    "1234567",
    "000000",
    "qwerty",
    "abc123",
    "password1",
    "iloveyou",
    "11111111",
    "qwertyuiop",
    "password123",
];

fn hasher() -> Argon2<'static> {
    // OWASP: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Fewest different characters a password must have ("aaaaaaaaaa" and "abababababab" guess
/// in a few tries whatever their length).
pub const MIN_DISTINCT: usize = 5;

/// Why a password for the account `email` is refused, or `None` when it is acceptable. As
/// NIST SP 800-63B asks: long enough, not a common or repetitive one, and not the account's
/// own name; no rules on character classes.
pub fn policy_violation(password: &str, email: &str) -> Option<String> {
    let len = password.chars().count();
    if len < MIN_LENGTH {
        return Some(format!("password must be at least {MIN_LENGTH} characters"));
    }
    if len > MAX_LENGTH {
        return Some(format!("password must be at most {MAX_LENGTH} characters"));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) {
        return Some("password is too common".into());
    }
    let mut distinct: Vec<char> = lower.chars().filter(|c| !c.is_whitespace()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < MIN_DISTINCT {
        return Some(format!(
            "password must have at least {MIN_DISTINCT} different characters besides spaces"
        ));
    }
    // The account's email and its name add no secrecy: without them, what is left must
    // still be long enough.
    let email = email.trim().to_lowercase();
    let name = email.split('@').next().unwrap_or_default();
    let mut rest = lower.replace(&email, "");
    if name.chars().count() >= 3 {
        rest = rest.replace(name, "");
    }
    if rest.chars().count() < MIN_LENGTH {
        return Some(format!(
            "password must have at least {MIN_LENGTH} characters besides your email address"
        ));
    }
    None
}

/// A PHC-format argon2id hash of the password with a fresh salt.
pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing succeeds")
        .to_string()
}

/// Whether the password matches the stored hash.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| hasher().verify_password(password.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

/// Spend the same work as a real verification, for unknown accounts, so that timing does
/// not tell which emails are registered.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy-password-for-timing"));
    let _ = verify(password, stored);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterY", &h));
        assert_ne!(h, hash("correct horse battery"));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn policy_refuses_short_long_common_repetitive_and_the_accounts_own_name() {
        let email = "Ada.Lovelace@example.com";
        let refused = [
            "short".to_owned(),
            "Password123".to_owned(),
            "x".repeat(MAX_LENGTH + 1),
            " ".repeat(12),
            "aaaaaaaaaaaa".to_owned(),
            "abababababab".to_owned(),
            "ab ab ab ab ab cd".to_owned(),
            "ada.lovelace@example.com".to_owned(),
            "my ada.lovelace 1999".to_owned(),
        ];
        for p in refused {
            assert!(policy_violation(&p, email).is_some(), "{p:?} was accepted");
        }
        assert_eq!(policy_violation("a long enough passphrase", email), None);
        assert_eq!(policy_violation("abcde12345", email), None);
        // The name among enough else is fine.
        assert_eq!(
            policy_violation("a strong admin passphrase", "admin@example.com"),
            None
        );
        assert!(policy_violation("admin2024!!", "admin@example.com").is_some());
        // A name too short to guess from is not held against the password.
        assert_eq!(policy_violation("bo and a phrase", "bo@example.com"), None);
    }
}
