//! Why a check could not run at all (as opposed to the problems it finds).

use ext4_blockdev::DeviceError;

/// An operational error: the device failed or the caller stopped the check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The device reported an error.
    #[error("device error: {0}")]
    Device(#[from] DeviceError),
    /// A repair needs the device writable.
    #[error("repairs need a writable device")]
    ReadOnly,
    /// A repair could not be committed.
    #[error("writing the repairs failed: {0}")]
    Commit(String),
}

/// Result of the crate's operations.
pub type Result<T, E = CheckError> = std::result::Result<T, E>;
