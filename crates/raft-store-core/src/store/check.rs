//! [`EntryCheck`]: how the log store makes sure that an entry it acknowledges is read back as
//! written.

use std::fmt;

/// How `append` makes sure that every entry it acknowledges comes back as written.
///
/// Before anything is written, `append` encodes each entry and decodes it again. What it then
/// checks depends on this:
///
/// - [`EntryCheck::equal`] / [`EntryCheck::compare`]: the decoded entry must be *equal* to the
///   one given. This is the only check that sees every careless payload under any codec: no
///   check of bytes can (under bincode a value can read back as another value that encodes to
///   the very same bytes, and a `HashMap` re-encodes in another order although it is equal).
///   Its cost is one comparison per entry on top of the decode.
/// - The default of a self-describing codec ([`MessagePack`](crate::codec::MessagePack)): the
///   entry must decode. Such a codec names every field, length and tag, so a value that decodes
///   has the shape it was written with. One shape no self-describing serde format keeps (a
///   `Some` around a value that serializes as nothing: `Some(None)`, `Some(())`) is seen only
///   by a comparison.
/// - [`EntryCheck::trust_payload_encoding`]: the entry must decode, nothing more, under any
///   codec. With [`Bincode`](crate::Bincode) or [`Postcard`](crate::Postcard) this acknowledges
///   entries that are read back as *different values* whenever the payload type carries one of
///   these serde attributes: `skip_serializing_if`, `skip_serializing` (with `default`),
///   `flatten`, `untagged`, `tag = "..."` (internally tagged enums), or holds
///   `serde_json::Value` or any type whose `Serialize` writes a varying shape. Choose it only
///   for payload types you control and have checked with
///   [`check_round_trip`](crate::codec::check_round_trip).
///
/// **A refusal stops the raft node.** An entry refused by `append` reaches openraft as a storage
/// error, which openraft treats as fatal: the `Raft` shuts down and every later write fails
/// until the process restarts (with the entry not written, so nothing is lost on disk). That is
/// the safe outcome: the alternative is a log that holds, on every node, a value other than the
/// one the client wrote. To refuse a bad request to the client instead, check its payload
/// before `client_write` with [`check_round_trip`](crate::codec::check_round_trip) under the
/// store's codec.
pub struct EntryCheck<T> {
    pub(crate) kind: CheckKind<T>,
}

pub(crate) enum CheckKind<T> {
    /// The entry must decode (the codec is self-describing, or the application trusts it).
    Decodes { trusted: bool },
    /// The decoded entry must be equal to the given one.
    Compare(fn(&T, &T) -> bool),
}

impl<T> EntryCheck<T> {
    /// Compare each decoded entry with the given one by `==`.
    pub fn equal() -> Self
    where
        T: PartialEq,
    {
        Self::compare(|a, b| a == b)
    }

    /// Compare each decoded entry with the given one by `eq` (for an entry type without
    /// `PartialEq`, or one whose `==` is not the equality that matters, such as NaN payloads).
    pub fn compare(eq: fn(&T, &T) -> bool) -> Self {
        Self {
            kind: CheckKind::Compare(eq),
        }
    }

    /// Only check that each entry decodes, even under a codec that is not self-describing: the
    /// application promises that its payload types encode the same shape whatever their value.
    /// See the type's docs for the serde attributes that break this promise.
    pub fn trust_payload_encoding() -> Self {
        Self {
            kind: CheckKind::Decodes { trusted: true },
        }
    }

    /// The check of a store opened with [`open`](crate::LineLogStore::open): decodes only.
    pub(crate) fn decodes() -> Self {
        Self {
            kind: CheckKind::Decodes { trusted: false },
        }
    }

    /// What the check is, for messages.
    pub(crate) fn describe(&self) -> &'static str {
        match self.kind {
            CheckKind::Decodes { trusted: false } => "decodes (self-describing codec)",
            CheckKind::Decodes { trusted: true } => "decodes (payload encoding trusted)",
            CheckKind::Compare(_) => "compares values",
        }
    }
}

impl<T> Clone for EntryCheck<T> {
    fn clone(&self) -> Self {
        Self {
            kind: match self.kind {
                CheckKind::Decodes { trusted } => CheckKind::Decodes { trusted },
                CheckKind::Compare(eq) => CheckKind::Compare(eq),
            },
        }
    }
}

impl<T> fmt::Debug for EntryCheck<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryCheck({})", self.describe())
    }
}
