//! Off-chain tools for infera models. Floating point is fine here: nothing in
//! this crate runs in consensus. It turns float ONNX models into the integer
//! format of `infera-kernels` ([`import`]), reads and writes `.npy` arrays
//! ([`npy`]), and formats `inspect` / `run` output for the CLI ([`tool`]).

pub mod cli;
pub mod import;
pub mod npy;
pub mod tool;

pub use import::{ImportReport, import_onnx};

/// The one error type of the model tools.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A `.npy` file is malformed or of an unsupported kind.
    #[error("npy: {0}")]
    Npy(String),
    /// tract could not parse or run the ONNX model.
    #[error("onnx: {0}")]
    Onnx(String),
    /// The ONNX graph uses something the importer does not support.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The integer model was rejected by the engine.
    #[error("model: {0}")]
    Model(#[from] infera_kernels::ModelError),
    /// Input data does not fit the model.
    #[error("input: {0}")]
    Input(String),
}

/// Result alias of the model tools.
pub type ToolResult<T> = Result<T, ToolError>;

/// Read a whole file, naming it in the error.
pub fn read_file(path: &std::path::Path) -> ToolResult<Vec<u8>> {
    std::fs::read(path).map_err(|source| ToolError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Write a whole file, naming it in the error.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> ToolResult<()> {
    std::fs::write(path, bytes).map_err(|source| ToolError::Io {
        path: path.display().to_string(),
        source,
    })
}
