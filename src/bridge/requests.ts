import type { IncomingMessage } from "node:http";
import { HttpError } from "./errors.js";

/**
 * Reading a request: its body (bounded, and drained before a 413 so the client reads the answer),
 * the JSON in it, the command in a path-style URL, and whether it asks for base64 replies.
 */

/** Whether the client asked for base64 replies (`Upstash-Encoding: base64`). */
export function wantsBase64(request: IncomingMessage): boolean {
  const value = request.headers["upstash-encoding"];
  return typeof value === "string" && value.toLowerCase() === "base64";
}

function tooLarge(maxBodyBytes: number): HttpError {
  return new HttpError(413, `request body exceeds the limit of ${maxBodyBytes} bytes`);
}

/**
 * How much of a refused (413) body the bridge still reads and discards before it answers, in
 * bytes, and for how long, in ms. A client such as Node's `fetch` (so `@upstash/redis`) that
 * is still sending when the server answers and closes gets EPIPE instead of the answer; read to
 * the end, it reads the 413. Past either bound the bridge answers and closes at once.
 */
const MAX_DRAIN_BYTES = 128 * 1024 * 1024;
const MAX_DRAIN_MS = 10_000;

/**
 * Reads and discards the rest of `request` (at most {@link MAX_DRAIN_BYTES} more, for at most
 * {@link MAX_DRAIN_MS}), then calls `done` once.
 */
function drain(request: IncomingMessage, alreadyRead: number, done: () => void): void {
  let drained = alreadyRead;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    request.off("data", onData);
    request.off("end", finish);
    request.off("close", finish);
    done();
  };
  const onData = (chunk: Buffer) => {
    drained += chunk.byteLength;
    if (drained > MAX_DRAIN_BYTES) finish();
  };
  const timer = setTimeout(finish, MAX_DRAIN_MS);
  request.on("data", onData);
  request.on("end", finish);
  request.on("close", finish);
  request.resume();
}

/**
 * Calls `use` with the request body as text, whatever its content type (Upstash's own `curl -d`
 * examples send `application/x-www-form-urlencoded`), or `onError` with a 413 for a declared or
 * actual size over the limit, once the rest of the body is read (see {@link drain}). An error
 * thrown by `use` goes to `onError` too.
 */
export function readBody(
  request: IncomingMessage,
  maxBodyBytes: number,
  onError: (error: unknown) => void,
  use: (text: string) => void,
): void {
  const declared = request.headers["content-length"];
  if (declared !== undefined && Number(declared) > maxBodyBytes) {
    const refuse = () => onError(tooLarge(maxBodyBytes));
    if (Number(declared) > MAX_DRAIN_BYTES) refuse();
    else drain(request, 0, refuse);
    return;
  }
  let first: Buffer | undefined;
  let chunks: Buffer[] | undefined;
  let total = 0;
  const onData = (chunk: Buffer) => {
    total += chunk.byteLength;
    if (total > maxBodyBytes) {
      request.off("data", onData);
      request.off("end", onEnd);
      first = undefined;
      chunks = undefined;
      drain(request, total, () => onError(tooLarge(maxBodyBytes)));
      return;
    }
    if (first === undefined) {
      first = chunk;
    } else {
      chunks ??= [first];
      chunks.push(chunk);
    }
  };
  const onEnd = () => {
    let text = "";
    if (chunks) text = Buffer.concat(chunks, total).toString("utf8");
    else if (first) text = first.toString("utf8");
    try {
      use(text);
    } catch (error) {
      onError(error);
    }
  };
  // No "error" listener: node:http emits a request's error only to listeners, and a request
  // that fails (the client went away) has nobody left to answer.
  request.on("data", onData);
  request.on("end", onEnd);
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new HttpError(400, `malformed JSON body: ${(error as Error).message}`, { cause: error });
  }
}

/** `/set/k/v` -> ["set","k","v"]; a POST body, if any, is then the last argument (Upstash style). */
export function pathSegments(path: string): string[] {
  const segments = path.split("/").slice(1);
  if (segments.at(-1) === "") segments.pop();
  try {
    return segments.map((segment) => decodeURIComponent(segment));
  } catch (error) {
    throw new HttpError(400, "malformed percent-encoding in the URL path", { cause: error });
  }
}
