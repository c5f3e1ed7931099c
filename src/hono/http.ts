import type { Context, Env, MiddlewareHandler } from "hono";
import { validator } from "hono/validator";
import * as v from "valibot";
import { ConfigError, type StoreUnavailableError } from "../core/errors.js";

export type ErrorStatus = 400 | 401 | 404 | 405 | 500 | 503;

/** Every error answer of the app: JSON `{ error }` with the status. */
export const jsonError = (c: Context, status: ErrorStatus, error: string) =>
  c.json({ error }, status);

/** 405 with `Allow`, for a method a route does not serve (HEAD included where it would claim). */
export const methodNotAllowed = (
  c: Context,
  allow: "GET" | "GET, POST" | "GET, PUT, PATCH, DELETE" | "POST",
) =>
  c.json(
    { error: `method ${c.req.method} not allowed: use ${allow.replace(/, (?=[^,]*$)/, " or ")}` },
    405,
    { allow },
  );

/**
 * Every route's answer to a store that cannot be reached, refuses, or has no quorum: 503 JSON,
 * like the guarded routes under the closed store policy. The store's own message can carry
 * commands and tokens: it goes to the log only.
 */
export const storeUnavailable = (c: Context, error: StoreUnavailableError) => {
  console.error(`cron-guard: ${c.req.method} ${new URL(c.req.url).pathname}: ${error.message}`);
  return error.kind === "rejected"
    ? jsonError(c, 503, "store refused the request (see the deployment's log); nothing changed")
    : jsonError(c, 503, "store unreachable: try again; nothing changed");
};

/** Every bad-input answer of the app: 400 `{ error: "<field>: <problem>", field }`. */
export const badInput = (c: Context, error: ConfigError) =>
  c.json({ error: error.message, field: error.option }, 400);

/** The first issue of a failed parse as the error naming its field (`fallback` at the top). */
function issueAsError(issues: readonly v.BaseIssue<unknown>[], fallback: string): ConfigError {
  const issue = issues[0];
  return new ConfigError(String(issue?.path?.[0]?.key ?? fallback), issue?.message ?? "invalid");
}

/** Parses with the schema, stopping at the first problem: the output, or that problem. */
function parseOrError<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  fallback: string,
): { output: v.InferOutput<S> } | { error: ConfigError } {
  const result = v.safeParse(schema, input, { abortEarly: true });
  return result.success
    ? { output: result.output }
    : { error: issueAsError(result.issues, fallback) };
}

/**
 * Hono's `validator` for the query or the path with a valibot schema: `c.req.valid(target)` is
 * the schema's output, a failure is the {@link badInput} 400. A query parameter given twice
 * counts by its first value.
 */
export const validated = <S extends v.GenericSchema, T extends "query" | "param">(
  target: T,
  schema: S,
) =>
  validator(target, (value, c) => {
    const input =
      target === "query"
        ? Object.fromEntries(
            Object.entries(value).map(([key, values]) => [
              key,
              Array.isArray(values) ? values[0] : values,
            ]),
          )
        : value;
    const parsed = parseOrError(schema, input, target);
    return "error" in parsed ? badInput(c, parsed.error) : (parsed.output as v.InferOutput<S>);
  });

/**
 * The request body as JSON checked by the schema, whatever its content type (hono's `validator`
 * reads JSON only under `content-type: application/json`, and `curl -d` sends a form type): `not
 * JSON` or the schema's first problem is the {@link badInput} 400 naming `body` or the field.
 * Size the body first (`bodyLimit`).
 */
export const jsonBody =
  <S extends v.GenericSchema, E extends Env = Env, P extends string = string>(
    schema: S,
  ): MiddlewareHandler<E, P, { in: { json: v.InferInput<S> }; out: { json: v.InferOutput<S> } }> =>
  async (c, next) => {
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      return badInput(c, new ConfigError("body", "not JSON"));
    }
    const parsed = parseOrError(schema, body, "body");
    if ("error" in parsed) return badInput(c, parsed.error);
    c.req.addValidatedData("json", parsed.output as object);
    await next();
  };
