//! The forks a genesis config schedules, in one list: what EIP-2124 fork
//! hashes and EIP-7910 `eth_config` are computed from.

use crate::ChainSpec;

/// A fork the genesis config can schedule, named after its config field, in
/// Ethereum's activation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fork {
    Homestead,
    DaoFork,
    Eip150,
    Eip155,
    Eip158,
    Byzantium,
    Constantinople,
    Petersburg,
    Istanbul,
    MuirGlacier,
    Berlin,
    London,
    ArrowGlacier,
    GrayGlacier,
    MergeNetsplit,
    Shanghai,
    Cancun,
    Prague,
    Osaka,
    Bpo1,
    Bpo2,
    Bpo3,
    Bpo4,
    Bpo5,
    Amsterdam,
}

/// When a fork activates: before the merge by block number, from Shanghai on
/// by block timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForkActivation {
    /// At this block number.
    Block(u64),
    /// At the first block with at least this timestamp.
    Time(u64),
}

impl ChainSpec {
    /// Every fork the genesis config schedules, in [`Fork`] order, with its
    /// activation as written (forks at genesis included; forks the config
    /// leaves out absent).
    pub fn forks(&self) -> Vec<(Fork, ForkActivation)> {
        let c = &self.genesis.config;
        let by_block = [
            (Fork::Homestead, c.homestead_block),
            (Fork::DaoFork, c.dao_fork_block),
            (Fork::Eip150, c.eip150_block),
            (Fork::Eip155, c.eip155_block),
            (Fork::Eip158, c.eip158_block),
            (Fork::Byzantium, c.byzantium_block),
            (Fork::Constantinople, c.constantinople_block),
            (Fork::Petersburg, c.petersburg_block),
            (Fork::Istanbul, c.istanbul_block),
            (Fork::MuirGlacier, c.muir_glacier_block),
            (Fork::Berlin, c.berlin_block),
            (Fork::London, c.london_block),
            (Fork::ArrowGlacier, c.arrow_glacier_block),
            (Fork::GrayGlacier, c.gray_glacier_block),
            (Fork::MergeNetsplit, c.merge_netsplit_block),
        ];
        let by_time = [
            (Fork::Shanghai, c.shanghai_time),
            (Fork::Cancun, c.cancun_time),
            (Fork::Prague, c.prague_time),
            (Fork::Osaka, c.osaka_time),
            (Fork::Bpo1, c.bpo1_time),
            (Fork::Bpo2, c.bpo2_time),
            (Fork::Bpo3, c.bpo3_time),
            (Fork::Bpo4, c.bpo4_time),
            (Fork::Bpo5, c.bpo5_time),
            (Fork::Amsterdam, c.amsterdam_time),
        ];
        let blocks = by_block
            .into_iter()
            .filter_map(|(fork, at)| Some((fork, ForkActivation::Block(at?))));
        let times = by_time
            .into_iter()
            .filter_map(|(fork, at)| Some((fork, ForkActivation::Time(at?))));
        blocks.chain(times).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_lists_the_scheduled_forks_in_order() {
        let json = r#"{"config":{"chainId":1,"homesteadBlock":0,"eip150Block":0,"eip155Block":0,
            "eip158Block":0,"byzantiumBlock":0,"constantinopleBlock":0,"petersburgBlock":0,
            "istanbulBlock":0,"berlinBlock":5,"londonBlock":10,"shanghaiTime":100,"cancunTime":200},
            "gasLimit":"0x1000000","difficulty":"0x1","alloc":{}}"#;
        let spec = ChainSpec::from_json(json).unwrap();
        let forks = spec.forks();
        assert_eq!(forks.len(), 12);
        assert_eq!(forks[0], (Fork::Homestead, ForkActivation::Block(0)));
        assert_eq!(forks[8], (Fork::Berlin, ForkActivation::Block(5)));
        assert_eq!(forks[9], (Fork::London, ForkActivation::Block(10)));
        assert_eq!(forks[10], (Fork::Shanghai, ForkActivation::Time(100)));
        assert_eq!(forks[11], (Fork::Cancun, ForkActivation::Time(200)));
        assert!(!forks.iter().any(|(f, _)| *f == Fork::DaoFork));
    }
}
