// Compiles IInfera.sol, Infera.sol and examples/*.sol with the pinned npm
// `solc` and writes out/<Contract>.json ({ contractName, sourceName, compiler,
// evmVersion, abi, bytecode, deployedBytecode }). out/ is git-ignored: the
// test suite compiles from source (scripts/compile-solidity.sh, run by
// scripts/test.sh) and the end-to-end tests read out/.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

// The newest EVM target solc 0.8.28 knows that the chain (Osaka) runs.
const EVM_VERSION = "cancun";
const root = __dirname;
const outDir = path.join(root, "out");

function solidityFiles(dir) {
  const rel = path.relative(root, dir);
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".sol"))
    .sort()
    .map((f) => (rel ? `${rel}/${f}` : f));
}

const sources = {};
for (const file of [...solidityFiles(root), ...solidityFiles(path.join(root, "examples"))]) {
  sources[file] = { content: fs.readFileSync(path.join(root, file), "utf8") };
}

const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: EVM_VERSION,
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none", appendCBOR: false },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const err of output.errors || []) {
  console.error(err.formattedMessage || err.message);
  if (err.severity === "error") failed = true;
}
if (failed) process.exit(1);

fs.rmSync(outDir, { recursive: true, force: true });
fs.mkdirSync(outDir, { recursive: true });
let written = 0;
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  for (const [contractName, c] of Object.entries(contracts)) {
    const artifact = {
      contractName,
      sourceName,
      compiler: `solc ${solc.version()}`,
      evmVersion: EVM_VERSION,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    fs.writeFileSync(path.join(outDir, `${contractName}.json`), JSON.stringify(artifact, null, 2) + "\n");
    written++;
  }
}
console.log(`compiled ${Object.keys(sources).length} sources into ${written} artifacts in ${path.relative(process.cwd(), outDir) || "."}`);
