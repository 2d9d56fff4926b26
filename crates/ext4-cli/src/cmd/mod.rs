//! One module per subcommand (small editing commands share `edit`).

pub mod cat;
pub mod edit;
pub mod get;
pub mod info;
pub mod ls;
pub mod mkfs;
pub mod mount;
pub mod put;
pub mod stat;
pub mod xattr;
