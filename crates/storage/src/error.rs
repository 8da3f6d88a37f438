//! Errors of the storage crate.

use crate::tables::Table;
use signet_libmdbx::{MdbxError, ReadError};
use std::path::PathBuf;

/// Result type of the storage crate.
pub type StorageResult<T> = Result<T, StorageError>;

/// Everything that can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An MDBX operation failed.
    #[error("mdbx: {0}")]
    Mdbx(#[from] MdbxError),
    /// An MDBX read failed.
    #[error("mdbx read: {0}")]
    Read(#[from] ReadError),
    /// A stored value (or key) could not be decoded.
    #[error("corrupt entry in table {table}, key 0x{key}: {reason}")]
    Corrupt {
        /// Table name.
        table: &'static str,
        /// Key, hex-encoded.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The database was written by a different version of the table layout.
    #[error(
        "the database was written with table layout version {found}, but this build reads only \
         layout version {expected}; re-sync into a fresh --datadir, or run the infera release \
         that writes layout version {found}"
    )]
    SchemaMismatch {
        /// Version found in the database.
        found: u64,
        /// Version this build writes.
        expected: u64,
    },
    /// A directory opened read-only holds no infera database.
    #[error("{path} holds no infera database: {reason}")]
    NotADatabase {
        /// The directory.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A file of the database could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The state could not be verified at all (as opposed to a verification
    /// that ran and found a mismatch, see `VerifyReport`).
    #[error("cannot verify the state: {0}")]
    Verify(String),
    /// A key or value passed in does not fit the table's limits.
    #[error("invalid input for table {table}: {reason}")]
    InvalidInput {
        /// Table name.
        table: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// A block could not be unwound because data it needs is missing.
    #[error("cannot unwind: {0}")]
    Unwind(String),
}

impl StorageError {
    /// A corrupt-entry error for `table` at `key`.
    pub(crate) fn corrupt(table: Table, key: &[u8], reason: impl std::fmt::Display) -> Self {
        Self::Corrupt {
            table: table.name(),
            key: hex_lower(key),
            reason: reason.to_string(),
        }
    }

    /// An invalid-input error for `table`.
    pub(crate) fn invalid(table: Table, reason: impl std::fmt::Display) -> Self {
        Self::InvalidInput {
            table: table.name(),
            reason: reason.to_string(),
        }
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
