/**
 * `npm run chaos`: every fault scenario at full size, one table. Exit code 1 if any scenario has a
 * duplicate, a lost slot, a run nobody reported, or a failed check of its own (a late redelivery
 * not skipped as done, a run never recorded).
 */
import { cpus } from "node:os";
import { runAllScenarios, type ScenarioResult } from "./chaos/scenarios.js";
import { formatTable } from "./support.js";

const size = {
  slots: Number(process.env.CHAOS_SLOTS ?? 50),
  deliveriesPerSlot: Number(process.env.CHAOS_DELIVERIES ?? 20),
};

console.log(
  `cron-guard chaos: ${size.slots} slots x ${size.deliveriesPerSlot} instances per scenario; ` +
    `node ${process.version}, ${cpus().length} cpus\n`,
);
const startedAt = Date.now();
const results = await runAllScenarios(size, (r) =>
  console.error(`  ${r.name}: done (${r.deliveries} deliveries)`),
);
const row = (r: ScenarioResult) => [
  r.name,
  r.fault,
  r.slots,
  r.deliveries,
  r.runs,
  r.duplicates,
  r.lost,
  r.errorsSurfaced,
  r.unreported,
  r.rounds,
];
console.log(
  formatTable(
    [
      "scenario",
      "fault",
      "slots",
      "deliveries",
      "runs",
      "duplicates",
      "lost",
      "errors surfaced",
      "unreported",
      "redelivery rounds",
    ],
    results.map(row),
  ),
);
for (const r of results) for (const note of r.notes) console.log(`note (${r.name}): ${note}`);
for (const r of results)
  for (const check of r.failedChecks ?? []) console.log(`FAILED (${r.name}): ${check}`);
const bad = results.filter(
  (r) => r.duplicates > 0 || r.lost > 0 || r.unreported > 0 || (r.failedChecks?.length ?? 0) > 0,
);
console.log(
  `\n${bad.length === 0 ? "all scenarios at 0 duplicates, 0 lost, 0 unreported" : `NOT AT 0: ${bad.map((r) => r.name).join(", ")}`}` +
    ` (${((Date.now() - startedAt) / 1000).toFixed(1)} s)`,
);
process.exitCode = bad.length === 0 ? 0 : 1;
