import { nextFireTimes, parseSchedule } from "../../core/cron/index.js";
import { scheduleSignature } from "../../hono/cron-signature.js";
import type { VercelConfig, WranglerTriggers } from "./platform-config.js";

/** What the platform config must agree with: the app's jobs and its dispatch cron. */
export interface AppCrons {
  jobs: readonly { name: string; cron: string }[];
  /** The app's `dispatchCron`; undefined when it registers no schedule handlers (no /dispatch). */
  dispatchCron: string | undefined;
}

/** Vercel's plans; `hobby` allows crons that fire at most once a day. */
export type VercelPlan = "hobby" | "pro" | "enterprise";
export const VERCEL_PLANS: readonly VercelPlan[] = ["hobby", "pro", "enterprise"];

/** Why `cron` is not a 5-field expression the app would accept, or undefined when it is one. */
function invalidCron(cron: unknown): string | undefined {
  if (typeof cron !== "string") return `${JSON.stringify(cron)} is not a string`;
  try {
    parseSchedule(cron);
  } catch (error) {
    return (error as Error).message.replace(/^cron: /, "");
  }
  return scheduleSignature(cron) === undefined ? `"${cron}" is not a cron expression` : undefined;
}

const DAY_MS = 86_400_000;

/**
 * Whether `cron` fires more than once on some day. Every day it fires on, it fires at the same
 * minutes and hours, so a few consecutive fires show it: two of them less than a day apart.
 */
export function firesMoreThanDaily(cron: string): boolean {
  const fires = nextFireTimes(parseSchedule(cron), Date.UTC(2001, 0, 1), 8);
  return fires.some((fire, i) => i > 0 && fire - (fires[i - 1] as number) < DAY_MS);
}

/**
 * Each way one Cloudflare deployment's `[triggers] crons` and the app disagree, one line each
 * (crons compared by meaning: `*\/1 * * * *` is `* * * * *`): a cron that is no job's and not the
 * dispatch cron (Cloudflare fires it and nothing runs), a job whose cron is missing (it never
 * runs), the dispatch cron missing while the app has schedule handlers (nothing is dispatched).
 */
export function wranglerMismatches(app: AppCrons, deployment: WranglerTriggers): string[] {
  const { label } = deployment;
  const lines: string[] = [];
  const listed = new Set<string>();
  const dispatchSignature =
    app.dispatchCron === undefined ? undefined : scheduleSignature(app.dispatchCron);
  const jobSignatures = new Set(app.jobs.map((job) => scheduleSignature(job.cron)));
  for (const cron of deployment.crons) {
    const invalid = invalidCron(cron);
    if (invalid !== undefined) {
      lines.push(`${label}: cron ${JSON.stringify(cron)} is not valid: ${invalid}`);
      continue;
    }
    const signature = scheduleSignature(cron as string) as string;
    listed.add(signature);
    if (jobSignatures.has(signature) || signature === dispatchSignature) continue;
    const dispatch =
      app.dispatchCron === undefined
        ? "and the app has no dispatch cron (it has no schedule handlers)"
        : `nor the dispatch cron "${app.dispatchCron}"`;
    lines.push(
      `${label}: cron "${cron}" matches no job (${jobList(app)}), ${dispatch}: Cloudflare would fire it and nothing would run`,
    );
  }
  for (const job of app.jobs) {
    if (!listed.has(scheduleSignature(job.cron) as string)) {
      lines.push(
        `${label}: job "${job.name}" runs on "${job.cron}", which [triggers] crons lacks: Cloudflare would never run it`,
      );
    }
  }
  if (dispatchSignature !== undefined && !listed.has(dispatchSignature)) {
    lines.push(
      `${label}: the app has schedule handlers but [triggers] crons lacks its dispatch cron "${app.dispatchCron}": no dynamic schedule would ever be dispatched`,
    );
  }
  return lines;
}

/**
 * Each way vercel.json's `crons` and the app disagree, one line each: a `path` that is not
 * `/cron/<job>` of a job or `/dispatch` of an app with schedule handlers (answered 404), a
 * schedule that does not mean the job's cron (answered 400) or the dispatch cron, a job or the
 * dispatch cron without an entry, and on the Hobby plan a cron that fires more than once a day.
 */
export function vercelMismatches(
  app: AppCrons,
  config: VercelConfig,
  { plan }: { plan?: VercelPlan } = {},
): string[] {
  const { file } = config;
  const lines: string[] = [];
  const called = new Set<string>();
  config.crons.forEach((entry, index) => {
    const { path, schedule } = (entry ?? {}) as { path?: unknown; schedule?: unknown };
    if (typeof path !== "string" || typeof schedule !== "string") {
      lines.push(`${file}: crons[${index}] needs a string "path" and a string "schedule"`);
      return;
    }
    const invalid = invalidCron(schedule);
    if (invalid !== undefined) {
      lines.push(`${file}: "${path}" has schedule "${schedule}", which is not valid: ${invalid}`);
      return;
    }
    const target = targetOf(app, path);
    if (typeof target === "string") {
      lines.push(`${file}: cron path "${path}" ${target}`);
    } else {
      called.add(path);
      if (scheduleSignature(schedule) !== scheduleSignature(target.cron)) {
        lines.push(
          target.job === undefined
            ? `${file}: "${path}" runs on "${schedule}" but the app's dispatch cron is "${target.cron}"`
            : `${file}: "${path}" runs on "${schedule}" but job "${target.job}" runs on "${target.cron}": the app answers that delivery 400`,
        );
      }
    }
    if (plan === "hobby" && firesMoreThanDaily(schedule)) {
      lines.push(
        `${file}: "${path}" runs on "${schedule}", more than once a day, which Vercel's Hobby plan does not allow`,
      );
    }
  });
  for (const job of app.jobs) {
    if (!called.has(`/cron/${job.name}`)) {
      lines.push(
        `${file}: job "${job.name}" has no cron entry { "path": "/cron/${job.name}", "schedule": "${job.cron}" }: Vercel would never run it`,
      );
    }
  }
  if (app.dispatchCron !== undefined && !called.has("/dispatch")) {
    lines.push(
      `${file}: the app has schedule handlers but no cron calls "/dispatch" (its dispatch cron is "${app.dispatchCron}"): no dynamic schedule would ever be dispatched`,
    );
  }
  return lines;
}

/** The job or dispatch a Vercel cron path calls, or why it calls nothing. */
function targetOf(app: AppCrons, path: string): { job?: string; cron: string } | string {
  if (path === "/dispatch") {
    return app.dispatchCron === undefined
      ? "calls nothing: the app has no schedule handlers, so no /dispatch (it answers 404)"
      : { cron: app.dispatchCron };
  }
  const name = /^\/cron\/([^/?#]+)$/.exec(path)?.[1];
  const job = app.jobs.find((candidate) => candidate.name === name);
  if (job !== undefined) return { job: job.name, cron: job.cron };
  const dispatch = app.dispatchCron === undefined ? "" : " or /dispatch";
  return name === undefined
    ? `is not /cron/<job> of a job (${jobList(app)})${dispatch}: the app answers it 404`
    : `names no job (${jobList(app)}): the app answers it 404`;
}

function jobList(app: AppCrons): string {
  return app.jobs.length === 0
    ? "the app has none"
    : `jobs: ${app.jobs.map((job) => job.name).join(", ")}`;
}
