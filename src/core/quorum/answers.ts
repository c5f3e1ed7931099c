/**
 * Asking every database and reading their answers: one call per database with a timeout that never
 * rejects, waiting for as many answers as a question needs, and grouping identical answers.
 */
import { StoreUnavailableError } from "../errors.js";
import { asStoreError, decodeReply, messageOf } from "../store.js";

export type Answer =
  | { ok: true; value: unknown }
  | { ok: false; error: StoreUnavailableError; noScript?: boolean };

/** Settles with the store's answer or a timeout; never rejects. */
export function ask(
  attempt: () => Promise<unknown>,
  name: string,
  timeoutMs: number,
  detectNoScript = false,
): Promise<Answer> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Answer>((resolve) => {
    timer = setTimeout(
      () =>
        resolve({
          ok: false,
          error: new StoreUnavailableError(`${name} got no answer within ${timeoutMs} ms`, {
            kind: "unreachable",
          }),
        }),
      timeoutMs,
    );
  });
  let answer: Promise<Answer>;
  try {
    answer = attempt().then(
      (value): Answer => ({ ok: true, value }),
      (error): Answer => ({
        ok: false,
        error: asStoreError(error, name),
        noScript: detectNoScript && /noscript/i.test(messageOf(error)),
      }),
    );
  } catch (error) {
    answer = Promise.resolve({ ok: false, error: asStoreError(error, name) });
  }
  return Promise.race([answer, timeout]).finally(() => {
    if (timer !== undefined) clearTimeout(timer);
  });
}

/**
 * Waits until every call settled, or until `decided` says the answers so far settle the question.
 * Entries of calls still pending are undefined.
 */
export function gather(
  calls: readonly Promise<Answer>[],
  decided: (answers: readonly (Answer | undefined)[]) => boolean = () => false,
): Promise<(Answer | undefined)[]> {
  return new Promise((resolve) => {
    const answers: (Answer | undefined)[] = new Array(calls.length).fill(undefined);
    let pending = calls.length;
    if (pending === 0) resolve(answers);
    calls.forEach((call, index) => {
      void call.then((answer) => {
        answers[index] = answer;
        pending -= 1;
        if (pending === 0 || decided(answers)) resolve([...answers]);
      });
    });
  });
}

export function isOk(answer: Answer | undefined): answer is { ok: true; value: unknown } {
  return answer?.ok === true;
}

export function decodeSafely<T>(value: unknown): T | undefined {
  try {
    return decodeReply<T>(value);
  } catch {
    return undefined;
  }
}

/**
 * A comparison key for an answer: objects with sorted keys, and strings that hold JSON (a stored
 * schedule definition) parsed first, so that two databases that hold the same data compare equal
 * whatever order their Lua tables encoded it in.
 */
export function canonical(value: unknown): string {
  const normal = (v: unknown): unknown => {
    if (typeof v === "string" && /^[[{]/.test(v)) {
      try {
        return normal(JSON.parse(v));
      } catch {
        return v;
      }
    }
    if (Array.isArray(v)) return v.map(normal);
    if (v !== null && typeof v === "object") {
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((key) => [key, normal((v as Record<string, unknown>)[key])]),
      );
    }
    return v;
  };
  return JSON.stringify(normal(value)) ?? "undefined";
}

/** The group of identical values (by `keyOf`) that a majority holds, if any. */
export function majorityGroup<T>(
  values: readonly (T | undefined)[],
  keyOf: (value: T) => string,
  majority: number,
): { value: T; key: string; count: number } | undefined {
  const groups = new Map<string, { value: T; key: string; count: number }>();
  for (const value of values) {
    if (value === undefined) continue;
    const key = keyOf(value);
    const group = groups.get(key) ?? { value, key, count: 0 };
    group.count += 1;
    groups.set(key, group);
  }
  return [...groups.values()].find((group) => group.count >= majority);
}
