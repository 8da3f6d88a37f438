// Compiles src/*.sol with the pinned npm `solc` and writes out/<Contract>.json
// ({ contractName, sourceName, compiler, evmVersion, abi, bytecode, deployedBytecode }).
// Run through scripts/compile-contracts.sh.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const EVM_VERSION = "cancun";
const root = __dirname;
const srcDir = path.join(root, "src");
const outDir = path.join(root, "out");

const sources = {};
for (const file of fs.readdirSync(srcDir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[file] = { content: fs.readFileSync(path.join(srcDir, file), "utf8") };
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

fs.mkdirSync(outDir, { recursive: true });
for (const [sourceName, contracts] of Object.entries(output.contracts)) {
  for (const [contractName, c] of Object.entries(contracts)) {
    const artifact = {
      contractName,
      sourceName: `src/${sourceName}`,
      compiler: `solc ${solc.version()}`,
      evmVersion: EVM_VERSION,
      abi: c.abi,
      bytecode: "0x" + c.evm.bytecode.object,
      deployedBytecode: "0x" + c.evm.deployedBytecode.object,
    };
    const file = path.join(outDir, `${contractName}.json`);
    fs.writeFileSync(file, JSON.stringify(artifact, null, 2) + "\n");
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
}
