// Types for the workers test project (vitest.workers.config.ts): the bindings it gives the Worker,
// for `import { env } from "cloudflare:workers"`, and the Worker's main module (wrangler.toml
// `main`), which types `import { exports } from "cloudflare:workers"`.
declare namespace Cloudflare {
  interface Env {
    UPSTASH_REDIS_REST_URL: string;
    UPSTASH_REDIS_REST_TOKEN: string;
    CRON_SECRET: string;
    REGION: string;
  }
  interface GlobalProps {
    mainModule: typeof import("../../examples/worker.js");
  }
}
