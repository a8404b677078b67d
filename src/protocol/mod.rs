//! The Stratum dialects a proxy entry can speak, chosen per proxy by a plain enum (static dispatch: the hot
//! path is a `match`, never a trait object).
//!
//! Adding a dialect means adding a variant here, a module beside `stratum`, and the arms the compiler then
//! asks for in `downstream` and `upstream`.

pub mod json;
pub mod stratum;

use crate::config::ProtocolKind;

/// The dialect of one proxy entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Bitcoin Stratum V1 (SHA256d).
    Stratum,
}

impl Dialect {
    /// The dialect for a configured protocol, or `None` when this build does not speak it.
    pub fn for_kind(kind: ProtocolKind) -> Option<Dialect> {
        match kind {
            ProtocolKind::Stratum => Some(Dialect::Stratum),
            ProtocolKind::Equihash => None,
        }
    }
}
