//! Unlocked dev accounts: what wallet and dApp tutorials expect of a dev node
//! (`geth --dev`, Hardhat, Anvil). With `infera node --dev` the RPC holds the
//! ten public keys the dev genesis funds ([`infera_chainspec::DEV_PRIVATE_KEYS`])
//! and signs for them:
//!
//! - `eth_accounts` lists them (an empty list on any other node);
//! - `eth_sendTransaction` fills what the request leaves out (nonce, gas,
//!   fees, chain id), signs, and submits through the very admission path of
//!   `eth_sendRawTransaction`, so every pool check and error code applies;
//! - `eth_signTransaction` returns the signed raw transaction instead;
//! - `eth_sign` / `personal_sign` sign EIP-191 messages, and
//!   `eth_signTypedData_v4` EIP-712 typed data.
//!
//! The keys are public. Nothing but the dev node may ever hold them:
//! [`RpcConfig::dev_signers`](crate::RpcConfig::dev_signers) is empty unless
//! the CLI runs the embedded dev chain.

use alloy_consensus::{SignableTransaction, TypedTransaction};
use alloy_dyn_abi::TypedData;
use alloy_eips::{BlockId, BlockNumberOrTag, eip2718::Encodable2718};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, eip191_hash_message};
use alloy_rpc_types_eth::{TransactionInput, TransactionRequest};
use jsonrpsee::{core::RpcResult as JsonResult, proc_macros::rpc};
use secp256k1::SecretKey;
use serde_json::Value;

use crate::{RpcContext, RpcError, RpcResult};

/// A key the node signs with. Its `Debug` shows the address only.
#[derive(Clone, Copy)]
pub struct DevSigner {
    address: Address,
    secret: SecretKey,
}

impl std::fmt::Debug for DevSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevSigner")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

impl DevSigner {
    /// A signer for a secp256k1 private key; `None` if the bytes are not a
    /// valid key (zero, or not below the curve order).
    pub fn from_secret(secret: B256) -> Option<Self> {
        let secret = SecretKey::from_byte_array(secret.0).ok()?;
        let address = infera_primitives::address_of_secret(&secret);
        Some(Self { address, secret })
    }

    /// The ten accounts the dev genesis funds (Hardhat's and Anvil's), in
    /// their usual order. For `--dev` only: the keys are public.
    pub fn dev_accounts() -> Vec<Self> {
        infera_chainspec::DEV_PRIVATE_KEYS
            .iter()
            .map(|key| Self::from_secret(*key).expect("the dev keys are valid secp256k1 keys"))
            .collect()
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// Signs a 32-byte digest (RFC 6979 nonce, low `s`).
    pub fn sign_hash(&self, hash: B256) -> Signature {
        infera_primitives::sign_hash(&self.secret, hash)
    }
}

/// The signing methods (`eth_accounts` stays in [`crate::server::EthApiServer`]).
#[rpc(server)]
pub trait SignerApi {
    #[method(name = "eth_sendTransaction", blocking)]
    fn send_transaction(&self, request: TransactionRequest) -> JsonResult<B256>;
    #[method(name = "eth_signTransaction", blocking)]
    fn sign_transaction(&self, request: TransactionRequest) -> JsonResult<Bytes>;
    #[method(name = "eth_sign")]
    fn sign(&self, address: Address, message: Bytes) -> JsonResult<Bytes>;
    #[method(name = "personal_sign")]
    fn personal_sign(
        &self,
        message: String,
        address: Address,
        password: Option<String>,
    ) -> JsonResult<Bytes>;
    /// `eth_signTypedData` (web3.py, geth) and `_v3` take the same JSON as
    /// v4 here; MetaMask's legacy v1 array format is refused as invalid.
    #[method(
        name = "eth_signTypedData_v4",
        aliases = ["eth_signTypedData", "eth_signTypedData_v3"]
    )]
    fn sign_typed_data_v4(&self, address: Address, typed_data: Value) -> JsonResult<Bytes>;
}

impl SignerApiServer for RpcContext {
    fn send_transaction(&self, request: TransactionRequest) -> JsonResult<B256> {
        RpcContext::send_transaction(self, request).map_err(Into::into)
    }
    fn sign_transaction(&self, request: TransactionRequest) -> JsonResult<Bytes> {
        RpcContext::sign_transaction(self, request).map_err(Into::into)
    }
    fn sign(&self, address: Address, message: Bytes) -> JsonResult<Bytes> {
        RpcContext::sign_message(self, address, &message).map_err(Into::into)
    }
    fn personal_sign(
        &self,
        message: String,
        address: Address,
        _password: Option<String>,
    ) -> JsonResult<Bytes> {
        // Dev accounts have no password; the parameter is accepted and ignored
        // as geth's unlocked accounts do.
        RpcContext::sign_message(self, address, &personal_message_bytes(&message))
            .map_err(Into::into)
    }
    fn sign_typed_data_v4(&self, address: Address, typed_data: Value) -> JsonResult<Bytes> {
        RpcContext::sign_typed_data(self, address, typed_data).map_err(Into::into)
    }
}

impl RpcContext {
    /// `eth_accounts`: the unlocked dev accounts; empty unless `--dev`.
    pub fn accounts(&self) -> Vec<Address> {
        self.config()
            .dev_signers
            .iter()
            .map(DevSigner::address)
            .collect()
    }

    fn signer(&self, address: Address) -> RpcResult<&DevSigner> {
        let signers = &self.config().dev_signers;
        if signers.is_empty() {
            return Err(RpcError::UnknownAccount(format!(
                "unknown account {address}: this node holds no keys (only `infera node --dev` unlocks its dev accounts); sign in the wallet and send with eth_sendRawTransaction"
            )));
        }
        signers
            .iter()
            .find(|s| s.address == address)
            .ok_or_else(|| {
                RpcError::UnknownAccount(format!(
                    "unknown account {address}: this node signs only for the {} dev accounts that eth_accounts lists",
                    signers.len()
                ))
            })
    }

    /// `eth_sendTransaction`: fill, sign, and submit through the admission
    /// path of `eth_sendRawTransaction`.
    pub fn send_transaction(&self, request: TransactionRequest) -> RpcResult<B256> {
        // Fill (pending nonce) and admission as one step: two sends from one
        // account must not read the same pending nonce.
        let _serial = self.signing_lock().lock();
        let raw = self.sign_transaction(request)?;
        self.send_raw_transaction(raw)
    }

    /// `eth_signTransaction`: fill and sign; returns the EIP-2718 bytes.
    pub fn sign_transaction(&self, request: TransactionRequest) -> RpcResult<Bytes> {
        let from = request.from.ok_or_else(|| {
            RpcError::InvalidParams("the transaction needs a `from` address to sign with".into())
        })?;
        let signer = *self.signer(from)?;
        let tx = self.fill_transaction(request)?;
        let signature = signer.sign_hash(tx.signature_hash());
        Ok(tx.into_envelope(signature).encoded_2718().into())
    }

    /// Completes a request the way wallets do: chain id, pending nonce,
    /// fees from this node's suggestions, gas from `eth_estimateGas`.
    fn fill_transaction(&self, mut request: TransactionRequest) -> RpcResult<TypedTransaction> {
        let from = request.from.unwrap_or_default();
        let chain_id = self.chain().chain_id();
        match request.chain_id {
            Some(id) if id != chain_id => {
                return Err(RpcError::InvalidParams(format!(
                    "chainId {id} does not match this chain's id {chain_id}"
                )));
            }
            _ => request.chain_id = Some(chain_id),
        }
        if request.has_eip4844_blob_data() {
            return Err(RpcError::InvalidParams(
                "blob transactions are not supported on this chain".into(),
            ));
        }
        let input = request
            .input
            .clone()
            .try_into_unique_input()
            .map_err(|e| RpcError::InvalidParams(e.to_string()))?
            .unwrap_or_default();
        request.input = TransactionInput::new(input);
        if request.to.is_none() {
            request.to = Some(TxKind::Create);
        }
        if request.authorization_list.is_some() && request.to == Some(TxKind::Create) {
            return Err(RpcError::InvalidParams(
                "an EIP-7702 transaction (authorizationList) cannot create a contract: give `to`"
                    .into(),
            ));
        }
        self.fill_fees(&mut request)?;
        if request.nonce.is_none() {
            let pending = BlockId::Number(BlockNumberOrTag::Pending);
            request.nonce = Some(self.transaction_count(from, Some(pending))?.to());
        }
        if request.gas.is_none() {
            request.gas = Some(self.estimate_gas(request.clone(), None)?.to());
        }
        request.build_typed_tx().map_err(|incomplete| {
            let missing = incomplete
                .missing_keys()
                .err()
                .map(|(_, keys)| keys.join(", "));
            RpcError::InvalidParams(format!(
                "cannot build a transaction from the request (missing: {})",
                missing.unwrap_or_default()
            ))
        })
    }

    /// Legacy pricing when `gasPrice` is given or type 0/1 is asked for;
    /// otherwise EIP-1559 with the tip of `eth_maxPriorityFeePerGas` and a
    /// fee cap of twice the next base fee plus that tip (as ethers and viem).
    fn fill_fees(&self, request: &mut TransactionRequest) -> RpcResult<()> {
        let dynamic =
            request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some();
        if request.gas_price.is_some() && dynamic {
            return Err(RpcError::InvalidParams(
                "both gasPrice and maxFeePerGas/maxPriorityFeePerGas given: give one pricing"
                    .into(),
            ));
        }
        let legacy_type = matches!(request.transaction_type, Some(0 | 1));
        if legacy_type && dynamic {
            return Err(RpcError::InvalidParams(format!(
                "a type {} transaction takes gasPrice, not maxFeePerGas/maxPriorityFeePerGas",
                request.transaction_type.unwrap_or_default()
            )));
        }
        if request.transaction_type == Some(1) && request.access_list.is_none() {
            request.access_list = Some(Default::default());
        }
        if request.gas_price.is_some() || legacy_type {
            if request.gas_price.is_none() {
                request.gas_price = Some(self.gas_price()?.to());
            }
            return Ok(());
        }
        let suggested_tip: u128 = self.max_priority_fee()?.to();
        let base_fee = self.gas_price()?.to::<u128>().saturating_sub(suggested_tip);
        match (request.max_fee_per_gas, request.max_priority_fee_per_gas) {
            (Some(_), Some(_)) => {}
            (Some(max_fee), None) => {
                request.max_priority_fee_per_gas = Some(suggested_tip.min(max_fee))
            }
            (None, tip) => {
                let tip = tip.unwrap_or(suggested_tip);
                request.max_priority_fee_per_gas = Some(tip);
                request.max_fee_per_gas = Some(base_fee.saturating_mul(2).saturating_add(tip));
            }
        }
        Ok(())
    }

    /// `eth_sign` and `personal_sign`: an EIP-191 (version `0x45`) signature
    /// of `message`, 65 bytes `r ‖ s ‖ v` with `v` 27 or 28.
    pub fn sign_message(&self, address: Address, message: &[u8]) -> RpcResult<Bytes> {
        let signer = self.signer(address)?;
        let signature = signer.sign_hash(eip191_hash_message(message));
        Ok(Bytes::copy_from_slice(&signature.as_bytes()))
    }

    /// `eth_signTypedData_v4`: an EIP-712 signature. The typed data may come
    /// as a JSON object or, as MetaMask, ethers and viem send it, as a string
    /// holding the JSON.
    pub fn sign_typed_data(&self, address: Address, typed_data: Value) -> RpcResult<Bytes> {
        let signer = self.signer(address)?;
        let typed_data: TypedData = match typed_data {
            Value::String(json) => serde_json::from_str(&json),
            other => serde_json::from_value(other),
        }
        .map_err(|e| RpcError::InvalidParams(format!("invalid EIP-712 typed data: {e}")))?;
        let hash = typed_data
            .eip712_signing_hash()
            .map_err(|e| RpcError::InvalidParams(format!("invalid EIP-712 typed data: {e}")))?;
        Ok(Bytes::copy_from_slice(&signer.sign_hash(hash).as_bytes()))
    }
}

/// `personal_sign`'s message: hex (`0x…`) is taken as bytes, as every
/// library sends it; anything else as its UTF-8 text, as MetaMask accepts.
fn personal_message_bytes(message: &str) -> Vec<u8> {
    message
        .strip_prefix("0x")
        .and_then(|hex| alloy_primitives::hex::decode(hex).ok())
        .unwrap_or_else(|| message.as_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{address, b256};

    #[test]
    fn dev_accounts_are_the_funded_genesis_accounts() {
        let signers = DevSigner::dev_accounts();
        assert_eq!(signers.len(), 10);
        assert_eq!(
            signers[0].address(),
            address!("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266")
        );
        assert_eq!(
            signers[1].address(),
            address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8")
        );
        let chain = infera_chainspec::ChainSpec::dev();
        for signer in &signers {
            assert!(
                chain.genesis.alloc.contains_key(&signer.address()),
                "{} is not funded by the dev genesis",
                signer.address()
            );
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let signer = DevSigner::dev_accounts()[0];
        let shown = format!("{signer:?}");
        assert!(
            shown
                .to_lowercase()
                .contains("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"),
            "{shown}"
        );
        assert!(
            !shown.to_lowercase().contains("ac0974bec39a17e3"),
            "{shown}"
        );
    }

    #[test]
    fn invalid_keys_are_refused() {
        assert!(DevSigner::from_secret(B256::ZERO).is_none());
        assert!(DevSigner::from_secret(B256::repeat_byte(0xff)).is_none());
    }

    #[test]
    fn signatures_recover_to_the_signer() {
        // Signed with libsecp256k1, recovered with k256 (alloy): two implementations.
        for signer in DevSigner::dev_accounts() {
            let hash = b256!("0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8");
            let signature = signer.sign_hash(hash);
            assert_eq!(
                signature.recover_address_from_prehash(&hash).unwrap(),
                signer.address()
            );
        }
    }

    #[test]
    fn eip191_signature_matches_a_known_vector() {
        // ethers v6 / viem: Wallet(key #0).signMessage("hello world").
        let signer = DevSigner::dev_accounts()[0];
        let signature = signer.sign_hash(eip191_hash_message(b"hello world"));
        assert_eq!(
            alloy_primitives::hex::encode(signature.as_bytes()),
            "a461f509887bd19e312c0c58467ce8ff8e300d3c1a90b608a760c5b80318eaf15fe57c96f9175d6cd4daad4663763baa7e78836e067d0163e9a2ccf2ff753f5b1b"
        );
    }

    /// EIP-712's own example ("Ether Mail"), signed by key #0 with ethers v6
    /// (`Wallet.signTypedData`); the hash is the one the EIP states.
    pub(crate) const MAIL_TYPED_DATA: &str = r#"{
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"}
            ],
            "Person": [{"name": "name", "type": "string"}, {"name": "wallet", "type": "address"}],
            "Mail": [
                {"name": "from", "type": "Person"},
                {"name": "to", "type": "Person"},
                {"name": "contents", "type": "string"}
            ]
        },
        "primaryType": "Mail",
        "domain": {
            "name": "Ether Mail",
            "version": "1",
            "chainId": 1,
            "verifyingContract": "0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"
        },
        "message": {
            "from": {"name": "Cow", "wallet": "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826"},
            "to": {"name": "Bob", "wallet": "0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB"},
            "contents": "Hello, Bob!"
        }
    }"#;

    #[test]
    fn eip712_signature_matches_the_mail_example() {
        let typed: TypedData = serde_json::from_str(MAIL_TYPED_DATA).unwrap();
        let hash = typed.eip712_signing_hash().unwrap();
        assert_eq!(
            hash,
            b256!("0xbe609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")
        );
        let signature = DevSigner::dev_accounts()[0].sign_hash(hash);
        assert_eq!(
            alloy_primitives::hex::encode(signature.as_bytes()),
            "6ea8bb309a3401225701f3565e32519f94a0ea91a5910ce9229fe488e773584c0390416a2190d9560219dab757ecca2029e63fa9d1c2aebf676cc25b9f03126a1b"
        );
    }

    #[test]
    fn personal_sign_takes_hex_or_text() {
        assert_eq!(personal_message_bytes("0x68656c6c6f"), b"hello");
        assert_eq!(personal_message_bytes("hello"), b"hello");
        assert_eq!(personal_message_bytes("0xnot hex"), b"0xnot hex");
        assert_eq!(personal_message_bytes("0x"), b"");
    }
}

/// The methods on a real context: a dev-genesis database, a pool, no server.
#[cfg(test)]
mod context_tests {
    use alloy_consensus::{Transaction as _, TxEnvelope, TxType};
    use alloy_eips::eip2718::Decodable2718;
    use alloy_primitives::{U256, address};

    use super::*;
    use crate::RpcConfig;

    const RECIPIENT: Address = address!("0x00000000000000000000000000000000000beef1");

    fn context(dir: &std::path::Path, signers: Vec<DevSigner>) -> RpcContext {
        crate::test_context::dev_context(
            dir,
            RpcConfig {
                dev_signers: signers,
                ..RpcConfig::default()
            },
        )
    }

    fn dev_context(dir: &std::path::Path) -> RpcContext {
        context(dir, DevSigner::dev_accounts())
    }

    fn transfer(from: Address) -> TransactionRequest {
        TransactionRequest::default()
            .from(from)
            .to(RECIPIENT)
            .value(U256::from(1_000u64))
    }

    fn decode(raw: &Bytes) -> TxEnvelope {
        TxEnvelope::decode_2718(&mut raw.as_ref()).unwrap()
    }

    #[test]
    fn accounts_are_listed_only_with_signers() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(dev_context(dir.path()).accounts().len(), 10);
        let dir = tempfile::tempdir().unwrap();
        assert!(context(dir.path(), Vec::new()).accounts().is_empty());
    }

    #[test]
    fn sign_transaction_fills_an_eip1559_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[0];
        let raw = ctx.sign_transaction(transfer(from)).unwrap();
        let tx = decode(&raw);
        assert_eq!(tx.tx_type(), TxType::Eip1559);
        assert_eq!(tx.chain_id(), Some(infera_chainspec::DEV_CHAIN_ID));
        assert_eq!(tx.nonce(), 0);
        assert_eq!(tx.gas_limit(), 21_000);
        assert_eq!(
            tx.max_priority_fee_per_gas(),
            Some(crate::DEFAULT_PRIORITY_FEE_WEI)
        );
        let base_fee = ctx.gas_price().unwrap().to::<u128>() - crate::DEFAULT_PRIORITY_FEE_WEI;
        assert_eq!(
            tx.max_fee_per_gas(),
            2 * base_fee + crate::DEFAULT_PRIORITY_FEE_WEI
        );
        assert_eq!(tx.to(), Some(RECIPIENT));
        assert_eq!(tx.value(), U256::from(1_000u64));
        use alloy_consensus::transaction::SignerRecoverable;
        assert_eq!(tx.recover_signer().unwrap(), from);
        // Signing alone pools nothing.
        assert_eq!(ctx.pool().lock().pending_count(), 0);
    }

    #[test]
    fn legacy_and_access_list_pricing_follow_the_request() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[1];
        let legacy = decode(
            &ctx.sign_transaction(transfer(from).gas_price(7_000_000_000))
                .unwrap(),
        );
        assert_eq!(legacy.tx_type(), TxType::Legacy);
        assert_eq!(legacy.gas_price(), Some(7_000_000_000));
        assert_eq!(legacy.chain_id(), Some(infera_chainspec::DEV_CHAIN_ID));

        let mut typed = transfer(from);
        typed.transaction_type = Some(0);
        let legacy = decode(&ctx.sign_transaction(typed).unwrap());
        assert_eq!(legacy.tx_type(), TxType::Legacy);
        assert_eq!(legacy.gas_price(), Some(ctx.gas_price().unwrap().to()));

        let list = alloy_eips::eip2930::AccessList(vec![alloy_eips::eip2930::AccessListItem {
            address: RECIPIENT,
            storage_keys: vec![B256::ZERO],
        }]);
        let with_list = decode(
            &ctx.sign_transaction(transfer(from).access_list(list.clone()))
                .unwrap(),
        );
        assert_eq!(with_list.tx_type(), TxType::Eip1559);
        assert_eq!(with_list.access_list(), Some(&list));
        let with_list = decode(
            &ctx.sign_transaction(
                transfer(from)
                    .access_list(list.clone())
                    .gas_price(2e9 as u128),
            )
            .unwrap(),
        );
        assert_eq!(with_list.tx_type(), TxType::Eip2930);
        assert_eq!(with_list.access_list(), Some(&list));
    }

    #[test]
    fn send_transaction_pools_with_consecutive_nonces() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[2];
        let first = ctx.send_transaction(transfer(from)).unwrap();
        let second = ctx.send_transaction(transfer(from)).unwrap();
        let pool = ctx.pool().lock();
        assert_eq!(pool.get(&first).unwrap().tx.nonce(), 0);
        assert_eq!(pool.get(&second).unwrap().tx.nonce(), 1);
        assert_eq!(pool.get(&second).unwrap().sender, from);
        assert_eq!(pool.pending_count(), 2);
    }

    #[test]
    fn concurrent_sends_from_one_account_get_distinct_nonces() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[5];
        let hashes: Vec<B256> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| ctx.send_transaction(transfer(from)).unwrap()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let pool = ctx.pool().lock();
        let mut nonces: Vec<u64> = hashes
            .iter()
            .map(|h| pool.get(h).unwrap().tx.nonce())
            .collect();
        nonces.sort_unstable();
        assert_eq!(nonces, (0..8).collect::<Vec<u64>>());
    }

    #[test]
    fn send_transaction_goes_through_the_raw_admission_checks() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[3];
        // More value than the account holds: refused like eth_sendRawTransaction.
        let err = ctx
            .send_transaction(
                transfer(from)
                    .value(U256::from(10u64).pow(U256::from(30)))
                    .gas_limit(21_000),
            )
            .unwrap_err();
        assert!(matches!(err, RpcError::TransactionRejected(_)), "{err}");
        // A nonce already used.
        ctx.send_transaction(transfer(from)).unwrap();
        let err = ctx.send_transaction(transfer(from).nonce(0)).unwrap_err();
        assert!(matches!(err, RpcError::TransactionRejected(_)), "{err}");
    }

    #[test]
    fn deploy_without_to_is_a_create() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[0];
        // Init code returning one zero byte of runtime code.
        let init = alloy_primitives::hex!("600160008160008239f3");
        let raw = ctx
            .sign_transaction(
                TransactionRequest::default()
                    .from(from)
                    .input(Bytes::from(init.to_vec()).into()),
            )
            .unwrap();
        let tx = decode(&raw);
        assert_eq!(tx.kind(), TxKind::Create);
        assert!(tx.gas_limit() > 53_000, "{}", tx.gas_limit());
    }

    #[test]
    fn bad_requests_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[0];
        let message = |err: RpcError| err.to_string();

        let unknown = address!("0x1111111111111111111111111111111111111111");
        let err = ctx.send_transaction(transfer(unknown)).unwrap_err();
        assert!(matches!(err, RpcError::UnknownAccount(_)));
        assert!(message(err).contains("unknown account 0x1111"));

        let mut no_from = transfer(from);
        no_from.from = None;
        assert!(message(ctx.send_transaction(no_from).unwrap_err()).contains("`from`"));

        let err = ctx
            .sign_transaction(transfer(from).gas_price(1).max_fee_per_gas(2))
            .unwrap_err();
        assert!(matches!(err, RpcError::InvalidParams(_)));
        assert!(message(err).contains("both gasPrice and maxFeePerGas"));

        let mut wrong_chain = transfer(from);
        wrong_chain.chain_id = Some(1);
        assert!(message(ctx.sign_transaction(wrong_chain).unwrap_err()).contains("chainId 1"));

        let err = ctx.sign_message(unknown, b"hi").unwrap_err();
        assert!(matches!(err, RpcError::UnknownAccount(_)));

        let err = ctx
            .sign_typed_data(from, serde_json::json!({"types": 1}))
            .unwrap_err();
        assert!(message(err).contains("invalid EIP-712 typed data"));
        let err = ctx
            .sign_typed_data(from, Value::String("{not json".into()))
            .unwrap_err();
        assert!(message(err).contains("invalid EIP-712 typed data"));
    }

    #[test]
    fn without_signers_every_signing_method_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = context(dir.path(), Vec::new());
        let from = DevSigner::dev_accounts()[0].address();
        for err in [
            ctx.send_transaction(transfer(from)).unwrap_err(),
            ctx.sign_transaction(transfer(from)).unwrap_err(),
            ctx.sign_message(from, b"hi").unwrap_err(),
            ctx.sign_typed_data(from, serde_json::from_str(tests::MAIL_TYPED_DATA).unwrap())
                .unwrap_err(),
        ] {
            assert!(matches!(err, RpcError::UnknownAccount(_)));
            assert!(err.to_string().contains("holds no keys"), "{err}");
        }
        assert_eq!(ctx.pool().lock().pending_count(), 0);
    }

    #[test]
    fn message_and_typed_data_signatures_recover_to_the_account() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = dev_context(dir.path());
        let from = ctx.accounts()[4];
        let signature = ctx.sign_message(from, b"hello").unwrap();
        let signature = Signature::try_from(signature.as_ref()).unwrap();
        assert_eq!(signature.recover_address_from_msg(b"hello").unwrap(), from);

        // Object or JSON string: the same signature.
        let object: Value = serde_json::from_str(tests::MAIL_TYPED_DATA).unwrap();
        let a = ctx.sign_typed_data(from, object).unwrap();
        let b = ctx
            .sign_typed_data(from, Value::String(tests::MAIL_TYPED_DATA.into()))
            .unwrap();
        assert_eq!(a, b);
        let typed: TypedData = serde_json::from_str(tests::MAIL_TYPED_DATA).unwrap();
        let signature = Signature::try_from(a.as_ref()).unwrap();
        assert_eq!(
            signature
                .recover_address_from_prehash(&typed.eip712_signing_hash().unwrap())
                .unwrap(),
            from
        );
    }
}
