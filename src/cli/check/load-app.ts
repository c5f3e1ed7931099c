import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AppCrons } from "./mismatches.js";

/** The app module cannot be imported, or its default export is not a cron-guard app. */
export class AppModuleError extends Error {
  override readonly name = "AppModuleError";
}

/** Import failures that mean Node could not load a TypeScript module by itself. */
const NO_TYPESCRIPT_LOADER = new Set([
  "ERR_UNKNOWN_FILE_EXTENSION",
  "ERR_MODULE_NOT_FOUND",
  "ERR_UNSUPPORTED_TYPESCRIPT_SYNTAX",
  "ERR_UNSUPPORTED_NODE_MODULES_TYPE_STRIPPING",
  "ERR_INVALID_TYPESCRIPT_SYNTAX",
]);

/** What to run instead when Node cannot import a `.ts` app by itself. */
export const TYPESCRIPT_HINT =
  "Node cannot import TypeScript by itself: run the check under a TypeScript loader, e.g. `npx tsx node_modules/.bin/cron-guard check ...` or `node --import tsx node_modules/.bin/cron-guard check ...` (npm i -D tsx), or point --app at the built .js";

interface CronAppLike {
  jobs: readonly { name: string; cron: string }[];
  dispatchCron?: string | undefined;
  runScheduled: unknown;
}

function isCronApp(value: unknown): value is CronAppLike {
  if ((typeof value !== "object" && typeof value !== "function") || value === null) return false;
  const app = value as Partial<CronAppLike>;
  return Array.isArray(app.jobs) && typeof app.runScheduled === "function";
}

/**
 * Imports `modulePath` (relative to `cwd`) and reads the jobs and dispatch cron of its default
 * export: a CronApp (createCronApp, createVercelApp) or a Worker of createWorker (its `app`).
 */
export async function loadAppCrons(modulePath: string, cwd: string): Promise<AppCrons> {
  let module: { default?: unknown };
  try {
    module = (await import(pathToFileURL(resolve(cwd, modulePath)).href)) as { default?: unknown };
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const typescript =
      /\.[cm]?tsx?$/i.test(modulePath) &&
      typeof code === "string" &&
      NO_TYPESCRIPT_LOADER.has(code);
    throw new AppModuleError(
      `cannot import ${modulePath}: ${(error as Error).message}${typescript ? `\n${TYPESCRIPT_HINT}` : ""}`,
      { cause: error },
    );
  }
  const exported = module.default;
  const app = isCronApp(exported)
    ? exported
    : isCronApp((exported as { app?: unknown } | null | undefined)?.app)
      ? ((exported as { app: CronAppLike }).app as CronAppLike)
      : undefined;
  if (app === undefined) {
    throw new AppModuleError(
      `${modulePath}: its default export is not a cron-guard app: export default the app of createCronApp or createVercelApp, or the Worker of createWorker`,
    );
  }
  return {
    jobs: app.jobs.map(({ name, cron }) => ({ name, cron })),
    dispatchCron: app.dispatchCron,
  };
}
