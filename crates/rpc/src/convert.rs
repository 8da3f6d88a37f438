//! Turning stored blocks, transactions and receipts into the JSON-RPC shapes
//! of `alloy-rpc-types-eth`, which serialise as the Ethereum spec says.

use alloy_consensus::{Transaction as _, transaction::Recovered};
use alloy_primitives::{B256, TxKind, U256};
use alloy_rpc_types_eth::{
    Block, BlockTransactions, Header as RpcHeader, Log as RpcLog, Transaction, TransactionReceipt,
};
use infera_primitives::{ReceiptEnvelope, RecoveredTx, SealedBlock};

/// A receipt as `eth_getTransactionReceipt` returns it: alloy's fields and
/// `blockTimestamp`, which anvil and reth add (clients read it to date a
/// transaction without fetching its block).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RpcReceipt {
    #[serde(flatten)]
    pub receipt: TransactionReceipt,
    /// The block's timestamp, seconds since the Unix epoch.
    #[serde(with = "alloy_serde::quantity")]
    pub block_timestamp: u64,
}

/// Where a mined transaction sits, for its RPC fields.
#[derive(Debug, Clone, Copy)]
pub struct TxContext {
    pub block_hash: B256,
    pub block_number: u64,
    pub index: u64,
    pub base_fee: Option<u64>,
    pub timestamp: u64,
}

impl TxContext {
    pub fn of(block: &SealedBlock, index: usize) -> Self {
        Self {
            block_hash: block.hash,
            block_number: block.number(),
            index: index as u64,
            base_fee: block.header.base_fee_per_gas,
            timestamp: block.header.timestamp,
        }
    }
}

/// A transaction as `eth_getTransactionByHash` returns it; `ctx` is `None` while pending.
pub fn rpc_transaction(tx: &RecoveredTx, ctx: Option<TxContext>) -> Transaction {
    let effective_gas_price = match ctx {
        Some(ctx) => tx.tx.effective_gas_price(ctx.base_fee),
        None => tx.tx.max_fee_per_gas(),
    };
    Transaction {
        inner: Recovered::new_unchecked(tx.tx.clone(), tx.sender),
        block_hash: ctx.map(|c| c.block_hash),
        block_number: ctx.map(|c| c.block_number),
        transaction_index: ctx.map(|c| c.index),
        effective_gas_price: Some(effective_gas_price),
        block_timestamp: ctx.map(|c| c.timestamp),
    }
}

/// A block as `eth_getBlockBy*` returns it.
pub fn rpc_block(block: &SealedBlock, full: bool) -> Block<Transaction> {
    let transactions = if full {
        BlockTransactions::Full(
            block
                .transactions
                .iter()
                .enumerate()
                .map(|(i, tx)| rpc_transaction(tx, Some(TxContext::of(block, i))))
                .collect(),
        )
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|tx| tx.hash).collect())
    };
    let size = block_size_bytes(block);
    Block {
        header: RpcHeader {
            hash: block.hash,
            inner: block.header.clone(),
            total_difficulty: None,
            size: Some(U256::from(size)),
        },
        uncles: Vec::new(),
        transactions,
        withdrawals: block.header.withdrawals_root.map(|_| Default::default()),
    }
}

/// The RLP length of the whole block, as `size` reports it: header,
/// transactions, ommers (none stored) and, from Shanghai, withdrawals (none
/// stored).
fn block_size_bytes(block: &SealedBlock) -> usize {
    let body = alloy_consensus::BlockBody {
        transactions: block.transactions.iter().map(|tx| tx.tx.clone()).collect(),
        ommers: Vec::<alloy_consensus::Header>::new(),
        withdrawals: block.header.withdrawals_root.map(|_| Default::default()),
    };
    alloy_consensus::Block::<_>::rlp_length_for(&block.header, &body)
}

/// The logs of one receipt with their block-wide positions.
pub fn rpc_logs(
    receipt: &ReceiptEnvelope,
    tx: &RecoveredTx,
    ctx: TxContext,
    first_log_index: u64,
) -> Vec<RpcLog> {
    receipt
        .logs()
        .iter()
        .enumerate()
        .map(|(i, log)| RpcLog {
            inner: log.clone(),
            block_hash: Some(ctx.block_hash),
            block_number: Some(ctx.block_number),
            block_timestamp: Some(ctx.timestamp),
            transaction_hash: Some(tx.hash),
            transaction_index: Some(ctx.index),
            log_index: Some(first_log_index + i as u64),
            removed: false,
        })
        .collect()
}

/// The receipt of transaction `index` of `block`, as `eth_getTransactionReceipt`
/// returns it (without the blob fields, which need the chain's blob schedule).
pub fn rpc_receipt(
    block: &SealedBlock,
    receipts: &[ReceiptEnvelope],
    index: usize,
) -> Option<RpcReceipt> {
    let tx = block.transactions.get(index)?;
    let receipt = receipts.get(index)?;
    let ctx = TxContext::of(block, index);
    let first_log_index: u64 = receipts[..index]
        .iter()
        .map(|r| r.logs().len() as u64)
        .sum();
    let previous_cumulative = index
        .checked_sub(1)
        .map_or(0, |prev| receipts[prev].cumulative_gas_used());
    let gas_used = receipt.cumulative_gas_used() - previous_cumulative;
    let logs = rpc_logs(receipt, tx, ctx, first_log_index);
    let mut logs = logs.into_iter();
    let inner = receipt
        .clone()
        .map_logs(|_| logs.next().expect("one RPC log per log"));
    let to = match tx.tx.kind() {
        TxKind::Call(to) => Some(to),
        TxKind::Create => None,
    };
    // Like geth, a creation reports its address even when it reverted.
    let contract_address = to.is_none().then(|| tx.sender.create(tx.tx.nonce()));
    let receipt = TransactionReceipt {
        inner,
        transaction_hash: tx.hash,
        transaction_index: Some(ctx.index),
        block_hash: Some(ctx.block_hash),
        block_number: Some(ctx.block_number),
        gas_used,
        effective_gas_price: tx.tx.effective_gas_price(ctx.base_fee),
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to,
        contract_address,
    };
    Some(RpcReceipt {
        receipt,
        block_timestamp: ctx.timestamp,
    })
}
