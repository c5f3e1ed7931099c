import { existsSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { type CliCommand, type CliFlag, parseFlags, UsageError } from "../framework.js";
import { loadAppCrons } from "./load-app.js";
import {
  type AppCrons,
  VERCEL_PLANS,
  type VercelPlan,
  vercelMismatches,
  wranglerMismatches,
} from "./mismatches.js";
import { readVercelConfig, readWranglerConfig, type WranglerConfig } from "./platform-config.js";

/** Where `cron-guard check` looks for the Cloudflare config when neither file is named, in order. */
export const DEFAULT_WRANGLER_FILES = ["wrangler.toml", "wrangler.json", "wrangler.jsonc"];
/** Where `cron-guard check` looks for the Vercel config when neither file is named. */
export const DEFAULT_VERCEL_FILE = "vercel.json";

const CHECK_FLAGS = [
  {
    name: "app",
    value: "module",
    description:
      "The module whose default export is the app: a CronApp (createCronApp,\ncreateVercelApp) or the Worker of createWorker. Default: wrangler's `main`\nwhen a wrangler file is read. A .ts module needs a TypeScript loader (below).",
  },
  {
    name: "wrangler",
    value: "file",
    description:
      "wrangler.toml (or .json, .jsonc) to check: [triggers] crons, and those of each\n[env.<name>] with triggers of its own. Default: ./wrangler.toml (.json, .jsonc)\nwhen neither --wrangler nor --vercel is given.",
  },
  {
    name: "vercel",
    value: "file",
    description:
      "vercel.json to check: every cron's path and schedule. Default: ./vercel.json\nwhen neither --wrangler nor --vercel is given.",
  },
  {
    name: "vercel-plan",
    value: "plan",
    description:
      "hobby, pro or enterprise. With hobby, a Vercel cron that fires more than once a\nday is a mismatch (Hobby runs crons at most daily). Default: not checked.",
  },
] as const satisfies readonly CliFlag[];

/** `cron-guard check`: the platform config (wrangler.toml, vercel.json) against the app's crons. */
export const checkCommand: CliCommand = {
  summary: "checks wrangler.toml / vercel.json crons against the app's jobs; exit 1 on a mismatch",
  usage:
    "cron-guard check [--app <module>] [--wrangler wrangler.toml] [--vercel vercel.json]\n                        [--vercel-plan hobby|pro|enterprise]",
  options: CHECK_FLAGS,
  notes: [
    "Compares crons by meaning, not spelling (*/1 * * * * is * * * * *, MON is 1). Fails, one line",
    "per mismatch, on: a platform cron that is no job's and not the dispatch cron; a job whose cron",
    "the platform lacks; on Vercel, a path other than /cron/<job> of a job or /dispatch, or a",
    "schedule that does not mean the job's cron (or the dispatch cron); the dispatch cron missing",
    "while the app has schedule handlers; with --vercel-plan hobby, a cron more often than daily.",
    "Exit 0 with one OK line otherwise; 1 on a mismatch or an unreadable file or app; 2 on bad flags.",
    "A TypeScript app: npx tsx node_modules/.bin/cron-guard check --app src/worker.ts",
    "           (or: node --import tsx node_modules/.bin/cron-guard check --app src/worker.ts)",
  ],
  async run(args, io) {
    const values = parseFlags(CHECK_FLAGS, args);
    const cwd = io.cwd ?? process.cwd();
    const plan = values["vercel-plan"];
    if (plan !== undefined && !VERCEL_PLANS.includes(plan as VercelPlan)) {
      throw new UsageError(
        `--vercel-plan must be one of ${VERCEL_PLANS.join(", ")}, got "${plan}"`,
      );
    }
    const named = values.wrangler !== undefined || values.vercel !== undefined;
    const wranglerFile = named
      ? values.wrangler
      : DEFAULT_WRANGLER_FILES.find((file) => existsSync(join(cwd, file)));
    const vercelFile = named
      ? values.vercel
      : existsSync(join(cwd, DEFAULT_VERCEL_FILE))
        ? DEFAULT_VERCEL_FILE
        : undefined;
    if (wranglerFile === undefined && vercelFile === undefined) {
      throw new UsageError(
        `nothing to check: no ${[...DEFAULT_WRANGLER_FILES, DEFAULT_VERCEL_FILE].join(", ")} in ${cwd}; name one with --wrangler <file> or --vercel <file>`,
      );
    }
    const wrangler =
      wranglerFile === undefined ? undefined : await readWranglerConfig(wranglerFile, cwd);
    const vercel = vercelFile === undefined ? undefined : await readVercelConfig(vercelFile, cwd);
    const appModule = values.app ?? wranglerMain(wrangler, cwd);
    if (appModule === undefined) {
      throw new UsageError(
        "--app <module> is needed: the module whose default export is the app (createCronApp, createVercelApp) or the Worker (createWorker)",
      );
    }
    const app = await loadAppCrons(appModule, cwd);

    const mismatches = [
      ...(wrangler?.deployments ?? []).flatMap((deployment) => wranglerMismatches(app, deployment)),
      ...(vercel === undefined
        ? []
        : vercelMismatches(app, vercel, { plan: plan as VercelPlan | undefined })),
    ];
    if (mismatches.length > 0) {
      for (const line of mismatches) io.out(line);
      io.err(
        `cron-guard check: ${mismatches.length} mismatch${mismatches.length === 1 ? "" : "es"} between ${appModule} and the platform config`,
      );
      return { exitCode: 1 };
    }
    const checked = [
      ...(wrangler?.deployments ?? []).map(
        (deployment) => `${deployment.label} (${deployment.crons.length} crons)`,
      ),
      ...(vercel === undefined ? [] : [`${vercel.file} (${vercel.crons.length} crons)`]),
    ];
    io.out(
      `cron-guard check: OK: ${describeApp(app)} of ${appModule} match ${checked.join(" and ")}`,
    );
    return { exitCode: 0 };
  },
};

/** wrangler's `main`, relative to the working directory as the user would type it. */
function wranglerMain(wrangler: WranglerConfig | undefined, cwd: string): string | undefined {
  if (wrangler?.main === undefined) return undefined;
  return relative(cwd, resolve(cwd, dirname(wrangler.file), wrangler.main)) || wrangler.main;
}

function describeApp(app: AppCrons): string {
  const names = app.jobs.map((job) => job.name).join(", ");
  const jobs =
    app.jobs.length === 0
      ? "no jobs"
      : `${app.jobs.length} job${app.jobs.length === 1 ? "" : "s"} (${names})`;
  return app.dispatchCron === undefined
    ? jobs
    : `${jobs} and the dispatch cron "${app.dispatchCron}"`;
}
