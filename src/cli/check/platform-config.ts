import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { stripJsonc } from "./jsonc.js";

/** A platform config file that cannot be read, parsed, or has the wrong shape; says which and why. */
export class PlatformConfigError extends Error {
  override readonly name = "PlatformConfigError";
}

/** One deployment's Cron Triggers: the top level of wrangler.toml, or one `[env.<name>]`. */
export interface WranglerTriggers {
  /** `wrangler.toml` or `wrangler.toml [env.production]`: how mismatches name it. */
  label: string;
  crons: readonly unknown[];
}

export interface WranglerConfig {
  file: string;
  /** `main`, resolved against the file's folder by the caller; undefined when absent. */
  main: string | undefined;
  /** The top level first, then every environment that declares its own `[env.<name>.triggers]`. */
  deployments: readonly WranglerTriggers[];
}

export interface VercelConfig {
  file: string;
  /** `crons` as written: entries are checked one by one, so a malformed one is a mismatch. */
  crons: readonly unknown[];
}

async function readText(file: string, cwd: string): Promise<string> {
  try {
    return await readFile(resolve(cwd, file), "utf8");
  } catch (error) {
    throw new PlatformConfigError(`${file}: cannot read it: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function cronsOf(label: string, triggers: unknown): readonly unknown[] {
  const crons = record(triggers)?.crons;
  if (crons === undefined) return [];
  if (!Array.isArray(crons)) {
    throw new PlatformConfigError(`${label}: triggers.crons must be a list of cron expressions`);
  }
  return crons;
}

/**
 * wrangler.toml (or wrangler.json / wrangler.jsonc): `main` and the Cron Triggers of each
 * deployment, `file` read relative to `cwd`. An environment without its own `triggers` inherits
 * the top level's (as wrangler does), so only environments with their own are listed.
 */
export async function readWranglerConfig(file: string, cwd: string): Promise<WranglerConfig> {
  const text = await readText(file, cwd);
  let config: Record<string, unknown> | undefined;
  try {
    config = record(/\.jsonc?$/i.test(file) ? JSON.parse(stripJsonc(text)) : parseToml(text));
  } catch (error) {
    const format = /\.jsonc?$/i.test(file) ? "JSON" : "TOML";
    throw new PlatformConfigError(`${file}: not valid ${format}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (config === undefined) throw new PlatformConfigError(`${file}: not a table of settings`);
  const deployments: WranglerTriggers[] = [{ label: file, crons: cronsOf(file, config.triggers) }];
  for (const [name, env] of Object.entries(record(config.env) ?? {})) {
    const triggers = record(env)?.triggers;
    if (triggers !== undefined) {
      const label = `${file} [env.${name}]`;
      deployments.push({ label, crons: cronsOf(label, triggers) });
    }
  }
  return {
    file,
    main: typeof config.main === "string" ? config.main : undefined,
    deployments,
  };
}

/** vercel.json's `crons` (none when the file has no `crons`), `file` read relative to `cwd`. */
export async function readVercelConfig(file: string, cwd: string): Promise<VercelConfig> {
  const text = await readText(file, cwd);
  let config: Record<string, unknown> | undefined;
  try {
    config = record(JSON.parse(text));
  } catch (error) {
    throw new PlatformConfigError(`${file}: not valid JSON: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (config === undefined) throw new PlatformConfigError(`${file}: not a JSON object`);
  const crons = config.crons ?? [];
  if (!Array.isArray(crons)) {
    throw new PlatformConfigError(`${file}: "crons" must be a list of { "path", "schedule" }`);
  }
  return { file, crons };
}
