//! Dev accounts and transaction signing (alloy-consensus + secp256k1).

use alloy_consensus::{SignableTransaction, Signed, TxEip1559, TxLegacy};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use secp256k1::{Message, SECP256K1, SecretKey};

use crate::node::CHAIN_ID;

pub const GWEI: u128 = 1_000_000_000;
/// Default fees used by the tests: max fee 10 gwei, tip 1 gwei.
pub const MAX_FEE: u128 = 10 * GWEI;
pub const TIP: u128 = GWEI;

pub fn ether(n: u64) -> U256 {
    U256::from(n) * U256::from(10u64).pow(U256::from(18))
}

/// Private keys of `test test ... junk`, accounts 0..4.
pub const DEV_KEYS: [&str; 4] = [
    "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
];

/// Addresses of the ten funded dev accounts.
pub const DEV_ADDRESSES: [&str; 10] = [
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
    "0x90F79bf6EB2c4f870365E785982E1f101E93b906",
    "0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65",
    "0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc",
    "0x976EA74026E726554dB657fA54763abd0C3a0aa9",
    "0x14dC79964da2C08b23698B3D3cc7Ca32193d9955",
    "0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f",
    "0xa0Ee7A142d267C1f36714E4a8F75612F20a79720",
];

pub struct Wallet {
    sk: SecretKey,
    pub address: Address,
}

/// A signed transaction ready for eth_sendRawTransaction.
#[derive(Clone, Debug)]
pub struct SignedTx {
    pub raw: Vec<u8>,
    pub hash: B256,
    pub signature: Signature,
}

impl Wallet {
    pub fn from_key(hex_key: &str) -> Wallet {
        let bytes: [u8; 32] = alloy_primitives::hex::decode(hex_key)
            .unwrap()
            .try_into()
            .unwrap();
        let sk = SecretKey::from_byte_array(bytes).unwrap();
        let pk = sk.public_key(SECP256K1).serialize_uncompressed();
        Wallet {
            sk,
            address: Address::from_raw_public_key(&pk[1..]),
        }
    }

    /// Funded dev account `i` (0..4).
    pub fn dev(i: usize) -> Wallet {
        let w = Wallet::from_key(DEV_KEYS[i]);
        assert_eq!(w.address, DEV_ADDRESSES[i].parse::<Address>().unwrap());
        w
    }

    /// An unfunded account derived from `seed`.
    pub fn fresh(seed: &str) -> Wallet {
        Wallet::from_key(&alloy_primitives::hex::encode(keccak256(seed.as_bytes())))
    }

    fn sign<T: SignableTransaction<Signature>>(&self, tx: T) -> Signed<T> {
        let h = tx.signature_hash();
        let rs = SECP256K1.sign_ecdsa_recoverable(Message::from_digest(h.0), &self.sk);
        let (rec, b) = rs.serialize_compact();
        let sig = Signature::new(
            U256::from_be_slice(&b[..32]),
            U256::from_be_slice(&b[32..]),
            i32::from(rec) != 0,
        );
        tx.into_signed(sig)
    }

    pub fn sign_1559(&self, tx: TxEip1559) -> SignedTx {
        let s = self.sign(tx);
        SignedTx {
            raw: s.encoded_2718(),
            hash: *s.hash(),
            signature: *s.signature(),
        }
    }

    pub fn sign_legacy(&self, tx: TxLegacy) -> SignedTx {
        let s = self.sign(tx);
        SignedTx {
            raw: s.encoded_2718(),
            hash: *s.hash(),
            signature: *s.signature(),
        }
    }

    /// EIP-1559 transaction with the default fees (max 10 gwei, tip 1 gwei).
    pub fn tx(
        &self,
        nonce: u64,
        to: Option<Address>,
        value: U256,
        input: Vec<u8>,
        gas: u64,
    ) -> SignedTx {
        self.sign_1559(eip1559(nonce, to, value, input, gas))
    }

    /// Plain value transfer (21000 gas).
    pub fn transfer(&self, nonce: u64, to: Address, value: U256) -> SignedTx {
        self.tx(nonce, Some(to), value, vec![], 21_000)
    }
}

pub fn eip1559(
    nonce: u64,
    to: Option<Address>,
    value: U256,
    input: Vec<u8>,
    gas: u64,
) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: gas,
        max_fee_per_gas: MAX_FEE,
        max_priority_fee_per_gas: TIP,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value,
        input: Bytes::from(input),
        ..Default::default()
    }
}

pub fn legacy(nonce: u64, to: Option<Address>, value: U256, gas_price: u128, gas: u64) -> TxLegacy {
    TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce,
        gas_price,
        gas_limit: gas,
        to: to.map_or(TxKind::Create, TxKind::Call),
        value,
        input: Bytes::new(),
    }
}
