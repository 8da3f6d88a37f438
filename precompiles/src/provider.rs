//! The precompile provider the node runs: revm's Ethereum set plus the model
//! registry and inference precompiles.

use std::sync::Arc;

use alloy_primitives::{Address, Bytes};
use revm::{
    context::Cfg,
    context_interface::{Block, ContextTr},
    handler::{EthPrecompiles, PrecompileProvider, precompile_output_to_interpreter_result},
    interpreter::{CallInputs, CallScheme, InterpreterResult},
    precompile::{PrecompileHalt, PrecompileOutput},
    primitives::{AddressSet, hardfork::SpecId},
};

use crate::{
    abi::{INFERENCE_ADDRESS, MODEL_REGISTRY_ADDRESS, MalformedCall},
    cache::ModelCache,
    gas,
    host::{Exit, GasMeter, Host, revert},
    inference,
    registry::{self, CallEnv},
};

/// revm's [`EthPrecompiles`] with the AI precompiles added. Cheap to clone:
/// the decoded-model cache is shared.
#[derive(Debug, Clone)]
pub struct InferaPrecompiles {
    eth: EthPrecompiles,
    warm: AddressSet,
    cache: Arc<ModelCache>,
}

/// The addresses of the AI precompiles.
pub const AI_PRECOMPILES: [Address; 2] = [MODEL_REGISTRY_ADDRESS, INFERENCE_ADDRESS];

impl InferaPrecompiles {
    /// The precompiles of `spec`, decoding models through `cache`.
    pub fn new(spec: SpecId, cache: Arc<ModelCache>) -> Self {
        let eth = EthPrecompiles::new(spec);
        let warm = Self::warm_set(&eth);
        Self { eth, warm, cache }
    }

    fn warm_set(eth: &EthPrecompiles) -> AddressSet {
        let mut warm = eth.warm_addresses().clone();
        warm.extend(AI_PRECOMPILES);
        warm
    }

    /// The shared decoded-model cache.
    pub fn cache(&self) -> &Arc<ModelCache> {
        &self.cache
    }
}

impl<CTX: ContextTr> PrecompileProvider<CTX> for InferaPrecompiles {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: <CTX::Cfg as Cfg>::Spec) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<CTX>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = Self::warm_set(&self.eth);
        }
        changed
    }

    fn run(
        &mut self,
        context: &mut CTX,
        inputs: &CallInputs,
    ) -> Result<Option<InterpreterResult>, String> {
        let address = inputs.bytecode_address;
        if !AI_PRECOMPILES.contains(&address) {
            return <EthPrecompiles as PrecompileProvider<CTX>>::run(
                &mut self.eth,
                context,
                inputs,
            );
        }
        let input = Bytes::copy_from_slice(&inputs.input.as_bytes(context));
        let block_number = context.block().number().saturating_to::<u64>();
        let mut meter = GasMeter::new(inputs.gas_limit);
        let mut host = Host::new(context.journal_mut());
        let result = if matches!(
            inputs.scheme,
            CallScheme::DelegateCall | CallScheme::CallCode
        ) {
            meter.charge(gas::REGISTRY_BASE_GAS).and_then(|()| {
                Err(revert(MalformedCall {
                    reason: "the AI precompiles cannot be called with DELEGATECALL or CALLCODE"
                        .into(),
                }))
            })
        } else if !inputs.value.get().is_zero() {
            meter.charge(gas::REGISTRY_BASE_GAS).and_then(|()| {
                Err(revert(MalformedCall {
                    reason: "the AI precompiles accept no value".into(),
                }))
            })
        } else if address == MODEL_REGISTRY_ADDRESS {
            let env = CallEnv {
                caller: inputs.caller,
                is_static: inputs.is_static,
                block_number,
                cache: &self.cache,
            };
            registry::run(&mut host, &mut meter, &env, &input)
        } else {
            inference::run(&mut host, &mut meter, &self.cache, &input)
        };
        let output = match result {
            Ok(bytes) => PrecompileOutput::new(meter.used(), bytes, inputs.reservoir),
            Err(Exit::Revert(bytes)) => {
                PrecompileOutput::revert(meter.used(), bytes, inputs.reservoir)
            }
            Err(Exit::OutOfGas) => {
                PrecompileOutput::halt(PrecompileHalt::OutOfGas, inputs.reservoir)
            }
            Err(Exit::Fatal(message)) => return Err(message),
        };
        Ok(Some(precompile_output_to_interpreter_result(
            output,
            inputs.gas_limit,
        )))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}
