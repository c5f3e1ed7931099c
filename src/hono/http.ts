import type { Context } from "hono";

export type ErrorStatus = 400 | 401 | 404 | 405 | 500 | 503;

/** Every error answer of the app: JSON `{ error }` with the status. */
export const jsonError = (c: Context, status: ErrorStatus, error: string) =>
  c.json({ error }, status);

/** 405 with `Allow`, for a method a route does not serve (HEAD included where it would claim). */
export const methodNotAllowed = (
  c: Context,
  allow: "GET" | "GET, POST" | "GET, PUT, DELETE" | "POST",
) =>
  c.json(
    { error: `method ${c.req.method} not allowed: use ${allow.replace(/, (?=[^,]*$)/, " or ")}` },
    405,
    { allow },
  );
