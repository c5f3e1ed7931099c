/**
 * Quorum mode: one guard across N (odd, >= 3) independent Redis databases, Redlock-style.
 *
 * `createQuorumStore(stores)` is a GuardStore adapter: the guard (and the schedule registry) use it
 * unchanged, as if it were one store. It recognises a script by its SHA1 (or source) among the
 * scripts that declare how a quorum merges their answers (`luaScript(name, source, { quorum: {
 * merge } })`, guard/scripts.ts), so it imports no feature, and merges the databases' answers per
 * declared merge. Each merge, with the rules and proofs that justify it, lives in its own module:
 *
 * - context.ts: the members, the majority, the per-call timeout, the clock drift allowance (why
 *   the TTL asked for is lease + drift), the error for too few answers.
 * - answers.ts: asking every database with a timeout, gathering, grouping identical answers.
 * - claim.ts (`claim`): votes, vetoes, split votes and retries, the fence rule and its proof.
 * - votes.ts: reading the databases' answers to a claim.
 * - job-repair.ts: copying a job to a database that lost it or missed writes.
 * - complete.ts (`complete`, `extend`, `withdraw`, `status`).
 * - registry.ts (`registry-write`, `registry-read`, `registry-items`): a majority of identical
 *   answers and read repair; list.ts (`registry-list`, `registry-events`).
 * - store.ts: the GuardStore, dispatching on the declared merge; an undeclared script gets the
 *   answer a majority gave identically.
 * - from-env.ts: quorum mode from environment variables.
 *
 * Nothing here imports Node built-ins or a Redis client: it runs wherever the guard runs.
 */
export { FENCE_FLOOR_SCRIPT } from "./claim.js";
export { REPAIR_SCRIPT } from "./complete.js";
export { DEFAULT_DRIFT_FACTOR, DEFAULT_QUORUM_TIMEOUT_MS, type QuorumOptions } from "./context.js";
export { quorumFromEnv } from "./from-env.js";
export { JOB_RESTORE_SCRIPT, JOB_SNAPSHOT_SCRIPT } from "./job-repair.js";
export { REGISTRY_REPAIR_SCRIPT, REGISTRY_SNAPSHOT_SCRIPT } from "./registry.js";
export { createQuorumStore } from "./store.js";
