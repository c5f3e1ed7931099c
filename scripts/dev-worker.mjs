// `npm run dev:worker`: the example Worker under `wrangler dev --test-scheduled` (workerd), talking to
// an Upstash-compatible bridge. Uses UPSTASH_REDIS_REST_URL/TOKEN from the environment when set
// (e.g. the bridge `npm start` printed), else starts its own bridge over a fresh redis-server.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { startBridge } from "../dist/bridge/index.js";

const port = Number(process.env.PORT ?? 8788);
const secret = process.env.CRON_SECRET ?? randomBytes(18).toString("base64url");

let bridge;
let url = process.env.UPSTASH_REDIS_REST_URL;
let token = process.env.UPSTASH_REDIS_REST_TOKEN;
if (!url || !token) {
  bridge = await startBridge({ port: 0 });
  url = bridge.url;
  token = bridge.token;
  console.log(`bridge ${url} (own redis-server; stops with this command)`);
} else {
  console.log(`bridge ${url} (from UPSTASH_REDIS_REST_URL)`);
}

const base = `http://127.0.0.1:${port}`;
console.log(`
Worker on ${base} once wrangler says Ready. Try:
  curl -i "${base}/__scheduled?cron=*+*+*+*+*"          # Cloudflare's scheduled() for the heartbeat
  curl -i -H "Authorization: Bearer ${secret}" ${base}/cron/heartbeat   # manual trigger: 204 done if this minute already ran${bridge ? " (the line above runs it)" : " (the line above, or npm start's scheduler on this bridge, runs it)"}, else 200
  curl -s -H "Authorization: Bearer ${secret}" ${base}/cron/heartbeat/status
`);

const wrangler = spawn(
  "node_modules/.bin/wrangler",
  [
    "dev",
    "--test-scheduled",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--var",
    `UPSTASH_REDIS_REST_URL:${url}`,
    "--var",
    `UPSTASH_REDIS_REST_TOKEN:${token}`,
    "--var",
    `CRON_SECRET:${secret}`,
    "--var",
    "REGION:wrangler-dev",
  ],
  { stdio: "inherit", env: { ...process.env, WRANGLER_SEND_METRICS: "false" } },
);

const stop = async (code) => {
  if (wrangler.exitCode === null) wrangler.kill("SIGTERM");
  await bridge?.close();
  process.exit(code);
};
process.on("SIGINT", () => stop(130));
process.on("SIGTERM", () => stop(143));
wrangler.on("exit", (code) => stop(code ?? 1));
