/*
 * One command per isolate per storm: deliveries of one slot inside one isolate share one claim
 * (single flight), and an isolate remembers the slots it saw finished until their retention ends.
 * A storm of deliveries then costs each isolate one claim (plus the winner's completion) instead
 * of one claim per delivery: Upstash bills per command, and auto-pipelining batches HTTP requests,
 * not commands.
 *
 * Scope. One `SlotFlights` per store object (a module-level WeakMap), so the guards an app builds
 * per request over the same client share it; within it, a slot is its key (`keys.slot`: prefix,
 * job and slot id, unambiguous since a prefix holds no `{`). A new store object (another isolate,
 * another client) starts empty.
 *
 * Single flight. The first delivery of a slot leads: it claims. A delivery arriving while the
 * leader's claim is in flight waits for its answer, and gets what the store would have told it:
 * - the leader won: `skipped`/`running` with the leader's claim as holder (what Redis stores and
 *   would return), and so does every delivery that arrives until the leader's run has finished;
 * - the claim was skipped (done, failed, running elsewhere, overlap, unvouched, foreign): the same
 *   skip, same holder;
 * - the store could not be reached (closed policy, or a refusal): the same StoreUnavailableError
 *   is thrown for each (each delivery answers 503: the job did not run, a retry may run it). Under
 *   the open policy the leader runs the job unguarded, and its siblings are `skipped`/`running`
 *   (no holder): the one unguarded run is this isolate's.
 * So a slot never has two handlers in one isolate, and no delivery ever waits for a run (a job
 * that guards its own slot again, without its lease, is answered `running`, as Redis would).
 * An answer that does not fit a delivery's own guard (a leader's `overlap` for a guard with
 * `overlap: "allow"`, a leader's store error for a guard with `onStoreError: "open"`, a leader that
 * ended without answering) sends that delivery to the store on its own.
 *
 * Memory. A slot the isolate saw finish is remembered, so that late deliveries cost no command:
 * - a run this isolate recorded `done` (or `failed` under "keep"), with the state the completion
 *   wrote as holder, for the retention from when it landed;
 * - a claim answered `skipped` with `done` or `failed`, with that holder, until the slot key's
 *   TTL ends (the retention from the completion), or for the retention when the answer came from
 *   the ledger (the key had expired already).
 * Never remembered: a `released` failure (a retry may run the slot), a lost or unrecorded run, a
 * store error, `running`, `overlap`, `unvouched`, `foreign`. At most MAX_REMEMBERED_SLOTS per
 * store; the oldest go first. Expiry reads the guard's clock.
 * Bypassed: `force` (it reaches Redis, and forgets the remembered slot first; its recorded run is
 * remembered like any other), `lookup` and `status` (they never come here).
 * Sources (redundant clocks, sources.ts). A delivery that names a trigger source the isolate has
 * not yet sent to the store for this slot goes to the store on its own, so that the claim records
 * that source; later deliveries of the same source share as above. So a storm from one source
 * still costs one claim per isolate, and each further source one more. A manual backfill is no
 * clock: it shares (or takes a remembered answer) like before, and is recorded only when it does
 * reach the store.
 * What memory cannot see: a forced re-run, or a deleted key, in another isolate. Until the
 * remembered slot expires, this isolate keeps answering the `done` (or `failed`) it saw; a
 * delivery that did reach Redis would get the same skip (the ledger keeps finished slots for
 * days), with the newer holder.
 */
import type { StoreUnavailableError } from "../errors.js";
import type { ResolvedGuardOptions } from "../options.js";
import type { GuardStore } from "../store.js";
import type { GuardResult, SkippedResult, SkipReason, SlotState } from "./result.js";
import { isClock } from "./sources.js";

/**
 * Finished slots one store remembers, at most: about 500 bytes each with a short summary, 700 with
 * a 200-character one (measured on Node 20), so 5 to 7 MB when full; an isolate has 128 MB.
 */
export const MAX_REMEMBERED_SLOTS = 10_000;

/** What a delivery is told instead of asking the store. `ask`: go and ask it yourself. */
export type SharedAnswer =
  | { kind: "skipped"; reason: SkipReason; holder?: SlotState }
  | { kind: "unavailable"; error: StoreUnavailableError }
  | { kind: "ask" };

type Answered = Exclude<SharedAnswer, { kind: "ask" }>;

/** A delivery that goes to the store: what it tells its siblings and what memory keeps. */
export interface Flight {
  /** The claim has answered: waiting siblings get `answer`, and so do later ones until it lands. */
  answered(answer: SharedAnswer): void;
  /**
   * The slot finished as `holder` says (a claim's skip, or the state the completion wrote): kept
   * for `forMs` (by the guard's clock) when it is `done` or `failed`, else ignored.
   */
  finished(holder: SlotState | undefined, forMs: number): void;
}

interface InFlight {
  answer: Promise<SharedAnswer>;
  /** Set once the claim has answered: later arrivals get it at once. */
  settled?: SharedAnswer;
}

interface Remembered {
  reason: "done" | "failed";
  holder: SlotState;
  untilMs: number;
}

/** One store's flights and memory. */
export class SlotFlights {
  readonly #inFlight = new Map<string, InFlight>();
  /** In insertion order, oldest first. */
  readonly #remembered = new Map<string, Remembered>();
  readonly #maxRemembered: number;
  /** Per slot, the sources whose deliveries were sent to the store (oldest slot first). */
  readonly #sent = new Map<string, Set<string>>();

  constructor(maxRemembered = MAX_REMEMBERED_SLOTS) {
    this.#maxRemembered = maxRemembered;
  }

  /** Remembered slots right now (expired ones included until they are looked up or evicted). */
  get rememberedCount(): number {
    return this.#remembered.size;
  }

  /**
   * The answer for a delivery of `key` without a store command (a sibling's claim, in flight or
   * answered, or a remembered slot), or undefined when there is none: the caller must claim.
   */
  join(key: string, nowMs: number): SharedAnswer | Promise<SharedAnswer> | undefined {
    const flight = this.#inFlight.get(key);
    if (flight) return flight.settled ?? flight.answer;
    const remembered = this.#remembered.get(key);
    if (!remembered) return undefined;
    if (nowMs >= remembered.untilMs) {
      this.#remembered.delete(key);
      return undefined;
    }
    return { kind: "skipped", reason: remembered.reason, holder: remembered.holder };
  }

  /**
   * Notes that a delivery of `key` from `source` goes to the store; true when it is the first from
   * that source this store has sent (then it must reach the store even if a sibling could answer).
   */
  send(key: string, source: string): boolean {
    let sent = this.#sent.get(key);
    if (!sent) {
      sent = new Set();
      this.#sent.set(key, sent);
      for (const oldest of this.#sent.keys()) {
        if (this.#sent.size <= this.#maxRemembered) break;
        this.#sent.delete(oldest);
      }
    }
    if (sent.has(source)) return false;
    sent.add(source);
    return true;
  }

  /** The delivery that claims `key` for its siblings. Call `land` once its outcome is known. */
  lead(key: string, clock: () => number): Flight & { land(): void } {
    let resolve: (answer: SharedAnswer) => void = () => undefined;
    const flight: InFlight = { answer: new Promise((done) => (resolve = done)) };
    this.#inFlight.set(key, flight);
    const solo = this.solo(key, clock);
    return {
      answered: (answer) => {
        flight.settled ??= answer;
        resolve(flight.settled);
      },
      finished: solo.finished,
      land: () => {
        resolve({ kind: "ask" });
        if (this.#inFlight.get(key) === flight) this.#inFlight.delete(key);
      },
    };
  }

  /** A delivery that goes to the store on its own (forced, or one a sibling's answer did not fit). */
  solo(key: string, clock: () => number): Flight {
    return {
      answered: () => undefined,
      finished: (holder, forMs) => {
        const reason = rememberedReason(holder);
        if (!holder || !reason || !(forMs > 0)) return;
        this.#remembered.delete(key);
        this.#remembered.set(key, { reason, holder, untilMs: clock() + forMs });
        for (const oldest of this.#remembered.keys()) {
          if (this.#remembered.size <= this.#maxRemembered) break;
          this.#remembered.delete(oldest);
        }
      },
    };
  }

  /** Drops what is remembered of `key` (a forced run is about to change it). */
  forget(key: string): void {
    this.#remembered.delete(key);
  }
}

/** `done` (a run that was lost after it ran counts as done, as the claim script says) or `failed`. */
function rememberedReason(holder: SlotState | undefined): "done" | "failed" | undefined {
  switch (holder?.state) {
    case "done":
    case "lost":
      return "done";
    case "failed":
      return "failed";
    default:
      return undefined;
  }
}

const flightsByStore = new WeakMap<GuardStore, SlotFlights>();

/** The flights and memory of `store`, shared by every guard over that very object. */
export function slotFlightsOf(store: GuardStore): SlotFlights {
  let flights = flightsByStore.get(store);
  if (!flights) {
    flights = new SlotFlights();
    flightsByStore.set(store, flights);
  }
  return flights;
}

/**
 * Delivers `(job, slot)` through the store's flights: answers from a sibling or from memory when
 * the answer fits this guard, else runs `deliver` (the claim and the run) as the slot's leader, or
 * on its own when forced or when a sibling's answer did not fit.
 */
export async function deliverOnce<T>(
  config: ResolvedGuardOptions,
  key: string,
  job: string,
  slot: string,
  force: boolean,
  deliver: (flight: Flight) => Promise<GuardResult<T>>,
  source?: string,
): Promise<GuardResult<T>> {
  const flights = slotFlightsOf(config.redis);
  if (force) {
    flights.forget(key);
    if (source !== undefined) flights.send(key, source);
    return deliver(flights.solo(key, config.clock));
  }
  const shared = flights.join(key, config.clock());
  if (
    shared !== undefined &&
    source !== undefined &&
    isClock(source) &&
    flights.send(key, source)
  ) {
    return deliver(flights.solo(key, config.clock));
  }
  if (shared === undefined && source !== undefined) flights.send(key, source);
  if (shared !== undefined) {
    const answer = await shared;
    if (fits(answer, config)) return sharedResult(job, slot, answer);
    return deliver(flights.solo(key, config.clock));
  }
  const flight = flights.lead(key, config.clock);
  try {
    return await deliver(flight);
  } finally {
    flight.land();
  }
}

/** Whether this guard, asking the store itself, would have got the same answer. */
function fits(answer: SharedAnswer, config: ResolvedGuardOptions): answer is Answered {
  switch (answer.kind) {
    case "ask":
      return false;
    case "unavailable":
      return config.onStoreError === "closed" || answer.error.kind === "rejected";
    case "skipped":
      return answer.reason !== "overlap" || config.overlap === "skip";
  }
}

function sharedResult<T>(job: string, slot: string, answer: Answered): GuardResult<T> {
  if (answer.kind === "unavailable") throw answer.error;
  const result: SkippedResult = {
    status: "skipped",
    job,
    slot,
    reason: answer.reason,
    holder: answer.holder && { ...answer.holder },
  };
  return result;
}
