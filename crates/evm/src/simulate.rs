//! The execution engine of `eth_simulateV1`: a chain of simulated blocks on
//! one state, with state overrides and precompiles that can be moved.

use std::collections::{BTreeMap, HashMap};

use alloy_eips::eip7685::Requests;
use alloy_primitives::{Address, Bytes, Log, U256};
use infera_primitives::{StateChanges, StateReader};
use revm::{
    ExecuteEvm,
    context::{ContextTr, TxEnv, result::ExecutionResult},
    handler::PrecompileProvider,
    interpreter::{CallInputs, InterpreterResult},
    primitives::{AddressSet, hardfork::SpecId},
};

use crate::{
    db::StateDb,
    env::{BlockEnvInput, ExecutionConfig},
    error::{EvmError, Result},
    executor::{
        EvmContext, InferaEvm, Precompiles, block_requests, build_evm, from_evm_error,
        pre_block_system_calls,
    },
    limits::{ActiveDeadline, Deadline, check_frame, install_jump_checks},
};

/// A precompile provider whose precompiles can be moved to other addresses
/// (`movePrecompileToAddress`) or replaced by code (a code override).
#[derive(Debug, Clone)]
pub struct MovablePrecompiles<P> {
    inner: P,
    /// Destination -> the original address of the precompile found there.
    moved: HashMap<Address, Address>,
    /// Original addresses that no longer hold their precompile.
    removed: AddressSet,
    warm: AddressSet,
    /// The set changed since revm last asked: it must re-warm the addresses.
    pending: bool,
}

impl<P> MovablePrecompiles<P> {
    /// `inner` with nothing moved.
    pub fn new(inner: P) -> Self {
        Self {
            inner,
            moved: HashMap::new(),
            removed: AddressSet::default(),
            warm: AddressSet::default(),
            pending: true,
        }
    }

    /// The original address of the precompile now at `address`, if any.
    fn source<S: StateReader>(&self, address: &Address) -> Option<Address>
    where
        P: Precompiles<S>,
    {
        if let Some(source) = self.moved.get(address) {
            return Some(*source);
        }
        (!self.removed.contains(address) && self.inner.contains(address)).then_some(*address)
    }
}

impl<S: StateReader, P: Precompiles<S>> PrecompileProvider<EvmContext<S>>
    for MovablePrecompiles<P>
{
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        let changed = self.inner.set_spec(spec);
        // Like geth, the warm set stays the fork's precompile addresses,
        // whatever was moved or replaced.
        self.warm = self.inner.warm_addresses().clone();
        let pending = std::mem::take(&mut self.pending);
        changed || pending
    }

    fn run(
        &mut self,
        context: &mut EvmContext<S>,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        // Every call frame passes here: the simulation's deadline stops it
        // before another precompile (an inference) runs.
        check_frame()?;
        match self.source::<S>(&inputs.bytecode_address) {
            None => Ok(None),
            Some(source) if source == inputs.bytecode_address => self.inner.run(context, inputs),
            Some(source) => {
                let mut redirected = inputs.clone();
                redirected.bytecode_address = source;
                self.inner.run(context, &redirected)
            }
        }
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }
}

/// One account's state override.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountOverride {
    pub nonce: Option<u64>,
    pub balance: Option<U256>,
    pub code: Option<Bytes>,
    /// Replaces the whole storage.
    pub state: Option<BTreeMap<U256, U256>>,
    /// Sets single slots.
    pub state_diff: Option<BTreeMap<U256, U256>>,
    /// Moves the precompile at this account to another address.
    pub move_precompile_to: Option<Address>,
}

/// Why state overrides were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    #[error("account {0} is not a precompile")]
    NotAPrecompile(Address),
    #[error("account {0} is already overridden")]
    DestinationOverridden(Address),
    #[error("account {0} has both 'state' and 'stateDiff'")]
    StateAndStateDiff(Address),
}

/// What one simulated call did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedCall {
    /// True when the call returned (status 1).
    pub success: bool,
    /// Return data, or revert data.
    pub output: Bytes,
    /// Gas used after refunds.
    pub gas_used: u64,
    /// Gas used before refunds.
    pub max_used_gas: u64,
    /// Logs (empty unless `success`).
    pub logs: Vec<Log>,
    /// `Some` when the call reverted (`true`) or halted (`false`, with the reason).
    pub halt_reason: Option<String>,
    /// True when the call reverted.
    pub reverted: bool,
}

/// A chain of simulated blocks executed on one state.
pub struct Simulator<S: StateReader, P: Precompiles<S>> {
    evm: InferaEvm<S, MovablePrecompiles<P>>,
    cfg: ExecutionConfig,
    validation: bool,
    env: BlockEnvInput,
    deadline: Option<Deadline>,
}

impl<S: StateReader, P: Precompiles<S>> std::fmt::Debug for Simulator<S, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("cfg", &self.cfg)
            .field("validation", &self.validation)
            .finish_non_exhaustive()
    }
}

impl<S: StateReader, P: Precompiles<S>> Simulator<S, P> {
    /// A simulator over `state`. Without `validation`, nonces, the base fee
    /// and the EIP-7825 gas cap are not checked; the sender's code never is.
    pub fn new(state: S, cfg: ExecutionConfig, precompiles: P, validation: bool) -> Self {
        let mut cfg_env = cfg.cfg_env();
        cfg_env.disable_eip3607 = true;
        cfg_env.tx_gas_limit_cap = Some(u64::MAX);
        if !validation {
            cfg_env.disable_nonce_check = true;
            cfg_env.disable_base_fee = true;
        }
        let env = BlockEnvInput::default();
        let mut evm = build_evm(
            StateDb::new(state),
            cfg_env,
            env.block_env(cfg.spec),
            MovablePrecompiles::new(precompiles),
        );
        install_jump_checks(&mut evm);
        Self {
            evm,
            cfg,
            validation,
            env,
            deadline: None,
        }
    }

    /// Stops every later execution (system calls included) with
    /// [`EvmError::Timeout`] once `deadline` has passed: one deadline for
    /// the whole simulation.
    pub fn set_deadline(&mut self, deadline: Option<Deadline>) {
        self.deadline = deadline;
    }

    fn db(&mut self) -> &mut StateDb<S> {
        &mut self.evm.ctx.journaled_state.database
    }

    /// Starts a block: its environment and fork, then the pre-block system
    /// calls (EIP-4788, EIP-2935).
    pub fn begin_block(&mut self, spec: SpecId, env: BlockEnvInput) -> Result<()> {
        self.cfg.spec = spec;
        self.env = env;
        self.evm.ctx.cfg.spec = spec;
        self.evm.ctx.block = env.block_env(spec);
        self.refresh_precompiles();
        let deadline = ActiveDeadline::enter(self.deadline);
        deadline.check()?;
        pre_block_system_calls(&mut self.evm, spec, &self.env).map_err(|e| deadline.map_err(e))
    }

    fn refresh_precompiles(&mut self) {
        let spec = self.cfg.spec;
        <MovablePrecompiles<P> as PrecompileProvider<EvmContext<S>>>::set_spec(
            &mut self.evm.precompiles,
            spec,
        );
        // revm re-warms the set on the next transaction.
        self.evm.precompiles.pending = true;
    }

    /// Whether `address` holds a precompile now.
    pub fn is_precompile(&self, address: &Address) -> bool {
        self.evm.precompiles.source::<S>(address).is_some()
    }

    /// Applies one block's state overrides, in address order.
    pub fn apply_overrides(
        &mut self,
        overrides: &BTreeMap<Address, AccountOverride>,
    ) -> Result<std::result::Result<(), OverrideError>> {
        let mut destinations = AddressSet::default();
        for (address, account) in overrides {
            if destinations.contains(address) {
                return Ok(Err(OverrideError::DestinationOverridden(*address)));
            }
            let source = self.evm.precompiles.source::<S>(address);
            if let Some(to) = account.move_precompile_to {
                let Some(source) = source else {
                    return Ok(Err(OverrideError::NotAPrecompile(*address)));
                };
                if overrides.contains_key(&to) {
                    return Ok(Err(OverrideError::DestinationOverridden(to)));
                }
                self.evm.precompiles.moved.insert(to, source);
                self.evm.precompiles.removed.remove(&to);
                destinations.insert(to);
            }
            if source.is_some() {
                self.evm.precompiles.moved.remove(address);
                self.evm.precompiles.removed.insert(*address);
            }
            if account.state.is_some() && account.state_diff.is_some() {
                return Ok(Err(OverrideError::StateAndStateDiff(*address)));
            }
            self.db()
                .override_account(
                    *address,
                    account.nonce,
                    account.balance,
                    account.code.clone(),
                    account.state.as_ref(),
                    account.state_diff.as_ref(),
                )
                .map_err(EvmError::Database)?;
        }
        self.refresh_precompiles();
        Ok(Ok(()))
    }

    /// The sender's nonce now.
    pub fn nonce(&mut self, address: Address) -> Result<u64> {
        Ok(self
            .db()
            .account(address)
            .map_err(EvmError::Database)?
            .map_or(0, |a| a.nonce))
    }

    /// Executes one call and keeps its changes. `Err(InvalidTransaction)`
    /// changes nothing.
    pub fn execute(&mut self, tx: TxEnv) -> Result<SimulatedCall> {
        if self.validation
            && let Some(tip) = tx.gas_priority_fee
            && tip > tx.gas_price
        {
            return Err(crate::InvalidTransaction::TipAboveFeeCap {
                tip,
                max_fee: tx.gas_price,
            }
            .into());
        }
        let deadline = ActiveDeadline::enter(self.deadline);
        deadline.check()?;
        let result = self.evm.transact_one(tx);
        let state = self.evm.finalize();
        let result = result.map_err(|e| deadline.map_err(from_evm_error(e)))?;
        let spec = self.cfg.spec;
        self.db().commit(state, spec);
        let gas = *result.gas();
        let gas_used = result.tx_gas_used();
        let max_used_gas = gas.total_gas_spent().max(gas.floor_gas()).max(gas_used);
        Ok(match result {
            ExecutionResult::Success { output, logs, .. } => SimulatedCall {
                success: true,
                output: output.into_data(),
                gas_used,
                max_used_gas,
                logs,
                halt_reason: None,
                reverted: false,
            },
            ExecutionResult::Revert { output, .. } => SimulatedCall {
                success: false,
                output,
                gas_used,
                max_used_gas,
                logs: Vec::new(),
                halt_reason: None,
                reverted: true,
            },
            ExecutionResult::Halt { reason, .. } => SimulatedCall {
                success: false,
                output: Bytes::new(),
                gas_used,
                max_used_gas,
                logs: Vec::new(),
                halt_reason: Some(halt_message(&reason)),
                reverted: false,
            },
        })
    }

    /// Ends a block: the EIP-7685 requests (deposits from `logs`, then the
    /// EIP-7002 and EIP-7251 system calls), Prague and later.
    pub fn end_block(
        &mut self,
        deposit_contract: Address,
        logs: &[Log],
    ) -> Result<Option<Requests>> {
        if !self.cfg.spec.is_enabled_in(SpecId::PRAGUE) {
            return Ok(None);
        }
        let deadline = ActiveDeadline::enter(self.deadline);
        deadline.check()?;
        block_requests(&mut self.evm, self.cfg.spec, deposit_contract, logs)
            .map(Some)
            .map_err(|e| deadline.map_err(e))
    }

    /// Everything changed so far, relative to the state simulated on.
    pub fn changes(&self) -> StateChanges {
        self.evm.ctx.journaled_state.database.changes()
    }

    /// Block hashes the BLOCKHASH opcode sees for simulated blocks.
    pub fn set_block_hash(&mut self, number: u64, hash: alloy_primitives::B256) {
        self.db().set_block_hash(number, hash);
    }

    /// The block the simulator is in.
    pub fn block_env(&self) -> &BlockEnvInput {
        &self.env
    }

    /// The context, for callers that need revm's view.
    pub fn block_number(&self) -> u64 {
        self.evm.ctx.block().number.saturating_to()
    }
}

/// Geth's wording of an exceptional halt.
fn halt_message(reason: &revm::context::result::HaltReason) -> String {
    use revm::context::result::HaltReason as H;
    match reason {
        H::OutOfGas(_) => "out of gas".into(),
        H::OpcodeNotFound | H::InvalidFEOpcode => "invalid opcode".into(),
        H::StackUnderflow => "stack underflow".into(),
        H::StackOverflow => "stack overflow".into(),
        H::InvalidJump => "invalid jump destination".into(),
        H::CallTooDeep => "max call depth exceeded".into(),
        H::OutOfFunds => "insufficient balance for transfer".into(),
        H::CreateCollision => "contract address collision".into(),
        H::StateChangeDuringStaticCall => "write protection".into(),
        H::CreateContractSizeLimit => "max code size exceeded".into(),
        H::CreateContractStartingWithEF => "invalid code: must not begin with 0xef".into(),
        H::CreateInitCodeSizeLimit => "max initcode size exceeded".into(),
        H::OutOfOffset => "return data out of bounds".into(),
        H::NonceOverflow => "nonce uint64 overflow".into(),
        other => format!("{other:?}"),
    }
}
