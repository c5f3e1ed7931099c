import { execFile } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const repo = resolve(import.meta.dirname, "../..");
const fixtures = join(import.meta.dirname, "fixtures");
/** What a consumer project installs beside cron-guard (its dependencies and peers, and types). */
const LINKED = [
  "hono",
  "@upstash/redis",
  "@cloudflare/workers-types",
  "croner",
  "valibot",
  "@valibot/to-json-schema",
];

async function tsc(project: string): Promise<{ code: number; output: string }> {
  try {
    const { stdout } = await run(
      process.execPath,
      [join(repo, "node_modules/typescript/bin/tsc"), "-p", project],
      {
        cwd: dirname(project),
      },
    );
    return { code: 0, output: stdout };
  } catch (error) {
    const failure = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failure.code ?? 1, output: `${failure.stdout ?? ""}${failure.stderr ?? ""}` };
  }
}

/**
 * Fresh strict-TypeScript projects that use the packed tarball (`npm pack`: exactly the files a
 * user installs), with the Env a `wrangler types` run generates. `@ts-expect-error` lines in the
 * fixtures pin what must NOT compile: an expected error that does not happen fails tsc too.
 */
describe("the packed package, type-checked as a consumer", () => {
  let project: string;

  beforeAll(async () => {
    if (!existsSync(join(repo, "dist/core/index.d.ts"))) {
      throw new Error("dist is missing: run `npm run build` first (npm test does)");
    }
    project = mkdtempSync(join(tmpdir(), "cron-guard-consumer-"));
    const { stdout } = await run(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", project],
      {
        cwd: repo,
      },
    );
    const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
    const installed = join(project, "node_modules/cron-guard");
    mkdirSync(installed, { recursive: true });
    await run("tar", ["-xzf", join(project, filename), "-C", installed, "--strip-components=1"]);
    for (const name of LINKED) {
      const target = join(project, "node_modules", name);
      mkdirSync(dirname(target), { recursive: true });
      symlinkSync(join(repo, "node_modules", name), target, "dir");
    }
    cpSync(fixtures, join(project, "src"), { recursive: true });
    const strict = {
      strict: true,
      noEmit: true,
      target: "ES2022",
      module: "ESNext",
      lib: ["ES2022"],
      skipLibCheck: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
    };
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          ...strict,
          moduleResolution: "bundler",
          types: ["@cloudflare/workers-types"],
        },
        include: ["src/worker.ts", "src/hono-app.ts", "src/vercel.ts", "src/guard.ts"],
      }),
    );
    writeFileSync(
      join(project, "tsconfig.node10.json"),
      JSON.stringify({
        compilerOptions: {
          ...strict,
          module: "CommonJS",
          moduleResolution: "node10",
          lib: ["ES2022", "DOM"],
        },
        include: ["src/node10.ts"],
      }),
    );
  }, 120_000);

  afterAll(() => {
    if (project) rmSync(project, { recursive: true, force: true });
  });

  it("type-checks a Worker, a Hono app, a Vercel app and the guard against the tarball", async () => {
    const { code, output } = await tsc(join(project, "tsconfig.json"));
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 120_000);

  it("resolves the root entry under moduleResolution node10 (top-level main and types)", async () => {
    const { code, output } = await tsc(join(project, "tsconfig.node10.json"));
    expect(output).toBe("");
    expect(code).toBe(0);
  }, 120_000);

  it("fails when a fixture misuses a type (the check can fail)", async () => {
    writeFileSync(
      join(project, "src/broken.ts"),
      'import { createWorker } from "cron-guard/cloudflare";\ninterface Env { CACHE: KVNamespace }\nexport default createWorker<Env>([{ name: "x", cron: "* * * * *", handler: ({ env }) => env.CAHCE.get("k") }]);\n',
    );
    writeFileSync(
      join(project, "tsconfig.broken.json"),
      JSON.stringify({ extends: "./tsconfig.json", include: ["src/broken.ts"] }),
    );
    const { code, output } = await tsc(join(project, "tsconfig.broken.json"));
    expect(code).not.toBe(0);
    expect(output).toMatch(/CAHCE/);
  }, 120_000);
});
