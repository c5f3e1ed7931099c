/**
 * The quorum's members and what every merge needs of them: the majority, the per-call timeout, the
 * clock drift allowance, asking every member, and the error for too few answers.
 *
 * Lease validity and clock drift (Redlock: validity = lease - elapsed - drift, drift = lease *
 * driftFactor + 2 ms): instead of shrinking the time the guard trusts its lease, the store lengthens
 * the TTL it asks Redis for by the drift (CLAIM's and EXTEND's lease argument becomes lease +
 * drift). The guard keeps counting `lease` from the moment it sent the claim and already refuses a
 * claim answered after that (`elapsedMs >= leaseMs` in guard.ts) and aborts the job when the lease
 * runs out locally; every database keeps the key at least `lease + drift` of its own clock after it
 * ran the claim. So the margin between what the guard trusts and what the databases hold is the
 * drift, exactly as in Redlock, without any change to the guard. The price: a crashed holder blocks
 * the slot `drift` longer (1% + 2 ms by default).
 */
import { ConfigError, StoreUnavailableError } from "../errors.js";
import type { LuaScript } from "../guard/scripts.js";
import { type GuardStore, messageOf, runScript } from "../store.js";
import { type Answer, ask, isOk } from "./answers.js";

export interface QuorumOptions {
  /**
   * How long to wait for one database's answer, in ms; a database that takes longer counts as
   * down for that call. For claims it is capped at half the lease. Default 2000.
   */
  timeoutMs?: number;
  /** Clock drift allowance per ms of lease (Redlock's driftFactor). 0 <= x < 0.5. Default 0.01. */
  driftFactor?: number;
}

export const DEFAULT_QUORUM_TIMEOUT_MS = 2_000;
export const DEFAULT_DRIFT_FACTOR = 0.01;

/** A quorum of databases, as every merge sees it. */
export interface Quorum {
  readonly members: readonly GuardStore[];
  /** The number of databases. */
  readonly n: number;
  /** How many databases make a majority. */
  readonly majority: number;
  /** How long to wait for one database's answer, in ms. */
  readonly timeoutMs: number;
  /** The clock drift allowance for a lease of `leaseMs`, added to the TTL asked for. */
  driftOf(leaseMs: number): number;
  /** Runs `script` on the databases at `indexes` (all by default), each with a timeout. */
  onAll(
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    callTimeoutMs?: number,
    indexes?: readonly number[],
  ): Promise<Answer>[];
  /** The error for "too few stores answered": kind rejected when refusals alone prevent a majority. */
  quorumError(
    what: string,
    answers: readonly (Answer | undefined)[],
    extra?: string,
  ): StoreUnavailableError;
  /** Answers that disagree with a majority: no answer, a StoreUnavailableError. */
  disagreement(what: string, answers: readonly (Answer | undefined)[]): StoreUnavailableError;
}

function checkStores(stores: unknown): asserts stores is GuardStore[] {
  if (!Array.isArray(stores)) {
    throw new ConfigError("stores", "must be an array of stores (clients with eval and evalsha)");
  }
  if (stores.length < 3 || stores.length % 2 === 0) {
    throw new ConfigError(
      "stores",
      `a quorum needs an odd number of at least 3 databases, got ${stores.length}`,
    );
  }
  stores.forEach((store, index) => {
    const candidate = store as Partial<GuardStore> | null;
    if (
      typeof candidate !== "object" ||
      candidate === null ||
      typeof candidate.eval !== "function" ||
      typeof candidate.evalsha !== "function"
    ) {
      throw new ConfigError(
        "stores",
        `store #${index + 1} must be a Redis client with eval() and evalsha()`,
      );
    }
  });
}

/** Checks the stores and options (ConfigError for a mistake) and makes the quorum of `stores`. */
export function createQuorum(stores: GuardStore[], options: QuorumOptions): Quorum {
  checkStores(stores);
  const timeoutMs = options.timeoutMs ?? DEFAULT_QUORUM_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs < 1) {
    throw new ConfigError("timeoutMs", `must be a positive number of ms, got ${timeoutMs}`);
  }
  const driftFactor = options.driftFactor ?? DEFAULT_DRIFT_FACTOR;
  if (!Number.isFinite(driftFactor) || driftFactor < 0 || driftFactor >= 0.5) {
    throw new ConfigError("driftFactor", `must be at least 0 and below 0.5, got ${driftFactor}`);
  }
  const members = [...stores];
  const n = members.length;
  const majority = Math.floor(n / 2) + 1;

  const driftOf = (leaseMs: number) => Math.ceil(leaseMs * driftFactor) + 2;

  const onAll = (
    script: LuaScript,
    keys: string[],
    args: (string | number)[],
    callTimeoutMs = timeoutMs,
    indexes: readonly number[] = members.map((_, i) => i),
  ): Promise<Answer>[] =>
    indexes.map((i) =>
      ask(
        () => runScript(members[i] as GuardStore, script, keys, args),
        `${script.name} on store #${i + 1}`,
        callTimeoutMs,
      ),
    );

  function quorumError(
    what: string,
    answers: readonly (Answer | undefined)[],
    extra = "",
  ): StoreUnavailableError {
    const failures: { index: number; error: StoreUnavailableError }[] = [];
    answers.forEach((answer, index) => {
      if (answer === undefined) {
        failures.push({
          index,
          error: new StoreUnavailableError("no answer yet", { kind: "unreachable" }),
        });
      } else if (!answer.ok) failures.push({ index, error: answer.error });
    });
    const answered = answers.filter(isOk).length;
    const rejected = failures.filter((f) => f.error.kind === "rejected").length;
    const kind = rejected > n - majority ? "rejected" : "unreachable";
    const detail = failures.map((f) => `#${f.index + 1}: ${messageOf(f.error)}`).join("; ");
    const message = `${kind === "rejected" ? "ERR " : ""}quorum not reached for ${what}: ${answered} of ${n} databases answered${extra}, ${majority} needed${detail ? ` (${detail})` : ""}`;
    return new StoreUnavailableError(message.replace(/noscript/gi, "no-script"), {
      kind,
      cause: failures[0]?.error,
    });
  }

  function disagreement(what: string, answers: readonly (Answer | undefined)[]) {
    const answered = answers.filter(isOk).length;
    if (answered < majority) return quorumError(what, answers);
    return new StoreUnavailableError(
      `quorum not reached for ${what}: ${answered} of ${n} databases answered but no ${majority} of them gave the same answer (a database lost data or missed a write, and too few agree to tell which)`,
      { kind: "unreachable" },
    );
  }

  return Object.freeze({
    members,
    n,
    majority,
    timeoutMs,
    driftOf,
    onAll,
    quorumError,
    disagreement,
  });
}
