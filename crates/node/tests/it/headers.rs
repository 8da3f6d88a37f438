//! Every path that makes a header (the dev sealer, the Clique sealer,
//! `testing_buildBlockV1`, `eth_simulateV1`) starts from the same
//! `infera_chainspec::NextBlock`; these tests hold each of them to the
//! importer's own `validate_header`, and re-import what can be imported.

use std::{str::FromStr, sync::Arc};

use alloy_consensus::{
    BlockBody, EMPTY_OMMER_ROOT_HASH, Header, SignableTransaction, TxEip1559,
    proofs::{calculate_transaction_root, calculate_withdrawals_root},
};
use alloy_eips::{eip2718::Encodable2718, eip4895::Withdrawals, eip7685::Requests};
use alloy_primitives::{Address, B64, B256, Bloom, Bytes, TxKind, U64, U256};
use infera_chainspec::{ChainSpec, DEV_CHAIN_ID, DEV_PRIVATE_KEYS};
use infera_node::{
    ImportConfig,
    builder::build_and_commit,
    clique_sealer::address_of_key,
    import::{Block, validate_header},
    import_block, open_datadir,
};
use infera_precompiles::ModelCache;
use infera_primitives::{RecoveredTx, StateReader, TxEnvelope};
use infera_rpc::{RpcConfig, RpcContext, testing::PayloadAttributes};
use infera_storage::Database;
use infera_txpool::{PoolConfig, TxAdmission, TxPool};
use parking_lot::Mutex;
use secp256k1::SecretKey;
use tokio::sync::{Notify, broadcast};

use crate::harness::{self, Node, in_turn};

const RECEIVER: Address = Address::repeat_byte(0x42);

/// A signed EIP-1559 transfer of `value` wei from `key`.
fn transfer(chain_id: u64, key: &SecretKey, nonce: u64, value: u64) -> RecoveredTx {
    let tx = TxEip1559 {
        chain_id,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 100_000_000_000,
        max_priority_fee_per_gas: 2,
        to: TxKind::Call(RECEIVER),
        value: U256::from(value),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let hash = tx.signature_hash();
    let sig = infera_primitives::sign_hash(key, hash);
    infera_evm::recover_any(TxEnvelope::from(tx.into_signed(sig))).unwrap()
}

fn dev_key() -> SecretKey {
    SecretKey::from_byte_array(DEV_PRIVATE_KEYS[0].0).unwrap()
}

fn assert_valid(chain: &ChainSpec, header: &Header, parent: &Header, what: &str) {
    let spec = chain.spec_at(header.number, header.timestamp);
    if let Err(e) = validate_header(chain, header, parent, spec, ImportConfig::default()) {
        panic!(
            "{what}: block {} refused by validate_header: {e:?}",
            header.number
        );
    }
}

fn head_header(db: &Database) -> Header {
    let reader = db.reader().unwrap();
    let head = reader.head_number().unwrap().unwrap();
    reader.header(head).unwrap().unwrap()
}

fn add_to_pool(db: &Database, pool: &Mutex<TxPool>, txs: Vec<RecoveredTx>) {
    let reader = db.reader().unwrap();
    let state = reader.latest_state();
    let mut pool = pool.lock();
    for tx in txs {
        let account = state.account(tx.sender).unwrap().unwrap();
        pool.add(tx, account.nonce, account.balance, u64::MAX)
            .unwrap();
    }
}

#[test]
fn dev_sealer_headers_pass_validation_and_import() {
    let chain = ChainSpec::dev();
    let dir = tempfile::tempdir().unwrap();
    let db = open_datadir(&dir.path().join("sealer"), &chain).unwrap();
    let twin = open_datadir(&dir.path().join("importer"), &chain).unwrap();
    let pool = Mutex::new(TxPool::new(PoolConfig::default()));
    let models = ModelCache::shared();
    let key = dev_key();
    for n in 1..=3u64 {
        // Block 2 is empty: the header rules hold without transactions too.
        if n != 2 {
            let nonce = if n == 1 { 0 } else { 2 };
            let txs = vec![
                transfer(DEV_CHAIN_ID, &key, nonce, n),
                transfer(DEV_CHAIN_ID, &key, nonce + 1, n),
            ];
            add_to_pool(&db, &pool, txs);
        }
        let parent = head_header(&db);
        let committed =
            build_and_commit(&db, &chain, &pool, Address::repeat_byte(0xc0), n, &models).unwrap();
        let header = &committed.block.header;
        assert_eq!(
            committed.block.transactions.len(),
            if n == 2 { 0 } else { 2 }
        );
        assert_valid(&chain, header, &parent, "dev sealer");
        // The importer's full check: execution, every root, requests, gas.
        import_block(
            &twin,
            &chain,
            &infera_node::chain::block_of(&committed.block),
            ImportConfig::default(),
        )
        .unwrap_or_else(|e| panic!("dev block {n} refused on import: {e}"));
    }
}

#[test]
fn clique_sealer_headers_pass_validation_and_import() {
    let mut node = Node::new(ModelCache::shared());
    let chain = harness::chain();
    let dir = tempfile::tempdir().unwrap();
    let twin = open_datadir(dir.path(), &chain).unwrap();
    let key = harness::key(0);
    for n in 1..=3u64 {
        let txs = if n == 2 {
            Vec::new()
        } else {
            vec![transfer(chain.chain_id(), &key, n / 2, 7)]
        };
        let parent = head_header(node.manager.db());
        let block = node.seal(in_turn(&node.clique, n), txs);
        assert_eq!(block.header.number, n);
        assert_valid(&chain, &block.header, &parent, "Clique sealer");
        import_block(&twin, &chain, &block, ImportConfig::default())
            .unwrap_or_else(|e| panic!("Clique block {n} refused on import: {e}"));
    }
}

/// An RPC context over a fresh dev database, as the node wires it.
fn dev_rpc(dir: &std::path::Path) -> (RpcContext, Database, Arc<ChainSpec>) {
    let chain = Arc::new(ChainSpec::dev());
    let db = open_datadir(dir, &chain).unwrap();
    let pool = Arc::new(Mutex::new(TxPool::new(PoolConfig::default())));
    let (events, _) = broadcast::channel(16);
    let ctx = RpcContext::new(
        TxAdmission::new(
            db.clone(),
            chain.clone(),
            pool,
            events,
            Arc::new(Notify::new()),
        ),
        ModelCache::shared(),
        RpcConfig::default(),
    );
    (ctx, db, chain)
}

#[test]
fn testing_build_block_headers_pass_validation_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, db, chain) = dev_rpc(dir.path());
    let key = dev_key();
    for n in 1..=2u64 {
        let parent = head_header(&db);
        let parent_hash = parent.hash_slow();
        let tx = transfer(DEV_CHAIN_ID, &key, n - 1, 9);
        let raw: Bytes = tx.tx.encoded_2718().into();
        let attributes = PayloadAttributes {
            timestamp: U64::from(parent.timestamp + 12),
            prev_randao: B256::repeat_byte(n as u8),
            suggested_fee_recipient: Address::repeat_byte(0xfe),
            withdrawals: Some(Vec::new()),
            parent_beacon_block_root: Some(B256::repeat_byte(0xbe)),
        };
        let extra = Bytes::from_static(b"testing");
        let built = ctx
            .testing_build_block(parent_hash, attributes.clone(), Some(vec![raw]), extra)
            .unwrap();
        let payload = &built.execution_payload;
        let transactions: Vec<TxEnvelope> = payload
            .transactions
            .iter()
            .map(|bytes| infera_evm::decode_raw_transaction(bytes).unwrap().tx)
            .collect();
        // The header an engine would rebuild from the payload.
        let header = Header {
            parent_hash: payload.parent_hash,
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary: payload.fee_recipient,
            state_root: payload.state_root,
            transactions_root: calculate_transaction_root(&transactions),
            receipts_root: payload.receipts_root,
            logs_bloom: payload.logs_bloom,
            difficulty: U256::ZERO,
            number: payload.block_number.to(),
            gas_limit: payload.gas_limit.to(),
            gas_used: payload.gas_used.to(),
            timestamp: payload.timestamp.to(),
            extra_data: payload.extra_data.clone(),
            mix_hash: payload.prev_randao,
            nonce: Default::default(),
            base_fee_per_gas: Some(payload.base_fee_per_gas.to()),
            withdrawals_root: Some(calculate_withdrawals_root(&payload.withdrawals)),
            blob_gas_used: Some(payload.blob_gas_used.to()),
            excess_blob_gas: Some(payload.excess_blob_gas.to()),
            parent_beacon_block_root: attributes.parent_beacon_block_root,
            requests_hash: Some(Requests::new(built.execution_requests.clone()).requests_hash()),
            block_access_list_hash: None,
            slot_number: None,
        };
        assert_eq!(header.hash_slow(), payload.block_hash, "payload {n}");
        assert_valid(&chain, &header, &parent, "testing_buildBlockV1");
        let block = Block {
            header,
            body: BlockBody {
                transactions,
                ommers: Vec::new(),
                withdrawals: Some(Withdrawals::new(payload.withdrawals.clone())),
            },
        };
        import_block(&db, &chain, &block, ImportConfig::default())
            .unwrap_or_else(|e| panic!("built block {n} refused on import: {e}"));
    }
}

/// A default value of the type `f` takes, for parameter types this crate
/// cannot name (alloy's RPC types).
fn default_arg<T: Default, R>(_f: &impl Fn(T) -> R) -> T {
    T::default()
}

#[test]
fn simulated_headers_pass_validation() {
    let dir = tempfile::tempdir().unwrap();
    let (ctx, db, chain) = dev_rpc(dir.path());
    let from = address_of_key(&dev_key());
    let simulate = |payload| ctx.simulate_v1(payload, None);
    let mut payload = default_arg(&simulate);
    // Without validation the base fee is zero (as geth), which the importer
    // rightly refuses: the headers a chain could hold are simulated with it.
    payload.validation = true;
    for value in [1u64, 0, 2] {
        payload.block_state_calls.push(Default::default());
        if value == 0 {
            continue;
        }
        let block = payload.block_state_calls.last_mut().unwrap();
        block.calls.push(Default::default());
        let call = block.calls.last_mut().unwrap();
        call.from = Some(from);
        call.to = Some(TxKind::Call(RECEIVER));
        call.value = Some(U256::from(value));
        call.gas = Some(21_000);
        call.max_fee_per_gas = Some(100_000_000_000);
        call.max_priority_fee_per_gas = Some(1);
    }
    let result = simulate(payload).unwrap();
    let blocks = result.as_array().unwrap();
    assert_eq!(blocks.len(), 3);

    let mut parent = head_header(&db);
    for block in blocks {
        let text = |name: &str| block[name].as_str().map(str::to_owned);
        let field = |name: &str| text(name).unwrap_or_else(|| panic!("no {name} in {block}"));
        let quantity = |name: &str| {
            u64::from_str_radix(field(name).trim_start_matches("0x"), 16)
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let optional = |name: &str| {
            text(name).map(|q| u64::from_str_radix(q.trim_start_matches("0x"), 16).unwrap())
        };
        let hash = |name: &str| B256::from_str(&field(name)).unwrap();
        let header = Header {
            parent_hash: hash("parentHash"),
            ommers_hash: hash("sha3Uncles"),
            beneficiary: Address::from_str(&field("miner")).unwrap(),
            state_root: hash("stateRoot"),
            transactions_root: hash("transactionsRoot"),
            receipts_root: hash("receiptsRoot"),
            logs_bloom: Bloom::from_str(&field("logsBloom")).unwrap(),
            difficulty: U256::from_str(&field("difficulty")).unwrap(),
            number: quantity("number"),
            gas_limit: quantity("gasLimit"),
            gas_used: quantity("gasUsed"),
            timestamp: quantity("timestamp"),
            extra_data: Bytes::from_str(&field("extraData")).unwrap(),
            mix_hash: hash("mixHash"),
            nonce: B64::from_str(&field("nonce")).unwrap(),
            base_fee_per_gas: optional("baseFeePerGas"),
            withdrawals_root: text("withdrawalsRoot").map(|_| hash("withdrawalsRoot")),
            blob_gas_used: optional("blobGasUsed"),
            excess_blob_gas: optional("excessBlobGas"),
            parent_beacon_block_root: text("parentBeaconBlockRoot")
                .map(|_| hash("parentBeaconBlockRoot")),
            requests_hash: text("requestsHash").map(|_| hash("requestsHash")),
            block_access_list_hash: None,
            slot_number: None,
        };
        assert_eq!(
            header.hash_slow(),
            hash("hash"),
            "rebuilt header of {block}"
        );
        assert_valid(&chain, &header, &parent, "eth_simulateV1");
        parent = header;
    }
}
