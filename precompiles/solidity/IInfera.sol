// SPDX-License-Identifier: MIT OR Apache-2.0
// The AI precompiles' Solidity interface. It mirrors precompiles/src/abi.rs
// (the single source of truth) declaration for declaration: a test in the
// node's end-to-end suite compares the compiled ABI with the Rust one.
pragma solidity ^0.8.24;

// The model registry precompile.
address constant MODEL_REGISTRY = address(uint160(0x0a1001));
// The inference precompile.
address constant INFERENCE = address(uint160(0x0a1002));
// Largest model the registry accepts, in bytes (1 MiB: one inference pays the
// cold load of its model, and a larger one would not fit one transaction).
uint32 constant MAX_MODEL_BYTES = 1024 * 1024;

/// What the registry knows about a registered model.
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

/// The custom errors both precompiles revert with. Contracts that call them
/// inherit this interface so the errors appear in their own ABI, and wallets
/// and explorers decode a bubbled-up revert by name.
interface IInferaErrors {
    /// No registered model has this id.
    error UnknownModel(bytes32 id);
    /// The model's upload has begun but not completed.
    error UploadIncomplete(bytes32 id, uint32 received, uint32 size);
    /// The input tensor has the wrong number of bytes.
    error InvalidInputLength(bytes32 id, uint256 expected, uint256 actual);
    /// The model bytes failed validation; `reason` names the problem.
    error InvalidModel(bytes32 id, string reason);
    /// Declared or actual size above `MAX_MODEL_BYTES` (or zero).
    error InvalidModelSize(uint256 size, uint256 max);
    /// The uploaded bytes do not hash to the id the upload was begun with.
    error ModelHashMismatch(bytes32 expected, bytes32 actual);
    /// The caller has no upload of `id` in progress.
    error NoUpload(address uploader, bytes32 id);
    /// `beginUpload` with a size other than that of the upload in progress.
    error UploadSizeConflict(bytes32 id, uint32 size, uint32 requested);
    /// A chunk not at the end of the bytes received so far.
    error ChunkOutOfOrder(bytes32 id, uint32 expectedOffset, uint32 offset);
    /// A chunk that would run past the declared size.
    error ChunkOutOfBounds(bytes32 id, uint32 offset, uint32 length, uint32 size);
    /// A state-changing registry function called with STATICCALL.
    error WriteInStaticCall();
    /// Unknown selector or undecodable arguments; `reason` says which.
    error MalformedCall(string reason);
}

/// The model registry precompile at `MODEL_REGISTRY`.
interface IModelRegistry is IInferaErrors {
    event UploadProgress(bytes32 indexed id, address indexed uploader, uint32 received, uint32 size);
    event ModelRegistered(bytes32 indexed id, address indexed uploader, uint32 size, uint64 inferenceGas);

    /// Uploads and registers a whole model in one call; returns its id.
    /// Registering a model that is already registered succeeds and changes nothing.
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
}

/// The inference precompile at `INFERENCE`; callable with STATICCALL.
interface IInference is IInferaErrors {
    /// Runs model `id` on `input` (exactly `inputBytes` bytes) and returns the
    /// output tensor's bytes (little-endian for int32).
    function infer(bytes32 id, bytes calldata input) external view returns (bytes memory output);
    /// As `infer`, returning the index of the largest output element (the
    /// first one on ties).
    function inferArgmax(bytes32 id, bytes calldata input) external view returns (uint256 label);
}
