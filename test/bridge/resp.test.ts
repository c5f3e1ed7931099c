import { describe, expect, it } from "vitest";
import {
  encodeCommand,
  ProtocolError,
  type Reply,
  ReplyError,
  RespParser,
} from "../../src/bridge/resp.js";

function parseAll(chunks: Buffer[]): Reply[] {
  const replies: Reply[] = [];
  const parser = new RespParser((reply) => replies.push(reply));
  for (const chunk of chunks) parser.feed(chunk);
  return replies;
}

/** Replies as plain data (Buffers as text, errors as `{ error }`), for comparing. */
function plain(reply: Reply): unknown {
  if (Buffer.isBuffer(reply)) return reply.toString("utf8");
  if (reply instanceof ReplyError) return { error: reply.message };
  if (Array.isArray(reply)) return reply.map(plain);
  return reply;
}

const STREAM = [
  "+OK\r\n",
  ":42\r\n",
  ":-7\r\n",
  "$5\r\nhello\r\n",
  "$0\r\n\r\n",
  "$-1\r\n",
  "*-1\r\n",
  "*0\r\n",
  "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
  "*3\r\n$1\r\na\r\n*2\r\n:1\r\n-ERR inside\r\n$-1\r\n",
  "$7\r\nline\r\n2\r\n",
  `$${Buffer.byteLength("héllo ✓")}\r\nhéllo ✓\r\n`,
  "*2\r\n*1\r\n*1\r\n:5\r\n+deep\r\n",
].join("");

const EXPECTED = [
  "OK",
  42,
  -7,
  "hello",
  "",
  null,
  null,
  [],
  { error: "WRONGTYPE Operation against a key holding the wrong kind of value" },
  ["a", [1, { error: "ERR inside" }], null],
  "line\r\n2",
  "héllo ✓",
  [[[5]], "deep"],
];

describe("encodeCommand", () => {
  it("writes a RESP array of bulk strings with byte lengths, not character counts", () => {
    expect(encodeCommand(["SET", "k", "héllo", ""])).toBe(
      "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$6\r\nhéllo\r\n$0\r\n\r\n",
    );
  });
});

describe("RespParser", () => {
  it("reads every RESP2 type: simple strings as text, bulk strings as bytes, errors as ReplyError", () => {
    const replies = parseAll([Buffer.from(STREAM)]);
    expect(replies.map(plain)).toEqual(EXPECTED);
    expect(Buffer.isBuffer(replies[3])).toBe(true);
    expect(typeof replies[0]).toBe("string");
    expect(replies[8]).toBeInstanceOf(ReplyError);
  });

  it("gives the same replies wherever TCP splits the stream, down to one byte at a time", () => {
    const bytes = Buffer.from(STREAM);
    for (let split = 1; split < bytes.length; split += 1) {
      const replies = parseAll([bytes.subarray(0, split), bytes.subarray(split)]);
      expect(replies.map(plain), `split at byte ${split}`).toEqual(EXPECTED);
    }
    const oneByOne = Array.from(bytes, (byte) => Buffer.from([byte]));
    expect(parseAll(oneByOne).map(plain)).toEqual(EXPECTED);
  });

  it("reads a multi-byte character split between chunks intact", () => {
    const bytes = Buffer.from(`$${Buffer.byteLength("✓✓")}\r\n✓✓\r\n`);
    const middleOfCheck = bytes.indexOf(Buffer.from("✓")) + 1;
    const [reply] = parseAll([bytes.subarray(0, middleOfCheck), bytes.subarray(middleOfCheck)]);
    expect(plain(reply as Reply)).toBe("✓✓");
  });

  it("reads a 4 MiB bulk string arriving in 64 KiB chunks", () => {
    const value = Buffer.alloc(4 * 1024 * 1024, "x");
    const bytes = Buffer.concat([Buffer.from(`$${value.length}\r\n`), value, Buffer.from("\r\n")]);
    const chunks: Buffer[] = [];
    for (let start = 0; start < bytes.length; start += 65_536) {
      chunks.push(bytes.subarray(start, start + 65_536));
    }
    const [reply] = parseAll(chunks);
    expect(Buffer.isBuffer(reply) && reply.equals(value)).toBe(true);
  });

  it("keeps its place in a 100,000-element array arriving in small chunks", () => {
    const count = 100_000;
    let text = `*${count}\r\n`;
    for (let i = 0; i < count; i += 1) text += `:${i}\r\n`;
    const bytes = Buffer.from(text);
    const chunks: Buffer[] = [];
    for (let start = 0; start < bytes.length; start += 1000) {
      chunks.push(bytes.subarray(start, start + 1000));
    }
    const [reply] = parseAll(chunks);
    expect(Array.isArray(reply) && reply.length).toBe(count);
    expect((reply as number[])[count - 1]).toBe(count - 1);
  });

  it("refuses bytes that are not RESP2", () => {
    expect(() => parseAll([Buffer.from("HTTP/1.1 400 Bad Request\r\n")])).toThrow(ProtocolError);
    expect(() => parseAll([Buffer.from("$abc\r\n")])).toThrow(/invalid length "abc"/);
    expect(() => parseAll([Buffer.from("*-5\r\n")])).toThrow(ProtocolError);
  });
});
