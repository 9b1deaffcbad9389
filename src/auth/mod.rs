//! Identity: who is calling, from a verified token only (`docs/protocol.md` §2). JWT issue/verify,
//! password hashing, and the REST extractor that turns `Authorization: Bearer` into a [`Caller`].

mod claims;
mod disabled;
mod external;
mod extractor;
mod jwt;
mod password;

pub use crate::user::Role;
pub use claims::{Claims, Identity, Issuer};
pub use disabled::{AccountKey, DisabledUsers};
pub use external::{ClaimPath, ExternalIssuer};
pub use extractor::{Caller, bearer_token};
pub use jwt::{IssuedToken, TokenRejected, TokenService};
pub use password::{PasswordHashError, PasswordHasher};
