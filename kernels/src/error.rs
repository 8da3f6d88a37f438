//! The one error type of the inference engine.

use thiserror::Error;

/// Result alias for the inference engine.
pub type ModelResult<T> = Result<T, ModelError>;

/// Everything that can be wrong with a model or an inference request.
///
/// Every variant is deterministic: the same bytes give the same error on every
/// node, so precompiles can turn it into a revert with a reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModelError {
    /// The file ended before a field could be read.
    #[error("truncated: needed {needed} bytes at offset {offset}, file has {len}")]
    Truncated {
        /// Offset of the field that could not be read.
        offset: usize,
        /// Bytes the field needs.
        needed: usize,
        /// Total length of the input.
        len: usize,
    },
    /// The first bytes are not the model magic.
    #[error("bad magic: not an infera model")]
    BadMagic,
    /// The format version is not one this engine knows.
    #[error("unsupported model format version {0}")]
    UnsupportedVersion(u16),
    /// Bytes were left over after the declared end of the model.
    #[error("{extra} trailing bytes after the model at offset {offset}")]
    TrailingBytes {
        /// Where the model ended.
        offset: usize,
        /// How many bytes followed.
        extra: usize,
    },
    /// A field holds a value outside its encoding (unknown tag, reserved bits).
    #[error("invalid field `{field}` at offset {offset}: {value}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// Offset of the field.
        offset: usize,
        /// The value read.
        value: u64,
    },
    /// A named limit from [`crate::limits`] was exceeded.
    #[error("limit {limit} exceeded: {actual} > {max}")]
    LimitExceeded {
        /// Name of the limit constant.
        limit: &'static str,
        /// The limit.
        max: u64,
        /// The value found.
        actual: u64,
    },
    /// A node is inconsistent (wrong input count, shapes, parameters).
    #[error("node {node} ({op}): {reason}")]
    InvalidNode {
        /// Index of the node in the graph.
        node: usize,
        /// Operator name.
        op: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Some input could drive an int32 accumulator out of range.
    #[error("node {node}: output channel {channel} could overflow its int32 accumulator")]
    AccumulatorOverflow {
        /// Index of the node.
        node: usize,
        /// Output channel whose bound exceeds i32.
        channel: usize,
    },
    /// The declared output does not match what the graph produces.
    #[error("declared output {declared} does not match the graph's {inferred}")]
    OutputMismatch {
        /// What the header declares.
        declared: String,
        /// What shape inference found.
        inferred: String,
    },
    /// The inference input has the wrong length.
    #[error("input has {actual} bytes, the model expects {expected}")]
    InputLength {
        /// Bytes the input spec requires.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}
