/**
 * RESP2, the Redis wire protocol, for the bridge's own connection: commands out as one string
 * per batch, replies in through a parser that keeps its place across TCP chunks.
 * Bulk strings arrive as Buffers (exact bytes, base64-able), simple strings as JS strings,
 * integers as numbers, nil as null, error replies as {@link ReplyError}.
 */

/** An error reply from Redis (`-ERR ...`); at the top level the command failed, inside an array it is an element. */
export class ReplyError extends Error {
  override readonly name = "ReplyError";
}

/** Redis sent bytes that are not RESP2; the connection cannot be trusted after that. */
export class ProtocolError extends Error {
  override readonly name = "ProtocolError";
}

/** A reply: string, Buffer, number, null, ReplyError or an array of replies. */
export type Reply = string | Buffer | number | null | ReplyError | Reply[];

/** `command` as a RESP2 array of bulk strings, e.g. `*1\r\n$4\r\nPING\r\n`. */
export function encodeCommand(command: readonly string[]): string {
  let text = `*${command.length}\r\n`;
  for (const argument of command) {
    text += `$${Buffer.byteLength(argument, "utf8")}\r\n${argument}\r\n`;
  }
  return text;
}

const PLUS = 43; // +
const MINUS = 45; // -
const COLON = 58; // :
const DOLLAR = 36; // $
const STAR = 42; // *
const CR = 13;

interface OpenArray {
  items: Reply[];
  length: number;
}

/**
 * Turns the bytes Redis sends into replies, calling `onReply` once per top-level reply in order.
 * Arrays in progress are kept on a stack and bytes are kept only from the first element not yet
 * complete, so a reply split over many chunks is read once, not again with every chunk; a bulk
 * string waits until all of its bytes are there before the chunks are joined.
 */
export class RespParser {
  readonly #stack: OpenArray[] = [];
  /** Bytes received but not yet parsed, oldest first. */
  #chunks: Buffer[] = [];
  #buffered = 0;
  /** Bytes needed before parsing can go on (a bulk string's end); 0 when unknown. */
  #needed = 0;

  constructor(private readonly onReply: (reply: Reply) => void) {}

  /** Parses what `chunk` completes; throws ProtocolError on bytes that are not RESP2. */
  feed(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.byteLength;
    if (this.#buffered < this.#needed) return;
    const buffer = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#buffered);
    const consumed = this.#parse(buffer);
    if (consumed === buffer.byteLength) {
      this.#chunks = [];
      this.#buffered = 0;
    } else {
      const rest = buffer.subarray(consumed);
      this.#chunks = [rest];
      this.#buffered = rest.byteLength;
    }
  }

  /** Parses complete elements from the start of `buffer`; returns how many bytes they took. */
  #parse(buffer: Buffer): number {
    const stack = this.#stack;
    const end = buffer.byteLength;
    let position = 0;
    this.#needed = 0;
    while (position < end) {
      const type = buffer[position];
      const lineEnd = buffer.indexOf(CR, position + 1);
      if (lineEnd < 0 || lineEnd + 1 >= end) break; // the line is not complete yet
      let next = lineEnd + 2;
      let value: Reply;
      if (type === PLUS) {
        value = buffer.toString("utf8", position + 1, lineEnd);
      } else if (type === COLON) {
        value = Number(buffer.toString("latin1", position + 1, lineEnd));
      } else if (type === DOLLAR) {
        const length = lengthOf(buffer, position, lineEnd);
        if (length < 0) {
          value = null;
        } else {
          if (next + length + 2 > end) {
            this.#needed = next + length + 2 - position;
            break;
          }
          value = buffer.subarray(next, next + length);
          next += length + 2;
        }
      } else if (type === STAR) {
        const length = lengthOf(buffer, position, lineEnd);
        if (length > 0) {
          stack.push({ items: [], length });
          position = next;
          continue;
        }
        value = length < 0 ? null : [];
      } else if (type === MINUS) {
        value = new ReplyError(buffer.toString("utf8", position + 1, lineEnd));
      } else {
        throw new ProtocolError(
          `unexpected byte ${type} at the start of a reply: ${JSON.stringify(buffer.toString("latin1", position, Math.min(end, position + 40)))}`,
        );
      }
      position = next;
      // hand the value to the array it belongs to, closing every array it completes
      for (;;) {
        const open = stack.at(-1);
        if (open === undefined) {
          this.onReply(value);
          break;
        }
        open.items.push(value);
        if (open.items.length < open.length) break;
        stack.pop();
        value = open.items;
      }
    }
    return position;
  }
}

/** The length on a `$` or `*` line; -1 for nil. */
function lengthOf(buffer: Buffer, start: number, lineEnd: number): number {
  const text = buffer.toString("latin1", start + 1, lineEnd);
  const length = Number(text);
  if (!Number.isInteger(length) || length < -1 || text === "") {
    throw new ProtocolError(`invalid length ${JSON.stringify(text)} in a reply`);
  }
  return length;
}
