import type { Context, MiddlewareHandler } from "hono";
import { processEnv } from "../core/env.js";
import { constantTimeEquals, isHeaderSafe } from "../core/secrets.js";
import { jsonError } from "./http.js";
import { qstashKeysOf, qstashSignatureProblem } from "./qstash.js";
import type { Bindings } from "./types.js";

/**
 * The token of an `Authorization: Bearer <token>` header, or undefined. Everything after the
 * scheme counts, surrounding whitespace aside, so a `CRON_SECRET` with spaces inside still matches
 * the `Bearer ${CRON_SECRET}` that Vercel sends, and one with spaces or tabs around it matches the
 * trimmed secret the app compares with.
 */
export function bearerToken(header: string | undefined | null): string | undefined {
  const match = /^Bearer[ \t]+(\S(?:.*\S)?)\s*$/i.exec(header ?? "");
  return match?.[1];
}

/** `env.CRON_SECRET` (Cloudflare bindings), else `process.env.CRON_SECRET` (Node, Vercel). */
export function defaultCronSecret(env: Bindings): string | undefined {
  const fromEnv = env?.CRON_SECRET;
  if (typeof fromEnv === "string") return fromEnv;
  return processEnv()?.CRON_SECRET;
}

/**
 * The answer to a request that may not pass: 500 when no usable secret is configured (the route
 * never runs open), 401 when its `Authorization: Bearer` token is not `configured`; undefined when
 * it may pass. `name` is what the messages call the secret.
 */
export function refusal(
  c: Context,
  configured: string | undefined,
  name = "CRON_SECRET",
): Response | undefined {
  // Surrounding whitespace is trimmed: a secret written from a file often ends in "\n", and no
  // caller can send it back, because HTTP strips leading and trailing whitespace from header
  // values (Vercel's `Authorization: Bearer <CRON_SECRET>` arrives without it). Comparing it
  // verbatim would answer 401 to every call, Vercel's included; whitespace inside is kept.
  const why = cronSecretProblem(configured);
  if (why !== undefined) {
    console.error(`cron-guard: ${name} ${why}; refusing every request`);
    return jsonError(
      c,
      500,
      `${name} is not configured on this deployment (it ${why}); refusing to run`,
    );
  }
  const expected = (configured as string).trim();
  const given = bearerToken(c.req.header("authorization"));
  if (given === undefined || !constantTimeEquals(given, expected)) {
    return jsonError(c, 401, `Unauthorized: send Authorization: Bearer <${name}>`);
  }
  return undefined;
}

/**
 * For a request that carries an `Upstash-Signature` while the QStash signing keys are configured
 * (`QSTASH_CURRENT_SIGNING_KEY`): `"signed"` when the signature verifies (it stands in for the
 * bearer), else the 401 to answer. `"unsigned"` for any other request (no signature, or no keys
 * configured): the bearer decides.
 */
async function qstashVerdict(c: Context): Promise<"signed" | "unsigned" | Response> {
  const signature = c.req.header("upstash-signature");
  if (signature === undefined) return "unsigned";
  const keys = qstashKeysOf(c.env as Bindings | undefined);
  if (keys === undefined) return "unsigned";
  const why = await qstashSignatureProblem(keys, signature, await c.req.text(), c.req.url);
  if (why === undefined) return "signed";
  return jsonError(c, 401, `Unauthorized: invalid Upstash-Signature (${why})`);
}

/**
 * Refuses every request without `Authorization: Bearer <secret>` (401), and every request at all
 * when no secret is configured (500): the app never runs open. A request signed by QStash
 * (`Upstash-Signature`) passes instead when the QStash signing keys are configured and the
 * signature verifies; a bad signature is a 401 whatever bearer comes with it.
 */
export function requireSecret(
  cronSecret: (env: Bindings) => string | undefined,
): MiddlewareHandler {
  return async function requireSecret(c, next) {
    const qstash = await qstashVerdict(c);
    if (qstash instanceof Response) return qstash;
    if (qstash === "unsigned") {
      const refused = refusal(c, cronSecret(c.env ?? {}));
      if (refused) return refused;
    }
    await next();
  };
}

/**
 * Why `secret` cannot work as the CRON_SECRET (it is missing, only whitespace, or holds
 * characters no client can send in a header, such as non-ASCII letters or control characters:
 * every trigger, Vercel's included, would get 401), or undefined when it can. The app answers
 * 500 with this reason; call it to refuse a bad secret at start-up. Never quotes the secret.
 */
export function cronSecretProblem(secret: string | undefined): string | undefined {
  if (typeof secret !== "string" || secret === "") return "is not set";
  const trimmed = secret.trim();
  if (trimmed === "") return "is only whitespace";
  if (!isHeaderSafe(trimmed)) {
    return "contains characters an HTTP header cannot carry; use printable ASCII";
  }
  return undefined;
}
