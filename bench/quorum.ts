/**
 * Quorum mode's price: the latency of a claim through one store vs through a quorum of three
 * databases (each a redis-server of its own behind a bridge of its own), measured in the same run.
 */

import { claimScriptKeys } from "../src/core/guard/claim.js";
import { jobKeys } from "../src/core/guard/keys.js";
import { CLAIM_SCRIPT } from "../src/core/guard/scripts.js";
import type { GuardStore } from "../src/core/index.js";
import { createQuorumStore } from "../src/core/quorum/quorum.js";
import { runScript } from "../src/core/store.js";
import { type BenchStack, median, percentile, startBenchStack, upstashClient } from "./support.js";

export interface QuorumClaimRow {
  store: "single" | "quorum of 3";
  claims: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * `samples` sequential winning claims (a new slot each) per store, alternating single and quorum
 * so both see the same machine load. The single store is `stack`'s bridge; the quorum is that bridge
 * plus two more stacks.
 */
export async function measureQuorumClaims(
  stack: BenchStack,
  samples: number,
): Promise<QuorumClaimRow[]> {
  const others = [await startBenchStack(), await startBenchStack()];
  try {
    const client = (s: BenchStack) =>
      upstashClient(s.bridge.url, s.bridge.token, { autoPipelining: false, retries: 0 });
    const stores: Record<QuorumClaimRow["store"], GuardStore> = {
      single: client(stack),
      "quorum of 3": createQuorumStore([client(stack), ...others.map(client)]),
    };
    const run = Date.now().toString(36);
    // One job per store: the single store's claims must not move the quorum's fence counter on the
    // shared database (a lagging majority costs the quorum an extra round trip to raise it).
    const claim = async (store: GuardStore, slot: string) => {
      const keys = jobKeys("bench", `quorum-${run}-${store === stores.single ? "s" : "q"}`);
      const token = crypto.randomUUID();
      const startedAt = performance.now();
      const now = Date.now();
      // The guard's claim. ARGV: token, lease, now, region, slot, score, overlap, index length,
      // force, ledger max age.
      const reply = await runScript(store, CLAIM_SCRIPT, claimScriptKeys(keys, slot, token), [
        token,
        60_000,
        now,
        "bench",
        slot,
        now,
        "allow",
        10,
        "0",
        7 * 86_400_000,
      ]);
      const elapsedMs = performance.now() - startedAt;
      const outcome = (typeof reply === "string" ? JSON.parse(reply) : reply) as {
        outcome: string;
      };
      if (outcome.outcome !== "claimed") throw new Error(`quorum bench: claim ${outcome.outcome}`);
      return elapsedMs;
    };
    const latencies: Record<QuorumClaimRow["store"], number[]> = {
      single: [],
      "quorum of 3": [],
    };
    // Warm-up: loads the script into every database and opens the connections.
    for (const [name, store] of Object.entries(stores)) await claim(store, `warm-${name}`);
    for (let i = 0; i < samples; i += 1) {
      for (const [name, store] of Object.entries(stores) as [
        QuorumClaimRow["store"],
        GuardStore,
      ][]) {
        latencies[name].push(await claim(store, `${name === "single" ? "s" : "q"}-${i}`));
      }
    }
    return (Object.keys(latencies) as QuorumClaimRow["store"][]).map((store) => ({
      store,
      claims: samples,
      p50Ms: median(latencies[store]),
      p99Ms: percentile(latencies[store], 99),
    }));
  } finally {
    await Promise.all(others.map((other) => other.close()));
  }
}
