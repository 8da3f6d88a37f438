//! `eth_createAccessList`: run a call, list every account and storage slot it
//! touched, run again with that list until it is stable (as geth does).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use alloy_eips::eip2930::{AccessList, AccessListItem};
use alloy_primitives::{Address, B256};
use infera_primitives::StateReader;
use revm::ExecuteEvm;

use crate::{
    call::{CallOutcome, CallRequest, build_call_evm, call_env, check_value_covered},
    db::StateDb,
    env::{BlockEnvInput, ExecutionConfig},
    error::Result,
    executor::{Precompiles, from_evm_error},
    limits::{ActiveDeadline, CallLimits},
};

/// Most runs before the list is taken as it is (geth has no bound; each run
/// only adds entries, so the list converges quickly in practice).
pub const MAX_ACCESS_LIST_RUNS: usize = 16;

/// What `eth_createAccessList` answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessListOutcome {
    /// Accounts and slots the call touched, without the caller, the
    /// precompiles, and the callee and coinbase unless storage of theirs was
    /// touched.
    pub access_list: AccessList,
    /// The outcome of the last run, made with `access_list`.
    pub outcome: CallOutcome,
}

/// Builds the access list of `req` on `state`. `state` and `precompiles` are
/// cloned for each run; every run's gas is lowered to the cap of `limits`, and
/// all runs stop at its one deadline.
pub fn create_access_list<S, P>(
    state: S,
    cfg: ExecutionConfig,
    env: BlockEnvInput,
    mut req: CallRequest,
    precompiles: P,
    limits: CallLimits,
) -> Result<AccessListOutcome>
where
    S: StateReader + Clone,
    P: Precompiles<S> + Clone,
{
    let caller = req.from.unwrap_or(Address::ZERO);
    let precompile_addresses: HashSet<Address> =
        precompiles.warm_addresses().iter().copied().collect();
    let mut list: BTreeMap<Address, BTreeSet<B256>> = BTreeMap::new();
    for item in req.access_list.iter().flat_map(|l| l.0.iter()) {
        list.entry(item.address)
            .or_default()
            .extend(item.storage_keys.iter().copied());
    }
    let deadline = ActiveDeadline::enter(limits.deadline);
    let beneficiary = env.beneficiary;
    let mut runs = 0;
    loop {
        runs += 1;
        deadline.check()?;
        req.access_list = Some(to_access_list(&list));
        let (cfg_env, tx) = call_env(&cfg, &env, &req, &limits)?;
        let mut db = StateDb::new(state.clone());
        check_value_covered(&mut db, &tx)?;
        let mut evm = build_call_evm(db, cfg_env, &env, cfg, precompiles.clone());
        let result = evm.transact_one(tx);
        let touched = evm.finalize();
        let result = result.map_err(|e| deadline.map_err(from_evm_error(e)))?;
        let outcome = CallOutcome::from_result(result);
        let mut next = list.clone();
        for (address, account) in touched {
            if address == caller || precompile_addresses.contains(&address) {
                continue;
            }
            let slots: Vec<B256> = account.storage.keys().map(|k| B256::from(*k)).collect();
            let is_callee = req.to == Some(address) || address == beneficiary;
            if slots.is_empty() && is_callee {
                continue;
            }
            next.entry(address).or_default().extend(slots);
        }
        if next == list || runs >= MAX_ACCESS_LIST_RUNS {
            return Ok(AccessListOutcome {
                access_list: to_access_list(&next),
                outcome,
            });
        }
        list = next;
    }
}

fn to_access_list(list: &BTreeMap<Address, BTreeSet<B256>>) -> AccessList {
    AccessList(
        list.iter()
            .map(|(address, keys)| AccessListItem {
                address: *address,
                storage_keys: keys.iter().copied().collect(),
            })
            .collect(),
    )
}
