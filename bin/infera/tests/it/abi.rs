//! Committed contract artifacts and hand-rolled ABI encoding for static types.

use alloy_primitives::{Address, B256, U256, keccak256};
use serde_json::Value;

use crate::http::bytes;

pub struct Artifact {
    pub abi: Value,
    pub bytecode: Vec<u8>,
    pub deployed: Vec<u8>,
}

impl Artifact {
    fn parse(json: &str) -> Artifact {
        let v: Value = serde_json::from_str(json).expect("artifact JSON");
        let a = Artifact {
            abi: v["abi"].clone(),
            bytecode: bytes(&v["bytecode"]),
            deployed: bytes(&v["deployedBytecode"]),
        };
        assert!(a.abi.is_array() && !a.bytecode.is_empty() && !a.deployed.is_empty());
        a
    }

    /// Asserts the ABI has a function/event/error `name` (keeps artifacts and tests in sync).
    pub fn has(&self, kind: &str, name: &str) -> bool {
        self.abi
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == kind && e["name"] == name)
    }
}

pub fn storage() -> Artifact {
    Artifact::parse(include_str!("../contracts/out/Storage.json"))
}

pub fn erc20() -> Artifact {
    Artifact::parse(include_str!("../contracts/out/ERC20.json"))
}

pub fn selector(sig: &str) -> [u8; 4] {
    keccak256(sig.as_bytes())[..4].try_into().unwrap()
}

pub fn topic(sig: &str) -> B256 {
    keccak256(sig.as_bytes())
}

pub fn w(n: u64) -> B256 {
    B256::from(U256::from(n).to_be_bytes::<32>())
}

pub fn w256(n: U256) -> B256 {
    B256::from(n.to_be_bytes::<32>())
}

pub fn wa(a: Address) -> B256 {
    a.into_word()
}

/// selector(sig) ++ words.
pub fn calldata(sig: &str, words: &[B256]) -> Vec<u8> {
    let mut out = selector(sig).to_vec();
    for x in words {
        out.extend_from_slice(x.as_slice());
    }
    out
}

pub fn u256_of(ret: &[u8]) -> U256 {
    assert_eq!(
        ret.len(),
        32,
        "expected one ABI word, got 0x{}",
        alloy_primitives::hex::encode(ret)
    );
    U256::from_be_slice(ret)
}

/// Storage slot of `mapping[key]` where the mapping sits at `slot`.
pub fn mapping_slot(key: B256, slot: u64) -> B256 {
    let mut b = key.to_vec();
    b.extend_from_slice(w(slot).as_slice());
    keccak256(b)
}

/// ABI encoding of `Error(string)`.
pub fn error_string(reason: &str) -> Vec<u8> {
    let mut out = selector("Error(string)").to_vec();
    out.extend_from_slice(w(32).as_slice());
    out.extend_from_slice(w(reason.len() as u64).as_slice());
    let mut r = reason.as_bytes().to_vec();
    r.resize(reason.len().div_ceil(32) * 32, 0);
    out.extend_from_slice(&r);
    out
}

/// Decodes `Error(string)` revert data.
pub fn decode_error_string(data: &[u8]) -> Option<String> {
    if data.len() < 68 || data[..4] != selector("Error(string)") {
        return None;
    }
    let len = U256::from_be_slice(&data[36..68]).to::<usize>();
    let s = data.get(68..68 + len)?;
    String::from_utf8(s.to_vec()).ok()
}
