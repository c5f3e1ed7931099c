/**
 * Storm: commands per isolate. Upstash bills per command, and auto-pipelining batches HTTP
 * requests, not commands: what a storm costs is the number of commands that reach Redis. Each
 * isolate is one `@upstash/redis` client (one store object) with its own guard; every isolate gets
 * `deliveries` concurrent `guard.run` of one slot, and once all of them have settled, `deliveries`
 * late ones. Counted at the redis-server (INFO commandstats, EVALSHA + EVAL, failed calls
 * included), after the scripts are loaded, so nothing else is counted.
 *
 * Run alone: `BENCH_ONLY=storm-commands npx tsx bench/run.ts` (section 1b; writes no results.json).
 */
import { createClient } from "redis";
import { createGuard } from "../src/core/index.js";
import { type BenchStack, formatTable, sleep, upstashClient } from "./support.js";

export interface StormCommandsRow {
  isolates: number;
  /** Concurrent deliveries per isolate, and as many late ones again. */
  deliveriesPerIsolate: number;
  deliveries: number;
  /** EVALSHA + EVAL that reached Redis, both waves. */
  commands: number;
  /** Of those, what the concurrent wave cost (the storm itself: claims and the completion). */
  stormCommands: number;
  /** Of those, what the late wave cost (isolates that saw the slot only running ask once more). */
  lateCommands: number;
  /** Handler calls: must be 1. */
  runs: number;
  /** How the deliveries ended: `ran`, `skipped <reason>`, `failed`, `threw`. */
  outcomes: Record<string, number>;
}

let counter = 0;

/** Script calls Redis has counted so far (EVALSHA and EVAL, failed and rejected ones included). */
async function scriptCalls(direct: ReturnType<typeof createClient>): Promise<number> {
  const info = await direct.info("commandstats");
  let total = 0;
  for (const line of info.split("\n")) {
    const match = /^cmdstat_(evalsha|eval):(.*)$/.exec(line.trim());
    if (!match?.[2]) continue;
    for (const field of ["calls", "rejected_calls"]) {
      const value = new RegExp(`(?:^|,)${field}=(\\d+)`).exec(match[2]);
      total += value ? Number(value[1]) : 0;
    }
  }
  return total;
}

export async function measureStormCommands(
  stack: BenchStack,
  isolates: number,
  deliveriesPerIsolate: number,
): Promise<StormCommandsRow> {
  const direct = createClient({ url: stack.redis.url, RESP: 2 });
  direct.on("error", () => {});
  await direct.connect();
  try {
    const prefix = `bench-storm-${Date.now().toString(36)}-${++counter}`;
    const guards = Array.from({ length: isolates }, () =>
      createGuard({ redis: upstashClient(stack.bridge.url, stack.bridge.token), prefix }),
    );
    // Load the scripts (a first EVALSHA after a flush fails NOSCRIPT and is followed by EVAL).
    await guards[0]?.run("warm-up", "warm-up", () => undefined);
    const slot = new Date(Math.floor(Date.now() / 60_000) * 60_000).toISOString();
    let runs = 0;
    const outcomes: Record<string, number> = {};
    const deliver = async (guard: (typeof guards)[number]) => {
      try {
        const result = await guard.run("storm", slot, async () => {
          runs += 1;
          await sleep(5);
        });
        return result.status === "skipped" ? `skipped ${result.reason}` : result.status;
      } catch {
        return "threw";
      }
    };
    const wave = async () => {
      const answers = await Promise.all(
        guards.flatMap((guard) =>
          Array.from({ length: deliveriesPerIsolate }, () => deliver(guard)),
        ),
      );
      for (const answer of answers) outcomes[answer] = (outcomes[answer] ?? 0) + 1;
    };
    const before = await scriptCalls(direct);
    await wave();
    const afterStorm = await scriptCalls(direct);
    await wave();
    const commands = (await scriptCalls(direct)) - before;
    return {
      isolates,
      deliveriesPerIsolate,
      deliveries: 2 * isolates * deliveriesPerIsolate,
      commands,
      stormCommands: afterStorm - before,
      lateCommands: commands - (afterStorm - before),
      runs,
      outcomes,
    };
  } finally {
    direct.destroy();
  }
}

export function formatStormCommands(rows: readonly StormCommandsRow[]): string {
  return formatTable(
    ["isolates", "deliveries", "commands", "storm / late", "commands/delivery", "runs", "outcomes"],
    rows.map((row) => [
      row.isolates,
      `${row.deliveries} (${row.deliveriesPerIsolate} + ${row.deliveriesPerIsolate} late each)`,
      row.commands,
      `${row.stormCommands} / ${row.lateCommands}`,
      (row.commands / row.deliveries).toFixed(4),
      row.runs,
      Object.entries(row.outcomes)
        .sort()
        .map(([outcome, count]) => `${count} ${outcome}`)
        .join(", "),
    ]),
  );
}
