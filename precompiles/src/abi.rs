//! The Solidity ABI of the AI precompiles: the single source of truth for
//! addresses, selectors, events and custom errors.
//!
//! Both precompiles take ordinary ABI-encoded calls (4-byte selector, then the
//! arguments), so Solidity calls them through an interface, and clients encode
//! calls with any ABI library. Every failure reverts with one of the custom
//! errors below (never a silent out-of-gas), so a caller can decode it.
//!
//! Models are identified by `keccak256` of their bytes (`ModelId`). An upload
//! is keyed by `(uploader, id)`: it is begun with the total size, filled by
//! chunks appended in order, and registered (validated, gas fixed) when the
//! last byte arrives. `register(bytes)` does all three in one call.

use alloy_primitives::{Address, address};
use alloy_sol_types::sol;

/// The model registry precompile.
pub const MODEL_REGISTRY_ADDRESS: Address = address!("00000000000000000000000000000000000a1001");

/// The inference precompile.
pub const INFERENCE_ADDRESS: Address = address!("00000000000000000000000000000000000a1002");

/// Largest model the registry accepts, in bytes.
pub const MAX_MODEL_BYTES: u32 = 1024 * 1024;

sol! {
    /// What the registry knows about a registered model.
    #[derive(Debug, PartialEq, Eq)]
    struct ModelInfo {
        /// keccak256 of the model bytes.
        bytes32 id;
        /// Model size in bytes.
        uint32 size;
        /// Who completed the upload.
        address uploader;
        /// Block in which registration completed.
        uint64 blockNumber;
        /// Inference gas fixed at registration (before the per-byte charge).
        uint64 inferenceGas;
        /// Input tensor: dtype tag (0 = int8, 1 = int32) and shape.
        uint8 inputType;
        uint32[] inputShape;
        /// Output tensor: dtype tag and shape.
        uint8 outputType;
        uint32[] outputShape;
        /// Exact byte lengths of the input and output tensors.
        uint32 inputBytes;
        uint32 outputBytes;
    }

    /// The model registry precompile at `MODEL_REGISTRY_ADDRESS`.
    #[derive(Debug, PartialEq, Eq)]
    interface IModelRegistry {
        /// Uploads and registers a whole model in one call; returns its id.
        /// Registering a model that is already registered succeeds and
        /// changes nothing.
        function register(bytes calldata model) external returns (bytes32 id);
        /// Starts (or, with the same size, resumes) the caller's upload of `id`.
        function beginUpload(bytes32 id, uint32 size) external;
        /// Appends `data` at `offset` (must equal the bytes received so far).
        /// Returns the bytes received; the chunk that completes the upload
        /// validates and registers the model.
        function uploadChunk(bytes32 id, uint32 offset, bytes calldata data) external returns (uint32 received);
        /// Drops the caller's unfinished upload of `id`.
        function cancelUpload(bytes32 id) external;
        /// Progress of `uploader`'s upload of `id` (0, 0 when there is none).
        function uploadStatus(address uploader, bytes32 id) external view returns (uint32 received, uint32 size);
        /// Details of a registered model; reverts `UnknownModel` otherwise.
        function modelInfo(bytes32 id) external view returns (ModelInfo memory info);
        /// Number of registered models.
        function modelCount() external view returns (uint256 count);
        /// Id of the `index`-th registered model, in registration order.
        function modelAt(uint256 index) external view returns (bytes32 id);

        event UploadProgress(bytes32 indexed id, address indexed uploader, uint32 received, uint32 size);
        event ModelRegistered(bytes32 indexed id, address indexed uploader, uint32 size, uint64 inferenceGas);
    }

    /// The inference precompile at `INFERENCE_ADDRESS`; callable with STATICCALL.
    #[derive(Debug, PartialEq, Eq)]
    interface IInference {
        /// Runs model `id` on `input` (exactly `inputBytes` bytes) and returns
        /// the output tensor's bytes (little-endian for int32).
        function infer(bytes32 id, bytes calldata input) external view returns (bytes memory output);
        /// As `infer`, returning the index of the largest output element
        /// (the first one on ties).
        function inferArgmax(bytes32 id, bytes calldata input) external view returns (uint256 label);
    }

    /// No registered model has this id.
    #[derive(Debug, PartialEq, Eq)]
    error UnknownModel(bytes32 id);
    /// The model's upload has begun but not completed.
    #[derive(Debug, PartialEq, Eq)]
    error UploadIncomplete(bytes32 id, uint32 received, uint32 size);
    /// The input tensor has the wrong number of bytes.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidInputLength(bytes32 id, uint256 expected, uint256 actual);
    /// The model bytes failed validation; `reason` names the problem.
    #[derive(Debug, PartialEq, Eq)]
    error InvalidModel(bytes32 id, string reason);
    /// Declared or actual size above `MAX_MODEL_BYTES` (or zero).
    #[derive(Debug, PartialEq, Eq)]
    error InvalidModelSize(uint256 size, uint256 max);
    /// The uploaded bytes do not hash to the id the upload was begun with.
    #[derive(Debug, PartialEq, Eq)]
    error ModelHashMismatch(bytes32 expected, bytes32 actual);
    /// The caller has no upload of `id` in progress.
    #[derive(Debug, PartialEq, Eq)]
    error NoUpload(address uploader, bytes32 id);
    /// `beginUpload` with a size other than that of the upload in progress.
    #[derive(Debug, PartialEq, Eq)]
    error UploadSizeConflict(bytes32 id, uint32 size, uint32 requested);
    /// A chunk not at the end of the bytes received so far.
    #[derive(Debug, PartialEq, Eq)]
    error ChunkOutOfOrder(bytes32 id, uint32 expectedOffset, uint32 offset);
    /// A chunk that would run past the declared size.
    #[derive(Debug, PartialEq, Eq)]
    error ChunkOutOfBounds(bytes32 id, uint32 offset, uint32 length, uint32 size);
    /// A state-changing registry function called with STATICCALL.
    #[derive(Debug, PartialEq, Eq)]
    error WriteInStaticCall();
    /// Unknown selector or undecodable arguments; `reason` says which.
    #[derive(Debug, PartialEq, Eq)]
    error MalformedCall(string reason);
}
