// Compiles, with the pinned npm `solc` (package.json), the suite's contracts/*.sol
// and, for the AI-precompile check, precompiles/solidity's IInfera.sol and the
// DigitClassifier example (which uses the Infera library); prints
// { "<Contract>": { abi, bytecode, compiler } } as JSON on stdout. run.sh writes it
// to build/contracts.json for the ethers, viem and web3.py scripts.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.join(here, "..", "..");
const sources = {};
const add = (name, file) => (sources[name] = { content: fs.readFileSync(file, "utf8") });
for (const f of fs.readdirSync(path.join(here, "contracts")).filter((f) => f.endsWith(".sol")).sort()) {
  add(`contracts/${f}`, path.join(here, "contracts", f));
}
const infera = path.join(repo, "precompiles", "solidity");
add("infera/IInfera.sol", path.join(infera, "IInfera.sol"));
add("infera/examples/DigitClassifier.sol", path.join(infera, "examples", "DigitClassifier.sol"));

// relative imports of precompiles/solidity resolve under "infera/"
const findImports = (name) => {
  const rel = name.startsWith("infera/") ? name.slice("infera/".length) : null;
  if (rel === null) return { error: `not found: ${name}` };
  try {
    return { contents: fs.readFileSync(path.join(infera, rel), "utf8") };
  } catch (e) {
    return { error: `${name}: ${e.message}` };
  }
};

const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
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
