//! Bearer tokens of the client API and their roles.
//!
//! The auth file (`--auth-file`) has one token a line, `read <token>` or `write <token>`;
//! blank lines and lines starting with `#` are skipped. A `read` token may read keys, `/status`
//! and `/metrics`; a `write` token may also write, delete, join and leave. Every node of a
//! cluster should have the same file: a follower forwards the caller's token to the leader,
//! which checks it again.

use std::fmt;
use std::path::Path;

use crate::Error;

/// The shortest token accepted: a guessable token is no protection.
pub const MIN_TOKEN_LEN: usize = 16;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Reads: `GET` of keys, `/status`, `/metrics`.
    Read,
    /// Reads and every change: writes, deletes, `/join`, `/leave`.
    Write,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
        })
    }
}

/// Why a request was not authorized.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header (401 / `UNAUTHENTICATED`).
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    /// A token the node does not know (401 / `UNAUTHENTICATED`).
    #[error("unknown token")]
    Unknown,
    /// A known token whose role is too low (403 / `PERMISSION_DENIED`).
    #[error("this token has the {has} role; this request needs {need}")]
    Forbidden {
        /// The token's role.
        has: Role,
        /// The role the request needs.
        need: Role,
    },
}

/// A token held by this process (the join token): its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The tokens of an auth file. Its `Debug` shows how many tokens, never a token.
#[derive(Clone, PartialEq, Eq)]
pub struct Auth {
    tokens: Vec<(String, Role)>,
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth({} tokens)", self.tokens.len())
    }
}

impl Auth {
    /// Read the auth file at `path`.
    pub fn load(path: &Path) -> Result<Auth, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Io(format!("reading the auth file {}", path.display()), e))?;
        Auth::parse(&text).map_err(|e| Error::setup(format!("--auth-file {}", path.display()), e))
    }

    /// Parse the text of an auth file; an error names the line.
    pub fn parse(text: &str) -> Result<Auth, String> {
        let mut tokens: Vec<(String, Role)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let n = n + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(role), Some(token), None) = (words.next(), words.next(), words.next()) else {
                return Err(format!("line {n}: expected `read <token>` or `write <token>`"));
            };
            let role = match role {
                "read" => Role::Read,
                "write" => Role::Write,
                other => {
                    return Err(format!(
                        "line {n}: unknown role {other:?}; the roles are read and write"
                    ));
                }
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err(format!(
                    "line {n}: a token of {} characters; at least {MIN_TOKEN_LEN} are needed",
                    token.len()
                ));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!("line {n}: a token must be printable ASCII"));
            }
            if let Some(at) = tokens.iter().position(|(t, _)| t == token) {
                return Err(format!("line {n}: the token of entry {} again", at + 1));
            }
            tokens.push((token.to_string(), role));
        }
        if tokens.is_empty() {
            return Err("no tokens: every request would be refused".into());
        }
        Ok(Auth { tokens })
    }

    /// Check the value of an `Authorization` header (or gRPC `authorization` metadata) for a
    /// request that needs `need`: the token's role if it may.
    pub fn check(&self, header: Option<&[u8]>, need: Role) -> Result<Role, AuthError> {
        let token = header.and_then(bearer).ok_or(AuthError::Missing)?;
        // Compare with every token in time independent of where they differ, so the answer
        // time tells nothing about a token's prefix.
        let mut found = None;
        for (known, role) in &self.tokens {
            if constant_time_eq(known.as_bytes(), token) {
                found = Some(*role);
            }
        }
        let has = found.ok_or(AuthError::Unknown)?;
        if has < need {
            return Err(AuthError::Forbidden { has, need });
        }
        Ok(has)
    }
}

/// The token of `Bearer <token>` (the scheme in any case).
fn bearer(header: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = header.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const R: &str = "read-token-0123456789";
    const W: &str = "write-token-0123456789";

    #[test]
    fn roles_are_checked_and_headers_parsed() {
        let auth = Auth::parse(&format!("# tokens\n\nread {R}\n  write {W}  \n")).unwrap();
        let h = |t: &str| format!("Bearer {t}").into_bytes();
        assert_eq!(auth.check(Some(&h(R)), Role::Read), Ok(Role::Read));
        assert_eq!(
            auth.check(Some(&h(R)), Role::Write),
            Err(AuthError::Forbidden {
                has: Role::Read,
                need: Role::Write
            })
        );
        assert_eq!(auth.check(Some(&h(W)), Role::Write), Ok(Role::Write));
        assert_eq!(
            auth.check(Some(format!("bearer  {W}").as_bytes()), Role::Write),
            Ok(Role::Write)
        );
        assert_eq!(auth.check(None, Role::Read), Err(AuthError::Missing));
        assert_eq!(
            auth.check(Some(format!("Basic {W}").as_bytes()), Role::Read),
            Err(AuthError::Missing)
        );
        assert_eq!(
            auth.check(Some(&h("write-token-012345678")), Role::Read),
            Err(AuthError::Unknown)
        );
        assert!(!format!("{auth:?}").contains(R));
    }

    #[test]
    fn bad_lines_are_named() {
        for (text, want) in [
            (format!("read {R}\nadmin {W}\n"), "line 2: unknown role \"admin\""),
            (format!("write {W} extra\n"), "line 1: expected"),
            ("read\n".to_string(), "line 1: expected"),
            (
                "# only\nwrite short\n".to_string(),
                "line 2: a token of 5 characters",
            ),
            (
                format!("read {R}\nwrite {R}\n"),
                "line 2: the token of entry 1 again",
            ),
            ("# nothing\n".to_string(), "no tokens"),
        ] {
            let err = Auth::parse(&text).unwrap_err();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }
}
