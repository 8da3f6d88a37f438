// Compiles contracts/*.sol with the pinned npm `solc` (package.json) and prints
// { "<Contract>": { abi, bytecode } } as JSON on stdout. run.sh writes it to
// build/contracts.json for the ethers, viem and web3.py scripts.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), "contracts");
const sources = {};
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).sort()) {
  sources[f] = { content: fs.readFileSync(path.join(dir, f), "utf8") };
}
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
let failed = false;
for (const e of output.errors ?? []) {
  console.error(e.formattedMessage ?? e.message);
  if (e.severity === "error") failed = true;
}
if (failed) process.exit(1);
const out = {};
for (const contracts of Object.values(output.contracts)) {
  for (const [name, c] of Object.entries(contracts)) {
    out[name] = { abi: c.abi, bytecode: "0x" + c.evm.bytecode.object, compiler: solc.version() };
  }
}
process.stdout.write(JSON.stringify(out, null, 2) + "\n");
