import type { ScheduleInput, SchedulePatch } from "../core/schedules/schedule.js";
import type {
  ScheduleDeletedJson,
  ScheduleListJson,
  ScheduleOnlyJson,
  SchedulePatchJson,
  ScheduleSlotJson,
  ScheduleStatusJson,
  ScheduleWriteJson,
  TickJson,
} from "../hono/response-schemas.js";

/**
 * A typed client of a cron-guard app's `/schedules` API (see docs/api.md): one method per route,
 * the answers typed by the app's response schemas. Runs wherever `fetch` does (browsers, Workers,
 * Node 18+); it imports nothing at run time.
 */

/** A non-2xx answer, or no answer at all (`status` 0, the network error as `cause`). */
export class ScheduleApiError extends Error {
  override readonly name = "ScheduleApiError";
  /** The HTTP status; 0 when no answer came. */
  readonly status: number;
  /** The answer's body: the app's `{ error, field? }`, or its text when it is not JSON. */
  readonly body: unknown;

  constructor(message: string, options: { status: number; body: unknown; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.body = options.body;
  }
}

export interface ScheduleClientOptions {
  /** The app's base URL, e.g. `https://cron.example.com` (without `/schedules`). */
  url: string;
  /** The deployment's CRON_SECRET, sent as `Authorization: Bearer <secret>`. */
  secret: string;
  /** Default `globalThis.fetch`; pass your own for tests, retries or `app.request`. */
  fetch?: (input: Request) => Promise<Response>;
}

/** What `put` takes: a schedule, its id given by the path (a body `id` must equal it). */
export type ScheduleBody = Omit<ScheduleInput, "id"> & { id?: string };

export interface ScheduleClient {
  /** `GET /schedules`: one page, in no particular order; pass `cursor` on for the next. */
  list(options?: { cursor?: string; limit?: number }): Promise<ScheduleListJson>;
  /** `GET /schedules/:id`: the schedule with its latest slots and runs; null when there is none. */
  get(id: string): Promise<ScheduleStatusJson | null>;
  /** `PUT /schedules/:id`: creates or replaces the whole schedule (fields left out: defaults). */
  put(id: string, schedule: ScheduleBody): Promise<ScheduleWriteJson>;
  /** `PATCH /schedules/:id`: changes only these fields. */
  patch(id: string, fields: SchedulePatch): Promise<SchedulePatchJson>;
  /** `DELETE /schedules/:id`; `purge: true` deletes its run history too. */
  delete(id: string, options?: { purge?: boolean }): Promise<ScheduleDeletedJson>;
  /** `GET /schedules/:id/slots/:slot`: every attempt of one fire (ISO fire time or Date). */
  slot(id: string, slot: string | Date): Promise<ScheduleSlotJson>;
  pause(id: string): Promise<ScheduleOnlyJson>;
  resume(id: string): Promise<ScheduleOnlyJson>;
  /** `POST /dispatch`: one dispatch tick now. */
  dispatch(): Promise<TickJson>;
}

export function createScheduleClient(options: ScheduleClientOptions): ScheduleClient {
  const { secret } = options;
  const base = new URL(options.url);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const send = options.fetch ?? ((request: Request) => globalThis.fetch(request));

  async function call<T>(
    method: string,
    path: string,
    { body, query }: { body?: unknown; query?: Record<string, string | undefined> } = {},
  ): Promise<{ status: number; json: T }> {
    const url = new URL(path, base);
    for (const [name, value] of Object.entries(query ?? {})) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    const headers: Record<string, string> = { authorization: `Bearer ${secret}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    const what = `${method} ${url.pathname}`;
    let response: Response;
    try {
      response = await send(
        new Request(url, {
          method,
          headers,
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        }),
      );
    } catch (cause) {
      throw new ScheduleApiError(`${what}: no answer`, { status: 0, body: undefined, cause });
    }
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === "" ? undefined : JSON.parse(text);
    } catch {
      // Not JSON (a proxy's error page): kept as text in the error below.
    }
    if (!response.ok) {
      const said =
        typeof parsed === "object" && parsed !== null && "error" in parsed
          ? String((parsed as { error: unknown }).error)
          : text.slice(0, 200);
      throw new ScheduleApiError(`${what}: ${response.status} ${said}`, {
        status: response.status,
        body: parsed,
      });
    }
    return { status: response.status, json: parsed as T };
  }

  const schedule = (id: string) => `schedules/${encodeURIComponent(id)}`;

  return Object.freeze({
    async list({ cursor, limit }: { cursor?: string; limit?: number } = {}) {
      const query = { cursor, limit: limit === undefined ? undefined : String(limit) };
      return (await call<ScheduleListJson>("GET", "schedules", { query })).json;
    },
    async get(id: string) {
      try {
        return (await call<ScheduleStatusJson>("GET", schedule(id))).json;
      } catch (error) {
        if (error instanceof ScheduleApiError && error.status === 404) return null;
        throw error;
      }
    },
    async put(id: string, body: ScheduleBody) {
      return (await call<ScheduleWriteJson>("PUT", schedule(id), { body })).json;
    },
    async patch(id: string, fields: SchedulePatch) {
      return (await call<SchedulePatchJson>("PATCH", schedule(id), { body: fields })).json;
    },
    async delete(id: string, { purge = false }: { purge?: boolean } = {}) {
      const query = { purge: purge ? "true" : undefined };
      return (await call<ScheduleDeletedJson>("DELETE", schedule(id), { query })).json;
    },
    async slot(id: string, slot: string | Date) {
      const fire = slot instanceof Date ? slot.toISOString().replace(/\.000Z$/, "Z") : slot;
      const path = `${schedule(id)}/slots/${encodeURIComponent(fire)}`;
      return (await call<ScheduleSlotJson>("GET", path)).json;
    },
    async pause(id: string) {
      return (await call<ScheduleOnlyJson>("POST", `${schedule(id)}/pause`)).json;
    },
    async resume(id: string) {
      return (await call<ScheduleOnlyJson>("POST", `${schedule(id)}/resume`)).json;
    },
    async dispatch() {
      return (await call<TickJson>("POST", "dispatch")).json;
    },
  });
}
