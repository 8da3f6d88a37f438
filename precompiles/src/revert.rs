//! Reading the custom errors of the AI precompiles back from revert data.

use alloy_sol_types::SolError;

use crate::abi::*;

/// A human-readable form of revert data produced by the AI precompiles (or by
/// a contract re-raising their errors); `None` if it is none of their errors.
pub fn describe_revert(data: &[u8]) -> Option<String> {
    fn try_decode<E: SolError + std::fmt::Debug>(data: &[u8]) -> Option<String> {
        E::abi_decode(data).ok().map(|e| format!("{e:?}"))
    }
    let selector: [u8; 4] = data.get(..4)?.try_into().ok()?;
    macro_rules! by_selector {
        ($($error:ty),* $(,)?) => {
            $(if selector == <$error>::SELECTOR { return try_decode::<$error>(data); })*
        };
    }
    by_selector!(
        UnknownModel,
        UploadIncomplete,
        InvalidInputLength,
        InvalidModel,
        InvalidModelSize,
        ModelHashMismatch,
        NoUpload,
        UploadSizeConflict,
        ChunkOutOfOrder,
        ChunkOutOfBounds,
        WriteInStaticCall,
        MalformedCall,
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{B256, U256};

    #[test]
    fn describes_known_errors_only() {
        let data = InvalidInputLength {
            id: B256::ZERO,
            expected: U256::from(64),
            actual: U256::from(3),
        }
        .abi_encode();
        let text = describe_revert(&data).unwrap();
        assert!(
            text.contains("InvalidInputLength") && text.contains("64"),
            "{text}"
        );
        assert!(describe_revert(&[1, 2, 3, 4, 5]).is_none());
        assert!(describe_revert(&[]).is_none());
    }
}
