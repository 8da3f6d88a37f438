//! `eth_simulateV1`: simulates a chain of blocks on top of a stored block,
//! with block and state overrides, and answers with the blocks as geth
//! builds them (headers, roots and hashes included) and each call's outcome.

use std::collections::BTreeMap;

use alloy_consensus::{
    Block as ConsensusBlock, BlockBody, Eip658Value, Header, Receipt, ReceiptEnvelope,
    ReceiptWithBloom, Signed, Transaction as _, TxEip1559, TxEnvelope, TxLegacy,
};
use alloy_eips::{BlockId, BlockNumberOrTag, eip4895::Withdrawals};
use alloy_primitives::{Address, B256, Bytes, Log, TxKind, U256};
use alloy_rpc_types_eth::{
    BlockOverrides, TransactionRequest,
    simulate::{SimBlock, SimulatePayload},
    state::StateOverride,
};
use infera_chainspec::{BlockAttributes, GasLimit, NextBlock};
use infera_evm::{
    AccountOverride, BlockEnvInput, EvmError, ExecutionConfig, InvalidTransaction, Precompiles,
    SimulatedCall, Simulator, SpecId, TxEnv,
};
use infera_primitives::{RecoveredTx, StateReader};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

use crate::{RpcContext, RpcError, convert, testing::seal_header};

/// Most blocks one request may simulate (gaps included), as geth.
pub const MAX_SIMULATE_BLOCKS: u64 = 256;
/// Seconds between simulated blocks whose timestamp is not given.
pub const TIMESTAMP_INCREMENT: u64 = 12;
/// The sender of the logs `traceTransfers` adds for ether transfers.
const TRANSFER_LOG_ADDRESS: Address = Address::repeat_byte(0xee);

type SimResult<T> = Result<T, ErrorObjectOwned>;

fn err(code: i32, message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, message.into(), None::<()>)
}

fn rpc_err(e: RpcError) -> ErrorObjectOwned {
    e.into()
}

fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    err(crate::INVALID_PARAMS_CODE, message)
}

/// A block to simulate once numbers and timestamps are settled.
struct PlannedBlock {
    number: u64,
    timestamp: u64,
    block: SimBlock,
}

impl RpcContext {
    /// `eth_simulateV1`.
    pub fn simulate_v1(
        &self,
        payload: SimulatePayload,
        block: Option<BlockId>,
    ) -> SimResult<Value> {
        if payload.block_state_calls.is_empty() {
            return Err(invalid_params("empty input: blockStateCalls is empty"));
        }
        let reader = self.db().reader().map_err(|e| rpc_err(e.into()))?;
        let id = block.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest));
        let head = reader
            .head_number()
            .map_err(|e| rpc_err(e.into()))?
            .unwrap_or_default();
        let number = match id {
            BlockId::Number(BlockNumberOrTag::Number(n)) => Some(n).filter(|n| *n <= head),
            BlockId::Number(BlockNumberOrTag::Earliest) => Some(0),
            BlockId::Number(_) => Some(head),
            BlockId::Hash(hash) => reader
                .block_number(hash.block_hash)
                .map_err(|e| rpc_err(e.into()))?,
        }
        .ok_or_else(|| err(crate::SERVER_ERROR_CODE, "header not found"))?;
        let base = reader
            .header(number)
            .map_err(|e| rpc_err(e.into()))?
            .ok_or_else(|| err(crate::SERVER_ERROR_CODE, "header not found"))?;
        let planned = plan_blocks(&base, payload.block_state_calls)?;
        let spec = self.chain().spec_at(base.number, base.timestamp);
        let cfg = ExecutionConfig {
            chain_id: self.chain().chain_id(),
            spec,
        };
        let opts = Options {
            validation: payload.validation,
            trace_transfers: payload.trace_transfers,
            full_transactions: payload.return_full_transactions,
        };
        // A heavy call: it waits its turn; every block and call of the
        // request shares one deadline, and the gas cap is the budget of all
        // its calls together (as geth).
        let limits = self.call_limits();
        let _permit = self.enter_heavy(&limits).map_err(rpc_err)?;
        let budget = limits.gas_cap.unwrap_or(u64::MAX);
        let precompiles = self.precompiles(spec);
        let at_head = number == head;
        if at_head {
            let mut sim = Simulator::new(reader.latest_state(), cfg, precompiles, opts.validation);
            sim.set_deadline(limits.deadline);
            self.run_simulation(sim, base, planned, opts, at_head, budget)
        } else {
            let mut sim =
                Simulator::new(reader.state_at(number), cfg, precompiles, opts.validation);
            sim.set_deadline(limits.deadline);
            self.run_simulation(sim, base, planned, opts, at_head, budget)
        }
    }

    fn run_simulation<S: StateReader, P: Precompiles<S>>(
        &self,
        mut sim: Simulator<S, P>,
        base: Header,
        planned: Vec<PlannedBlock>,
        opts: Options,
        at_head: bool,
        mut budget: u64,
    ) -> SimResult<Value> {
        let mut parent = base;
        let mut out = Vec::with_capacity(planned.len());
        for block in planned {
            let (header, value) =
                self.simulate_block(&mut sim, &parent, block, &opts, &mut budget, at_head)?;
            parent = header;
            out.push(value);
        }
        Ok(Value::Array(out))
    }

    /// One simulated block: opened on its parent with the block overrides,
    /// the state overrides applied, the calls executed, then sealed and
    /// answered as geth does.
    fn simulate_block<S: StateReader, P: Precompiles<S>>(
        &self,
        sim: &mut Simulator<S, P>,
        parent: &Header,
        planned: PlannedBlock,
        opts: &Options,
        budget: &mut u64,
        at_head: bool,
    ) -> SimResult<(Header, Value)> {
        let PlannedBlock {
            number,
            timestamp,
            block,
        } = planned;
        let overrides = block.block_overrides.unwrap_or_default();
        let next = self.open_block(sim, parent, number, timestamp, &overrides, opts.validation)?;
        if let Some(state) = block.state_overrides {
            apply_state_overrides(sim, state)?;
        }
        let gas_limit = next.header().gas_limit;
        let executed = self.execute_calls(sim, block.calls, gas_limit, budget, opts)?;
        let requests = sim
            .end_block(self.chain().deposit_contract(), &executed.all_logs)
            .map_err(execution_error)?
            .unwrap_or_default();
        let state_root = self.simulated_state_root(sim, number, at_head)?;
        let spec = next.spec();
        let header = seal_header(
            next,
            state_root,
            &executed.transactions,
            &executed.receipts,
            &requests,
        );
        let hash = header.hash_slow();
        sim.set_block_hash(number, hash);
        let value = block_json(&header, hash, spec, &executed, opts.full_transactions)?;
        Ok((header, value))
    }

    /// Starts the simulated block after `parent`: its header as the builder
    /// would start it, with the block overrides laid over it, and the
    /// simulator's environment set from that header.
    fn open_block<S: StateReader, P: Precompiles<S>>(
        &self,
        sim: &mut Simulator<S, P>,
        parent: &Header,
        number: u64,
        timestamp: u64,
        overrides: &BlockOverrides,
        validation: bool,
    ) -> SimResult<NextBlock> {
        let mut next = NextBlock::new(
            self.chain(),
            parent,
            parent.hash_slow(),
            &BlockAttributes {
                timestamp,
                beneficiary: overrides.coinbase.unwrap_or(parent.beneficiary),
                prev_randao: overrides.random.unwrap_or_default(),
                gas_limit: overrides
                    .gas_limit
                    .map_or(GasLimit::Parent, GasLimit::Exact),
                extra_data: Bytes::new(),
                parent_beacon_block_root: B256::ZERO,
                withdrawals: Vec::new(),
            },
        );
        debug_assert_eq!(next.header().number, number);
        // Without validation the base fee is zero unless overridden (as geth),
        // so that calls with no gas price run.
        let base_fee =
            match overrides.base_fee {
                Some(fee) => Some(u64::try_from(fee).map_err(|_| {
                    invalid_params("baseFeePerGas override does not fit in 64 bits")
                })?),
                None if !validation => next.header().base_fee_per_gas.map(|_| 0),
                None => next.header().base_fee_per_gas,
            };
        {
            let header = next.header_mut();
            header.base_fee_per_gas = base_fee;
            if let Some(difficulty) = overrides.difficulty {
                header.difficulty = difficulty;
            }
        }
        let header = next.header();
        let env = BlockEnvInput::from_header(header, next.blob_base_fee_update_fraction());
        sim.set_block_hash(parent.number, header.parent_hash);
        sim.begin_block(next.spec(), env).map_err(execution_error)?;
        Ok(next)
    }

    /// Executes a block's calls in order. Each call's gas defaults to what
    /// the block has left and is capped by what the request's budget has
    /// left, which every executed call draws down.
    fn execute_calls<S: StateReader, P: Precompiles<S>>(
        &self,
        sim: &mut Simulator<S, P>,
        calls: Vec<TransactionRequest>,
        block_gas_limit: u64,
        budget: &mut u64,
        opts: &Options,
    ) -> SimResult<ExecutedCalls> {
        let chain_id = self.chain().chain_id();
        let mut gas_used = 0u64;
        let mut executed = ExecutedCalls::default();
        for request in calls {
            let (tx, env) =
                self.prepare_call(sim, request, chain_id, block_gas_limit, gas_used, *budget)?;
            let result = match sim.execute(env) {
                Ok(result) => result,
                Err(EvmError::InvalidTransaction(invalid)) => {
                    return Err(validation_error(&invalid, tx.sender));
                }
                Err(other) => return Err(execution_error(other)),
            };
            gas_used += result.gas_used;
            *budget = budget.saturating_sub(result.gas_used);
            executed.push(tx, result, gas_used, opts.trace_transfers);
        }
        Ok(executed)
    }

    /// The state root after everything simulated so far: the changes laid
    /// over the head state in a write transaction that is thrown away.
    fn simulated_state_root<S: StateReader, P: Precompiles<S>>(
        &self,
        sim: &Simulator<S, P>,
        number: u64,
        at_head: bool,
    ) -> SimResult<B256> {
        // Only the head's state is in the hashed tables the trie is built from.
        let _ = at_head;
        self.scratch_state_root(number, &sim.changes())
            .map_err(rpc_err)
    }

    /// Fills a call's defaults as geth does and builds its transaction (with
    /// an empty signature) and its execution environment.
    fn prepare_call<S: StateReader, P: Precompiles<S>>(
        &self,
        sim: &mut Simulator<S, P>,
        request: TransactionRequest,
        chain_id: u64,
        block_gas_limit: u64,
        gas_used: u64,
        budget: u64,
    ) -> SimResult<(RecoveredTx, TxEnv)> {
        let from = request.from.unwrap_or(Address::ZERO);
        if let Some(id) = request.chain_id
            && id != chain_id
        {
            return Err(invalid_params(format!(
                "chainId does not match node's (have={id}, want={chain_id})"
            )));
        }
        if request.gas_price.is_some()
            && (request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some())
        {
            return Err(invalid_params(
                "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified",
            ));
        }
        let nonce = match request.nonce {
            Some(n) => n,
            None => sim.nonce(from).map_err(internal)?,
        };
        let remaining = block_gas_limit.saturating_sub(gas_used);
        let gas = request.gas.unwrap_or(remaining);
        if gas_used.saturating_add(gas) > block_gas_limit {
            return Err(err(
                -38015,
                format!("block gas limit reached: {gas_used} >= {block_gas_limit}"),
            ));
        }
        let gas = gas.min(budget);
        let (tx, env) = call_transaction(request, from, chain_id, nonce, gas);
        let hash = *tx.tx_hash();
        Ok((
            RecoveredTx {
                tx,
                sender: from,
                hash,
            },
            env,
        ))
    }
}

/// The call as a transaction with an empty signature and its execution
/// environment: legacy where a gas price is given, EIP-1559 otherwise.
fn call_transaction(
    request: TransactionRequest,
    from: Address,
    chain_id: u64,
    nonce: u64,
    gas: u64,
) -> (TxEnvelope, TxEnv) {
    let value = request.value.unwrap_or_default();
    let input = request.input.into_input().unwrap_or_default();
    let kind = request.to.unwrap_or(TxKind::Create);
    let access_list = request.access_list.clone().unwrap_or_default();
    let zero_sig = alloy_primitives::Signature::new(U256::ZERO, U256::ZERO, false);
    if let Some(gas_price) = request.gas_price {
        let tx = TxLegacy {
            chain_id: Some(chain_id),
            nonce,
            gas_price,
            gas_limit: gas,
            to: kind,
            value,
            input: input.clone(),
        };
        let env = TxEnv {
            tx_type: 0,
            caller: from,
            gas_limit: gas,
            gas_price,
            kind,
            value,
            data: input,
            nonce,
            chain_id: Some(chain_id),
            access_list: Default::default(),
            gas_priority_fee: None,
            blob_hashes: Vec::new(),
            max_fee_per_blob_gas: 0,
            authorization_list: Vec::new(),
        };
        (TxEnvelope::Legacy(Signed::new_unhashed(tx, zero_sig)), env)
    } else {
        let max_fee = request.max_fee_per_gas.unwrap_or(0);
        let tip = request.max_priority_fee_per_gas.unwrap_or(0);
        let tx = TxEip1559 {
            chain_id,
            nonce,
            gas_limit: gas,
            max_fee_per_gas: max_fee,
            max_priority_fee_per_gas: tip,
            to: kind,
            value,
            access_list: access_list.clone(),
            input: input.clone(),
        };
        let env = TxEnv {
            tx_type: 2,
            caller: from,
            gas_limit: gas,
            gas_price: max_fee,
            kind,
            value,
            data: input,
            nonce,
            chain_id: Some(chain_id),
            access_list,
            gas_priority_fee: Some(tip),
            blob_hashes: Vec::new(),
            max_fee_per_blob_gas: 0,
            authorization_list: Vec::new(),
        };
        (TxEnvelope::Eip1559(Signed::new_unhashed(tx, zero_sig)), env)
    }
}

struct Options {
    validation: bool,
    trace_transfers: bool,
    full_transactions: bool,
}

/// What a simulated block's calls produced, in call order.
#[derive(Default)]
struct ExecutedCalls {
    transactions: Vec<RecoveredTx>,
    receipts: Vec<ReceiptEnvelope>,
    results: Vec<SimulatedCall>,
    /// Every log of the block as executed, for its EIP-7685 requests.
    all_logs: Vec<Log>,
    /// Each call's logs as answered: with `traceTransfers`, led by the
    /// transfer log of the ether it sent.
    call_logs: Vec<Vec<Log>>,
}

impl ExecutedCalls {
    /// Records an executed call; `gas_used` is the block's so far, with it.
    fn push(&mut self, tx: RecoveredTx, result: SimulatedCall, gas_used: u64, trace: bool) {
        let receipt = Receipt {
            status: Eip658Value::Eip658(result.success),
            cumulative_gas_used: gas_used,
            logs: result.logs.clone(),
        };
        let bloom = receipt.bloom_slow();
        let with_bloom = ReceiptWithBloom::new(receipt, bloom);
        self.receipts.push(match tx.tx {
            TxEnvelope::Legacy(_) => ReceiptEnvelope::Legacy(with_bloom),
            _ => ReceiptEnvelope::Eip1559(with_bloom),
        });
        self.all_logs.extend(result.logs.iter().cloned());
        let mut logs = result.logs.clone();
        if trace
            && let Some(TxKind::Call(_)) = Some(tx.tx.kind())
            && !tx.tx.value().is_zero()
            && result.success
        {
            logs.insert(0, transfer_log(tx.sender, tx_to(&tx.tx), tx.tx.value()));
        }
        self.call_logs.push(logs);
        self.results.push(result);
        self.transactions.push(tx);
    }
}

/// A simulated block as geth answers it: the header's fields, hash, size,
/// transactions (hashes or full), and each call's outcome.
fn block_json(
    header: &Header,
    hash: B256,
    spec: SpecId,
    executed: &ExecutedCalls,
    full_transactions: bool,
) -> SimResult<Value> {
    let shanghai = spec.is_enabled_in(SpecId::SHANGHAI);
    let body = BlockBody {
        transactions: executed.transactions.iter().map(|t| t.tx.clone()).collect(),
        ommers: Vec::new(),
        withdrawals: shanghai.then(Withdrawals::default),
    };
    let size = alloy_rlp::Encodable::length(&ConsensusBlock {
        header: header.clone(),
        body,
    });
    let calls_json = calls_json(executed, header, hash);
    let transactions_json: Vec<Value> = if full_transactions {
        executed
            .transactions
            .iter()
            .enumerate()
            .map(|(i, tx)| {
                let ctx = convert::TxContext {
                    block_hash: hash,
                    block_number: header.number,
                    index: i as u64,
                    base_fee: header.base_fee_per_gas,
                    timestamp: header.timestamp,
                };
                serde_json::to_value(convert::rpc_transaction(tx, Some(ctx))).unwrap_or(Value::Null)
            })
            .collect()
    } else {
        executed
            .transactions
            .iter()
            .map(|t| json!(t.hash))
            .collect()
    };
    let mut value = serde_json::to_value(header).map_err(|e| internal(e.to_string()))?;
    if let Value::Object(map) = &mut value {
        map.insert("hash".into(), json!(hash));
        map.insert("size".into(), json!(format!("{size:#x}")));
        map.insert("transactions".into(), Value::Array(transactions_json));
        map.insert("uncles".into(), json!([]));
        if shanghai {
            map.insert("withdrawals".into(), json!([]));
        }
        map.insert("calls".into(), Value::Array(calls_json));
    }
    Ok(value)
}

/// Each call's outcome: return data, logs (indexed across the block), gas,
/// status, and geth's error object for a revert or a halt.
fn calls_json(executed: &ExecutedCalls, header: &Header, hash: B256) -> Vec<Value> {
    let (number, timestamp) = (header.number, header.timestamp);
    let mut log_index = 0u64;
    executed
        .results
        .iter()
        .zip(&executed.call_logs)
        .zip(&executed.transactions)
        .enumerate()
        .map(|(i, ((call, logs), tx))| {
            let logs: Vec<Value> = logs
                .iter()
                .map(|log| {
                    let v = json!({
                        "address": log.address,
                        "topics": log.topics(),
                        "data": log.data.data,
                        "blockNumber": format!("{number:#x}"),
                        "transactionHash": tx.hash,
                        "transactionIndex": format!("{i:#x}"),
                        "blockHash": hash,
                        "blockTimestamp": format!("{timestamp:#x}"),
                        "logIndex": format!("{log_index:#x}"),
                        "removed": false,
                    });
                    log_index += 1;
                    v
                })
                .collect();
            let mut v = json!({
                "returnData": if call.success { call.output.clone() } else { Bytes::new() },
                "logs": logs,
                "gasUsed": format!("{:#x}", call.gas_used),
                "maxUsedGas": format!("{:#x}", call.max_used_gas),
                "status": if call.success { "0x1" } else { "0x0" },
            });
            if call.reverted {
                let message = match infera_evm::decode_revert_reason(&call.output) {
                    Some(reason) => format!("execution reverted: {reason}"),
                    None => "execution reverted".to_string(),
                };
                v["error"] = json!({"message": message, "code": 3, "data": call.output});
            } else if let Some(reason) = &call.halt_reason {
                v["error"] = json!({"message": reason, "code": -32015});
            }
            v
        })
        .collect()
}

/// Lays the request's state overrides over the simulator's state. Moving a
/// precompile that is not one is geth's -32000; other faults are invalid
/// params.
fn apply_state_overrides<S: StateReader, P: Precompiles<S>>(
    sim: &mut Simulator<S, P>,
    state: StateOverride,
) -> SimResult<()> {
    let mut accounts = BTreeMap::new();
    for (address, account) in state {
        let to_map = |m: &alloy_primitives::map::B256HashMap<B256>| {
            m.iter()
                .map(|(k, v)| (U256::from_be_bytes(k.0), U256::from_be_bytes(v.0)))
                .collect::<BTreeMap<_, _>>()
        };
        accounts.insert(
            address,
            AccountOverride {
                nonce: account.nonce,
                balance: account.balance,
                code: account.code.clone(),
                state: account.state.as_ref().map(to_map),
                state_diff: account.state_diff.as_ref().map(to_map),
                move_precompile_to: account.move_precompile_to,
            },
        );
    }
    match sim.apply_overrides(&accounts).map_err(internal)? {
        Ok(()) => Ok(()),
        Err(e @ infera_evm::OverrideError::NotAPrecompile(_)) => {
            Err(err(crate::SERVER_ERROR_CODE, e.to_string()))
        }
        Err(e) => Err(invalid_params(e.to_string())),
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(crate::INTERNAL_ERROR_CODE, e.to_string())
}

/// A failed execution: past the deadline, geth's "execution aborted" (-32000);
/// anything else, an internal error.
fn execution_error(e: EvmError) -> ErrorObjectOwned {
    match e {
        timeout @ EvmError::Timeout { .. } => rpc_err(crate::eth::evm_error(timeout)),
        other => internal(other),
    }
}

fn tx_to(tx: &TxEnvelope) -> Address {
    use alloy_consensus::Transaction as _;
    tx.to().unwrap_or_default()
}

/// The ERC-20 style `Transfer` log `traceTransfers` reports for an ether transfer.
fn transfer_log(from: Address, to: Address, value: U256) -> Log {
    let topic = alloy_primitives::keccak256("Transfer(address,address,uint256)");
    Log::new_unchecked(
        TRANSFER_LOG_ADDRESS,
        vec![topic, from.into_word(), to.into_word()],
        Bytes::from(value.to_be_bytes::<32>().to_vec()),
    )
}

/// Geth's error codes for calls a block could not include.
fn validation_error(invalid: &InvalidTransaction, from: Address) -> ErrorObjectOwned {
    let code = match invalid {
        InvalidTransaction::NonceTooLow { .. } => -38010,
        InvalidTransaction::NonceTooHigh { .. } => -38011,
        InvalidTransaction::FeeCapBelowBaseFee { .. } => -38012,
        InvalidTransaction::Other(m) if m.contains("less than block base fee") => -38012,
        InvalidTransaction::IntrinsicGasTooLow { .. } => -38013,
        InvalidTransaction::InsufficientFunds { .. } => -38014,
        InvalidTransaction::GasLimitAboveBlockRemaining { .. }
        | InvalidTransaction::GasLimitAboveBlockLimit { .. } => -38015,
        InvalidTransaction::SenderNotEoa => -38024,
        InvalidTransaction::NonceOverflow => crate::INTERNAL_ERROR_CODE,
        _ => crate::SERVER_ERROR_CODE,
    };
    err(code, format!("err: {invalid}: address {from}"))
}

/// Settles numbers and timestamps (geth's rules), filling gaps with empty blocks.
fn plan_blocks(base: &Header, blocks: Vec<SimBlock>) -> SimResult<Vec<PlannedBlock>> {
    let mut out = Vec::new();
    let mut prev_number = base.number;
    let mut prev_time = base.timestamp;
    for block in blocks {
        let overrides = block.block_overrides.clone().unwrap_or_default();
        let number = match overrides.number {
            Some(n) => u64::try_from(n)
                .map_err(|_| invalid_params("block number override does not fit in 64 bits"))?,
            None => prev_number.saturating_add(1),
        };
        if number <= prev_number {
            return Err(err(
                -38020,
                format!("block numbers must be in order: {number} <= {prev_number}"),
            ));
        }
        if number - base.number > MAX_SIMULATE_BLOCKS {
            return Err(err(-38026, "too many blocks"));
        }
        for gap in prev_number + 1..number {
            prev_time = prev_time.saturating_add(TIMESTAMP_INCREMENT);
            out.push(PlannedBlock {
                number: gap,
                timestamp: prev_time,
                block: SimBlock::default(),
            });
        }
        let timestamp = match overrides.time {
            Some(t) => {
                if t <= prev_time {
                    return Err(err(
                        -38021,
                        format!("block timestamps must be in order: {t} <= {prev_time}"),
                    ));
                }
                t
            }
            None => prev_time.saturating_add(TIMESTAMP_INCREMENT),
        };
        prev_number = number;
        prev_time = timestamp;
        out.push(PlannedBlock {
            number,
            timestamp,
            block,
        });
    }
    Ok(out)
}
