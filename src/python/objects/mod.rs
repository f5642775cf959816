//! Ordinary Python objects in the target: where their fields are per version ([`layout`]),
//! which built-in type an object is ([`known`]), reading their values under a budget
//! ([`read`]), dicts and instance attributes in every layout ([`dict`]), and showing them as
//! Python would ([`repr`]). Used for frame locals, thread names and the collector's state.

pub mod dict;
pub mod known;
pub mod layout;
pub mod read;
pub mod repr;

pub use known::{Builtin, Known};
pub use layout::ObjectLayout;
pub use read::{ObjectError, Objects};
