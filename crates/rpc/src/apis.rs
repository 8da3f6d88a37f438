//! Which JSON-RPC namespaces a server answers (`--http.api`), as geth and
//! reth select them: a public node should not serve `debug_` (traces cost a
//! lot and expose internals), `testing_` (builds blocks on request) or
//! `personal_` (signs with unlocked accounts; only `--dev` has any) or `admin_` (adds and
//! removes peers).

use std::{collections::BTreeSet, fmt, str::FromStr};

/// Every namespace this node serves, in the order `--help` lists them.
pub const ALL_NAMESPACES: &[&str] = &[
    "eth", "net", "web3", "txpool", "infera", "personal", "debug", "testing", "admin",
];

/// What a node that is not `--dev` serves unless told otherwise.
pub const PUBLIC_NAMESPACES: &[&str] = &["eth", "net", "web3", "txpool", "infera"];

/// A set of JSON-RPC namespaces. The default is every namespace (what
/// `--dev` and the library's tests want); `infera node` without `--dev`
/// starts from [`RpcApis::public`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RpcApis(BTreeSet<&'static str>);

impl RpcApis {
    /// Every namespace.
    pub fn all() -> Self {
        Self(ALL_NAMESPACES.iter().copied().collect())
    }

    /// The namespaces a public node serves by default.
    pub fn public() -> Self {
        Self(PUBLIC_NAMESPACES.iter().copied().collect())
    }

    /// Whether a method is served: its namespace (the name up to the first
    /// `_`) is in the set. A method of no known namespace is always served,
    /// so a namespace added later cannot vanish unnoticed (a test checks
    /// every registered method has a known one).
    pub fn serves(&self, method: &str) -> bool {
        let namespace = method.split('_').next().unwrap_or(method);
        self.0.contains(namespace) || !ALL_NAMESPACES.contains(&namespace)
    }

    /// Whether `namespace` is in the set.
    pub fn contains(&self, namespace: &str) -> bool {
        self.0.contains(namespace)
    }
}

impl Default for RpcApis {
    fn default() -> Self {
        Self::all()
    }
}

impl fmt::Display for RpcApis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = ALL_NAMESPACES
            .iter()
            .copied()
            .filter(|n| self.0.contains(n))
            .collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for RpcApis {
    type Err = String;

    /// A comma-separated list (`eth,net,debug`), case-insensitive; `all`
    /// selects every namespace. Unknown names are refused, naming them.
    fn from_str(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let lower = name.to_ascii_lowercase();
            if lower == "all" {
                return Ok(Self::all());
            }
            let known = ALL_NAMESPACES
                .iter()
                .copied()
                .find(|n| *n == lower)
                .ok_or_else(|| {
                    format!(
                        "unknown JSON-RPC namespace `{name}`; known: {}, or all",
                        ALL_NAMESPACES.join(", ")
                    )
                })?;
            set.insert(known);
        }
        if set.is_empty() {
            return Err("no JSON-RPC namespace given".into());
        }
        Ok(Self(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_refuses_unknown_names() {
        let apis: RpcApis = "eth, NET,debug".parse().unwrap();
        assert_eq!(apis.to_string(), "eth,net,debug");
        assert!(apis.serves("eth_chainId") && apis.serves("debug_traceTransaction"));
        assert!(!apis.serves("testing_buildBlockV1") && !apis.serves("infera_listModels"));
        assert_eq!("all".parse::<RpcApis>().unwrap(), RpcApis::all());
        let err = "eth,miner".parse::<RpcApis>().unwrap_err();
        assert!(err.contains("`miner`") && err.contains("admin"), "{err}");
        assert!(!RpcApis::public().serves("admin_addPeer"));
        assert!(
            "net,admin"
                .parse::<RpcApis>()
                .unwrap()
                .serves("admin_peers")
        );
        assert!("".parse::<RpcApis>().is_err());
        assert!(!RpcApis::public().serves("debug_getRawBlock"));
        assert!(RpcApis::public().serves("eth_subscribe"));
    }
}
