//! Proof-of-authority consensus (EIP-225 style).
