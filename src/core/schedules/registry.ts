import { nextFireTimes, parseSchedule, slotId } from "../cron/index.js";
import { assertJobName, assertPrefix, isValidJobName, jobKeys } from "../guard/keys.js";
import type { LuaScript } from "../guard/scripts.js";
import { DEFAULT_PREFIX } from "../options.js";
import { sleep } from "../sleep.js";
import { decodeReply, type GuardStore, runScript } from "../store.js";
import {
  type Schedule,
  type ScheduleInput,
  validateSchedule,
  validateSchedulePatch,
} from "./schedule.js";
import {
  DELETE_SCRIPT,
  EVENTS_SCRIPT,
  LIST_SCRIPT,
  OVERDUE_SCRIPT,
  PATCH_SCRIPT,
  PURGE_HISTORY_SCRIPT,
  READ_SCRIPT,
  SET_ENABLED_SCRIPT,
  UPSERT_SCRIPT,
} from "./scripts.js";

/** The registry's keys; one hash tag, so every registry script is single-slot on a cluster. */
export interface RegistryKeys {
  definitions: string;
  due: string;
  fires: string;
  events: string;
}

export function registryKeys(prefix: string): RegistryKeys {
  assertPrefix(prefix);
  const base = `${prefix}:{schedules}`;
  return {
    definitions: `${base}:defs`,
    due: `${base}:due`,
    fires: `${base}:fires`,
    events: `${base}:events`,
  };
}

/** A stored schedule with the fire it waits for. */
export interface ScheduleView extends Schedule {
  /** The pending fire time (ISO), null while paused. */
  next: string | null;
  /** Failed attempts of the pending fire so far (0 until one fails). */
  attempt: number;
}

export interface UpsertResult {
  outcome: "created" | "updated" | "unchanged";
  schedule: ScheduleView;
}

/**
 * What a patch did. `conflict`: other writers changed the schedule every time this one tried
 * ({@link PATCH_TRIES} times); nothing was written, `schedule` is the last one read.
 */
export interface PatchResult {
  outcome: "updated" | "unchanged" | "conflict";
  schedule: ScheduleView;
}

export interface RegistryEvent {
  id: string;
  schedule: string;
  event: {
    kind: "dead" | "missed";
    /** The fire (slot id) the event is about; for `missed`, the first of `fires` consecutive ones. */
    fire: string;
    fires?: number;
    error?: string;
    attempts?: number;
    /** `missed`: the schedule's cron and time zone when the fires were missed, to list them. */
    cron?: string;
    timezone?: string;
  };
}

export interface ScheduleRegistry {
  /** Creates or updates a schedule; `unchanged` when the stored definition is the same. */
  upsert(input: ScheduleInput): Promise<UpsertResult>;
  get(id: string): Promise<ScheduleView | null>;
  /** One page, in no particular order; pass the returned cursor for the next, null at the end. */
  list(options?: {
    cursor?: string;
    limit?: number;
  }): Promise<{ schedules: ScheduleView[]; cursor: string | null }>;
  /**
   * One page of the enabled schedules whose pending fire (or retry) was due at or before
   * `beforeMs`, oldest first: the ones a monitor must look at for missed fires. Costs O(page), not
   * O(schedules). Pass the returned cursor for the next page, null at the end.
   */
  overdue(options: {
    beforeMs: number;
    cursor?: string;
    limit?: number;
  }): Promise<{ schedules: ScheduleView[]; cursor: string | null }>;
  /**
   * Changes only the fields `changes` names, validated like an upsert; null when no such schedule.
   * Compare-and-set on the schedule's version: concurrent patches of different fields all land.
   */
  patch(id: string, changes: unknown): Promise<PatchResult | null>;
  /**
   * True when it existed. Its run history stays until it expires (a schedule created again under
   * the id shows it), unless `purge`: then its runs, slot ledger and slot keys go too, but for
   * the claim of a run in flight and the fencing counter (fencing tokens never go back).
   */
  remove(id: string, options?: { purge?: boolean }): Promise<boolean>;
  /** null when no such schedule. */
  pause(id: string): Promise<ScheduleView | null>;
  /** Resumes from the next fire after now: fires missed while paused do not run. */
  resume(id: string): Promise<ScheduleView | null>;
  /** Latest dead and missed fires, newest first. */
  events(count?: number): Promise<RegistryEvent[]>;
}

interface StoredReply {
  outcome?: string;
  schedule?: string | null;
  fire?: string | null;
}

export function parsePendingFire(fire: string): { fireMs: number; attempt: number } {
  const [fireMs, attempt] = fire.split(":").map(Number);
  return { fireMs: fireMs as number, attempt: attempt ?? 0 };
}

/** A stored definition (payload kept as JSON text) as the API shows it. */
export function decodeSchedule(raw: string, fire: string | null | undefined): ScheduleView {
  const stored = JSON.parse(raw) as Omit<Schedule, "payload"> & { payload: string };
  const pending = fire && stored.enabled ? parsePendingFire(fire) : undefined;
  return {
    ...stored,
    payload: JSON.parse(stored.payload) as unknown,
    next: pending ? slotId(pending.fireMs) : null,
    attempt: pending?.attempt ?? 0,
  };
}

export function firstFireAfter(schedule: { cron: string; timezone: string }, nowMs: number) {
  const [next] = nextFireTimes(parseSchedule(schedule.cron, schedule), nowMs, 1);
  return next ?? Number.MAX_SAFE_INTEGER;
}

export interface RegistryOptions {
  redis: GuardStore;
  /** Key namespace, as for the guard. Default `"cron-guard"`. */
  prefix?: string;
  /** Names of the handlers registered in code; a schedule must name one of them. */
  handlers: Iterable<string>;
  /** ms since the epoch. Default `Date.now`. */
  clock?: () => number;
}

const PAGE_LIMIT_MAX = 500;
/** Tries of one patch against concurrent writers before it answers `conflict`. */
export const PATCH_TRIES = 16;
/** The most a patch waits (ms, times the try) before it reads the schedule again. */
const PATCH_JITTER_MS = 5;
/** Redis's SCAN cursors are unsigned 64-bit integers: a larger one is "ERR invalid cursor". */
const MAX_SCAN_CURSOR = 18_446_744_073_709_551_615n;

/** True for a cursor `list` can be given: "0" or one a previous page returned (an unsigned 64-bit integer). */
export function isListCursor(cursor: unknown): cursor is string {
  return (
    typeof cursor === "string" && /^\d{1,20}$/.test(cursor) && BigInt(cursor) <= MAX_SCAN_CURSOR
  );
}

/** The schedule registry: schedules are data in Redis, changed at run time without a deploy. */
export function createScheduleRegistry(options: RegistryOptions): ScheduleRegistry {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const keys = registryKeys(prefix);
  const handlerNames = new Set(options.handlers);
  const clock = options.clock ?? Date.now;
  const { redis } = options;
  const registryKeyList = [keys.definitions, keys.due, keys.fires];

  const call = async (script: LuaScript, args: (string | number)[], keyList = registryKeyList) =>
    decodeReply<StoredReply>(await runScript(redis, script, keyList, args));

  const view = (reply: StoredReply): ScheduleView | null =>
    reply.schedule ? decodeSchedule(reply.schedule, reply.fire) : null;

  const get = async (id: string) => {
    assertJobName(id);
    return view(await call(READ_SCRIPT, [id]));
  };

  return Object.freeze({
    get,
    async upsert(input: ScheduleInput): Promise<UpsertResult> {
      const definition = await validateSchedule(input, handlerNames);
      const nowMs = clock();
      const stored = { ...definition, payload: JSON.stringify(definition.payload) };
      const reply = await call(UPSERT_SCRIPT, [
        definition.id,
        JSON.stringify(stored),
        nowMs,
        firstFireAfter(definition, nowMs),
      ]);
      return {
        outcome: reply.outcome as UpsertResult["outcome"],
        schedule: view(reply) as ScheduleView,
      };
    },

    async list({ cursor = "0", limit = 100 } = {}) {
      if (!isListCursor(cursor))
        throw new RangeError("cursor must be a cursor a previous list returned");
      const count = Math.max(1, Math.min(PAGE_LIMIT_MAX, Math.trunc(limit)));
      const reply = decodeReply<{
        cursor: string;
        items: { id: string; schedule: string; fire?: string }[] | Record<string, never>;
      }>(
        await runScript(
          redis,
          LIST_SCRIPT,
          [keys.definitions, keys.due, keys.fires],
          [cursor, count],
        ),
      );
      const items = Array.isArray(reply.items) ? reply.items : [];
      return {
        schedules: items.map((item) => decodeSchedule(item.schedule, item.fire)),
        cursor: String(reply.cursor) === "0" ? null : String(reply.cursor),
      };
    },

    async overdue({
      beforeMs,
      cursor,
      limit = 100,
    }: {
      beforeMs: number;
      cursor?: string;
      limit?: number;
    }) {
      if (!Number.isFinite(beforeMs)) throw new RangeError("beforeMs must be a finite number");
      let score = "";
      let after = "";
      if (cursor !== undefined) {
        const match = /^(\d{1,16}):(.+)$/.exec(cursor);
        if (!match || !isValidJobName(match[2] ?? "")) {
          throw new RangeError("cursor must be the cursor of a previous overdue page");
        }
        score = match[1] as string;
        after = match[2] as string;
      }
      const count = Math.max(1, Math.min(PAGE_LIMIT_MAX, Math.trunc(limit)));
      const reply = decodeReply<{
        cursor: string | false | null;
        items: { id: string; schedule: string; fire: string }[] | Record<string, never>;
      }>(
        await runScript(redis, OVERDUE_SCRIPT, registryKeyList, [
          Math.floor(beforeMs),
          score,
          after,
          count,
        ]),
      );
      const items = Array.isArray(reply.items) ? reply.items : [];
      return {
        schedules: items.map((item) => decodeSchedule(item.schedule, item.fire)),
        cursor: typeof reply.cursor === "string" ? reply.cursor : null,
      };
    },

    async patch(id: string, changes: unknown): Promise<PatchResult | null> {
      assertJobName(id);
      const fields = validateSchedulePatch(changes, handlerNames);
      let current: StoredReply = await call(READ_SCRIPT, [id]);
      for (let tried = 1; ; tried += 1) {
        if (!current.schedule) return null;
        const stored = JSON.parse(current.schedule) as Omit<Schedule, "payload"> & {
          payload: string;
        };
        const definition = await validateSchedule(
          {
            id,
            cron: stored.cron,
            timezone: stored.timezone,
            handler: stored.handler,
            payload: JSON.parse(stored.payload) as unknown,
            enabled: stored.enabled,
            catchUp: stored.catchUp,
            catchUpLimit: stored.catchUpLimit,
            maxAttempts: stored.maxAttempts,
            ...fields,
          },
          handlerNames,
        );
        const nowMs = clock();
        const reply = await call(PATCH_SCRIPT, [
          id,
          JSON.stringify({ ...definition, payload: JSON.stringify(definition.payload) }),
          nowMs,
          firstFireAfter(definition, nowMs),
          stored.version,
        ]);
        if (reply.outcome === "missing") return null;
        if (reply.outcome !== "conflict") {
          return {
            outcome: reply.outcome as PatchResult["outcome"],
            schedule: view(reply) as ScheduleView,
          };
        }
        if (tried >= PATCH_TRIES)
          return { outcome: "conflict", schedule: view(reply) as ScheduleView };
        // The conflicting write's answer holds the schedule as it is now: merge onto that.
        await sleep(Math.random() * PATCH_JITTER_MS * tried);
        current = reply;
      }
    },

    async remove(id: string, { purge = false }: { purge?: boolean } = {}) {
      assertJobName(id);
      if (purge) {
        if (!(await get(id))) return false;
        // The history first: a failure leaves the schedule in place, so the call can be repeated.
        const job = jobKeys(prefix, id);
        await runScript(
          redis,
          PURGE_HISTORY_SCRIPT,
          [job.slotIndex, job.runs, job.running, job.ledger],
          [job.slotPrefix],
        );
      }
      return Number(await runScript(redis, DELETE_SCRIPT, registryKeyList, [id])) === 1;
    },

    async pause(id: string) {
      assertJobName(id);
      return view(await call(SET_ENABLED_SCRIPT, [id, "0", clock(), 0]));
    },

    async resume(id: string) {
      assertJobName(id);
      const current = await get(id);
      if (!current) return null;
      const nowMs = clock();
      return view(await call(SET_ENABLED_SCRIPT, [id, "1", nowMs, firstFireAfter(current, nowMs)]));
    },

    async events(count = 20) {
      const reply = decodeReply<{ id: string; schedule: string; event: string }[] | object>(
        await runScript(redis, EVENTS_SCRIPT, [keys.events], [Math.max(1, Math.min(1_000, count))]),
      );
      return (Array.isArray(reply) ? reply : []).map((entry) => ({
        id: entry.id,
        schedule: entry.schedule,
        event: JSON.parse(entry.event) as RegistryEvent["event"],
      }));
    },
  });
}
