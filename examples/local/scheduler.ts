import { nextFireTimes, parseSchedule, slotId } from "../../src/core/cron/index.js";
import type { Bindings, CronApp, ScheduledRun } from "../../src/hono/index.js";

type TickResult = { ran: number; skipped: number; failed: number; dead: number; missed: number };

/** What happened to one fired slot of one job (or of the dispatch tick), over every delivery. */
export interface FiredSlot {
  /** A job's name, or `dispatch` for the dispatch tick. */
  job: string;
  slot: string;
  deliveries: number;
  ran: number;
  skipped: number;
  failed: number;
  /** Deliveries that answered something else (HTTP 4xx/5xx other than a job failure, thrown errors). */
  errors: number;
  /** Dispatch only: what the ticks together did with the schedules. */
  schedules?: { ran: number; skipped: number; failed: number; dead: number; missed: number };
}

export interface LocalSchedulerOptions {
  app: CronApp;
  baseUrl: string;
  secret: string;
  /** Simulated regions, each delivering every fire once as Vercel GET and once as a scheduled event. Default 3. */
  regions?: number;
  /** Each delivery waits up to this long after the fire time, in ms. Default 300. */
  jitterMs?: number;
  /** Default `Date.now`; inject with `sleepUntil` to run minutes in milliseconds. */
  clock?: () => number;
  /** Resolves once `clock()` has reached `ms`. Default: a timer. */
  sleepUntil?: (ms: number) => Promise<void>;
  /** How HTTP deliveries are sent. Default `fetch`. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** Also fire the dispatch tick (`* * * * *`): the app registers schedule handlers. Default true. */
  dispatch?: boolean;
  /** Default `Math.random`. */
  random?: () => number;
  /** One line per fired slot. */
  onFired?: (fired: FiredSlot, line: string) => void;
}

export interface LocalScheduler {
  /** Fires every cron on time until stopped, or until `fires` fire times have passed. */
  run(options?: { fires?: number }): Promise<FiredSlot[]>;
  stop(): void;
}

const realSleepUntil = (clock: () => number) => (ms: number) =>
  new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms - clock())));

/** `heartbeat 23:05Z: 1 ran, 5 skipped` (failures and errors only when there are any). */
export function formatFired(fired: FiredSlot): string {
  const time = fired.slot.slice(11, 16);
  const counts = fired.schedules;
  if (counts) {
    const extra = [
      counts.failed ? `, ${counts.failed} failed` : "",
      counts.dead ? `, ${counts.dead} dead` : "",
      counts.missed ? `, ${counts.missed} missed` : "",
      fired.errors ? `; ${fired.errors} errors` : "",
    ].join("");
    return `dispatch ${time}Z: ${fired.ran} ticks, schedules ${counts.ran} ran${extra}`;
  }
  const parts = [`${fired.ran} ran`, `${fired.skipped} skipped`];
  if (fired.failed > 0) parts.push(`${fired.failed} failed`);
  if (fired.errors > 0) parts.push(`${fired.errors} errors`);
  return `${fired.job} ${time}Z: ${parts.join(", ")}`;
}

/**
 * The platforms' crons, locally: at every fire time of every job (and of the app's dispatch cron)
 * each simulated region delivers it twice, a little late and at about the same moment as the
 * others, as Vercel does (`GET /cron/<job>` with `x-vercel-cron-schedule` and the bearer, or
 * `GET /dispatch`) and as Cloudflare does (`scheduled()` with `{ cron, scheduledTime }`, which
 * runs every job of that cron and, for the dispatch cron, a tick). Exactly one delivery per slot
 * should run; the line says how many ran and how many were skipped.
 */
export function createLocalScheduler(options: LocalSchedulerOptions): LocalScheduler {
  const { app, baseUrl, secret } = options;
  const regions = options.regions ?? 3;
  const jitterMs = options.jitterMs ?? 300;
  const clock = options.clock ?? Date.now;
  const sleepUntil = options.sleepUntil ?? realSleepUntil(clock);
  const send = options.fetch ?? ((url: string, init: RequestInit) => fetch(url, init));
  const random = options.random ?? Math.random;
  const dispatchCron = "* * * * *";
  const hasDispatch = options.dispatch ?? true;
  const envs: Bindings[] = Array.from({ length: regions }, (_, i) => ({
    REGION: `region-${i + 1}`,
  }));
  const jobs = app.jobs.map((job) => ({
    name: job.name,
    cron: job.cron,
    schedule: parseSchedule(job.cron, { timezone: job.timezone }),
  }));
  const dispatchSchedule = parseSchedule(dispatchCron);
  let stopped = false;
  let wake: (() => void) | undefined;

  const nextFire = (afterMs: number) => {
    const candidates = [
      ...jobs.map(({ schedule }) => nextFireTimes(schedule, afterMs, 1)[0]),
      hasDispatch ? nextFireTimes(dispatchSchedule, afterMs, 1)[0] : undefined,
    ].filter((ms): ms is number => ms !== undefined);
    return Math.min(...candidates);
  };

  async function fire(fireMs: number): Promise<FiredSlot[]> {
    const due = jobs.filter(({ schedule }) => nextFireTimes(schedule, fireMs - 1, 1)[0] === fireMs);
    const dispatching = hasDispatch;
    const slot = slotId(fireMs);
    const tallies = new Map<string, FiredSlot>();
    const tally = (job: string) => {
      let entry = tallies.get(job);
      if (!entry) {
        entry = { job, slot, deliveries: 0, ran: 0, skipped: 0, failed: 0, errors: 0 };
        tallies.set(job, entry);
      }
      return entry;
    };
    for (const { name } of due) tally(name);
    if (dispatching)
      tally("dispatch").schedules = { ran: 0, skipped: 0, failed: 0, dead: 0, missed: 0 };
    const authorization = `Bearer ${secret}`;
    const jittered = async (work: () => Promise<void>) => {
      await sleepUntil(fireMs + Math.floor(random() * jitterMs));
      await work();
    };
    const countHttp = (entry: FiredSlot, status: number) => {
      entry.deliveries += 1;
      if (status === 200) entry.ran += 1;
      else if (status === 204) entry.skipped += 1;
      else if (status === 500) entry.failed += 1;
      else entry.errors += 1;
    };
    const countTick = (
      entry: FiredSlot,
      tick: { ran: number; skipped: number; failed: number; dead: number; missed: number },
    ) => {
      const counts = entry.schedules as NonNullable<FiredSlot["schedules"]>;
      for (const key of ["ran", "skipped", "failed", "dead", "missed"] as const)
        counts[key] += tick[key];
    };
    const deliveries: Promise<void>[] = [];
    // Cloudflare: one scheduled event per distinct cron that fires now, per region.
    const crons = new Map<string, string>();
    for (const { cron } of due) crons.set(cron, cron);
    if (dispatching) crons.set(dispatchCron, dispatchCron);
    for (const env of envs) {
      for (const cron of crons.values()) {
        deliveries.push(
          jittered(async () => {
            let runs: ScheduledRun[];
            try {
              runs = await app.runScheduled({ cron, scheduledTime: fireMs }, env);
            } catch {
              for (const { name } of due.filter((job) => job.cron === cron))
                tally(name).errors += 1;
              return;
            }
            for (const run of runs) {
              if (run.job !== null) {
                const entry = tally(run.job);
                entry.deliveries += 1;
                const status = run.result.status;
                if (status === "ran") entry.ran += 1;
                else if (status === "skipped") entry.skipped += 1;
                else if (status === "failed") entry.failed += 1;
                else entry.errors += 1;
              } else if (run.result.status === "dispatched") {
                const entry = tally("dispatch");
                entry.deliveries += 1;
                entry.ran += 1;
                countTick(entry, run.result.tick);
              } else if (run.result.status === "error") {
                tally("dispatch").errors += 1;
              }
            }
          }),
        );
      }
      // Vercel: one GET per cron path of vercel.json, per region.
      for (const { name, cron } of due) {
        deliveries.push(
          jittered(async () => {
            try {
              const response = await send(`${baseUrl}/cron/${encodeURIComponent(name)}`, {
                headers: {
                  authorization,
                  "user-agent": "vercel-cron/1.0",
                  "x-vercel-cron-schedule": cron,
                },
              });
              await response.arrayBuffer();
              countHttp(tally(name), response.status);
            } catch {
              tally(name).errors += 1;
            }
          }),
        );
      }
      if (dispatching) {
        deliveries.push(
          jittered(async () => {
            const entry = tally("dispatch");
            try {
              const response = await send(`${baseUrl}/dispatch`, {
                headers: {
                  authorization,
                  "user-agent": "vercel-cron/1.0",
                  "x-vercel-cron-schedule": dispatchCron,
                },
              });
              entry.deliveries += 1;
              if (response.status === 200) {
                entry.ran += 1;
                countTick(entry, (await response.json()) as TickResult);
              } else {
                await response.arrayBuffer();
                entry.errors += 1;
              }
            } catch {
              entry.errors += 1;
            }
          }),
        );
      }
    }
    await Promise.all(deliveries);
    const fired = [...tallies.values()];
    for (const entry of fired) options.onFired?.(entry, formatFired(entry));
    return fired;
  }

  return {
    async run({ fires } = {}) {
      stopped = false;
      const all: FiredSlot[] = [];
      for (let count = 0; !stopped && (fires === undefined || count < fires); count += 1) {
        const fireMs = nextFire(clock());
        await Promise.race([
          sleepUntil(fireMs),
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
        ]);
        if (stopped) break;
        all.push(...(await fire(fireMs)));
      }
      return all;
    },
    stop() {
      stopped = true;
      wake?.();
    },
  };
}
