import type { IncomingMessage } from "node:http";
import { constantTimeEquals } from "../core/secrets.js";

/**
 * The role the presented token grants, or undefined. The token comes from `Authorization:
 * Bearer <token>` or, failing that, the `_token` query parameter (Upstash's documented
 * alternative). Both tokens are always compared, each in time that depends only on its own
 * length, never on where the presented value differs.
 */
export function authorize(
  request: IncomingMessage,
  query: string,
  token: string,
  readonlyToken: string | undefined,
): "full" | "readonly" | undefined {
  const header = request.headers.authorization;
  let presented = "";
  if (header !== undefined) {
    presented = bearerToken(header);
  } else if (query.length > 0) {
    presented = new URLSearchParams(query).get("_token") ?? "";
  }
  const full = constantTimeEquals(presented, token);
  const readonly = readonlyToken !== undefined && constantTimeEquals(presented, readonlyToken);
  if (presented.length === 0) return undefined;
  if (full) return "full";
  return readonly ? "readonly" : undefined;
}

const BEARER = /^Bearer\s+(.+)$/i;

/** The token of `Bearer <token>` (scheme in any case), or "" for anything else. */
function bearerToken(header: string): string {
  // the usual "Bearer x" without a regular expression or a copy: this runs for every request
  if (header.startsWith("Bearer ") && header.charCodeAt(7) > 32) return header.slice(7).trimEnd();
  return BEARER.exec(header)?.[1]?.trim() ?? "";
}
