// Shared helpers of the ethers and viem scripts: named steps, assertions, timeouts,
// the dev chain's constants and the compiled contract.
import fs from "node:fs";
import assert from "node:assert/strict";

export { assert };

export const HTTP = must("INFERA_HTTP");
export const WS = must("INFERA_WS");
export const CHAIN_ID = 6174;
// Hardhat/Anvil accounts #0 and #1, funded with 10,000 ETH each by the dev genesis.
export const KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
export const KEY1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
export const ADDR0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
export const ADDR1 = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
export const ADDR2 = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";
export const GENESIS_BALANCE = 10_000n * 10n ** 18n;

export const contracts = JSON.parse(fs.readFileSync(must("INFERA_CONTRACTS"), "utf8"));

function must(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`${name} is not set: run this through tests/clients/run.sh`);
    process.exit(2);
  }
  return v;
}

let current = "(setup)";
/** Runs one named check; a failure names it. */
export async function step(name, fn) {
  current = name;
  const t = Date.now();
  await fn();
  console.log(`  ok  ${name} (${Date.now() - t} ms)`);
}

/** Rejects with a message when `promise` does not settle within `ms`. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise plus its resolve function. */
export function deferred() {
  let resolve;
  const promise = new Promise((r) => (resolve = r));
  return { promise, resolve };
}

/** Runs `main`, prints the failing step and exits non-zero on any error; hard 120 s cap. */
export function run(label, main) {
  const cap = setTimeout(() => {
    console.error(`FAIL ${label}: step "${current}" hung for 120 s`);
    process.exit(1);
  }, 120_000);
  cap.unref();
  console.log(`${label}`);
  main().then(
    () => {
      console.log(`${label}: all checks passed`);
      process.exit(0);
    },
    (err) => {
      console.error(`FAIL ${label}: step "${current}":`);
      console.error(err);
      process.exit(1);
    },
  );
}
