import { ErrorReply } from "redis";
import { describe, expect, it } from "vitest";
import {
  assertSupported,
  assertWithinLimits,
  BadRequestError,
  encodeReply,
  parseCommand,
  parseCommandList,
} from "../../src/bridge/protocol.js";

/** @upstash/redis's response decoder (chunk-*.mjs `decode`), reproduced to check round trips. */
function upstashDecode(raw: unknown): unknown {
  const b64 = (text: string) => {
    try {
      return new TextDecoder().decode(Uint8Array.from(atob(text), (c) => c.charCodeAt(0)));
    } catch {
      return text;
    }
  };
  if (typeof raw === "number" || raw === undefined) return raw;
  if (typeof raw === "string") return raw === "OK" ? "OK" : b64(raw);
  if (Array.isArray(raw)) {
    return raw.map((v: unknown) =>
      typeof v === "string" ? b64(v) : Array.isArray(v) ? v.map(upstashDecode) : v,
    );
  }
  return null;
}

describe("parseCommand", () => {
  it("turns numbers and booleans into strings", () => {
    expect(parseCommand(["SET", "k", 1.5, true, false, -0, ""])).toEqual([
      "SET",
      "k",
      "1.5",
      "true",
      "false",
      "0",
      "",
    ]);
  });

  it.each([
    [null, /must be a JSON array/],
    ["GET", /must be a JSON array/],
    [[], /is empty/],
    [[""], /command name/],
    [[42, "k"], /command name/],
    [["SET", "k", null], /argument 2 must be a string, number or boolean, got null/],
    [["SET", { k: 1 }], /argument 1 .* got an object/],
    [["SET", "k", ["v"]], /argument 2 .* got an array/],
  ])("refuses %j", (value, message) => {
    expect(() => parseCommand(value)).toThrow(BadRequestError);
    expect(() => parseCommand(value)).toThrow(message);
  });

  it("names the pipeline entry that is wrong", () => {
    expect(() =>
      parseCommandList([
        ["GET", "a"],
        ["GET", null],
      ]),
    ).toThrow("command 1: argument 1 must be a string, number or boolean, got null");
    expect(() => parseCommandList([])).toThrow(/at least one command/);
    expect(() => parseCommandList({})).toThrow(/JSON array of commands/);
  });
});

describe("assertSupported", () => {
  it.each([
    [["blpop", "k", "0"], "BLPOP"],
    [["BZMPOP", "0", "1", "k", "MIN"], "BZMPOP"],
    [["xreadgroup", "GROUP", "g", "c", "Block", "0", "STREAMS", "s", ">"], "XREADGROUP BLOCK"],
    [["Subscribe", "ch"], "SUBSCRIBE"],
    [["select", "1"], "SELECT"],
    [["HELLO", "3"], "HELLO"],
    [["client", "setname", "x"], "CLIENT"],
    [["MULTI"], "MULTI"],
    [["debug", "sleep", "1"], "DEBUG"],
    [["config", "set", "maxmemory", "1"], "CONFIG"],
    [["CONFIG", "GET", "maxmemory"], "CONFIG"],
    [["migrate", "10.0.0.1", "6379", "k", "0", "5000"], "MIGRATE"],
    [["SWAPDB", "0", "1"], "SWAPDB"],
    [["move", "k", "1"], "MOVE"],
    [["COPY", "a", "b", "db", "1"], "COPY ... DB"],
    [["script", "kill"], "SCRIPT KILL"],
    [["SCRIPT", "DEBUG", "YES"], "SCRIPT DEBUG"],
    [["FUNCTION", "KILL"], "FUNCTION KILL"],
    [["ACL", "SETUSER", "default", "off"], "ACL"],
    [["MODULE", "LOAD", "/tmp/x.so"], "MODULE"],
    [["BGSAVE"], "BGSAVE"],
  ])("refuses %j as %s", (command, what) => {
    expect(() => assertSupported(command)).toThrow(
      `ERR command not supported by this bridge: ${what} (`,
    );
  });

  it.each([
    ["GET", "block"],
    ["XREAD", "COUNT", "1", "STREAMS", "s", "0"],
    ["EVAL", "return 1", "0"],
    ["PUBLISH", "ch", "m"],
    ["SCRIPT", "FLUSH"],
    ["script", "load", "return 1"],
    ["FUNCTION", "LIST"],
    ["FCALL", "f", "0"],
    ["FLUSHDB"],
    ["FLUSHALL"],
    ["FUNCTION", "LOAD", "#!lua name=x"],
    ["FUNCTION", "FLUSH"],
    ["COPY", "a", "b", "REPLACE"],
    ["COPY", "db", "DB"],
    ["OBJECT", "FREQ", "k"],
  ])("allows %s", (...command) => {
    expect(() => assertSupported(command)).not.toThrow();
  });
});

describe("assertWithinLimits", () => {
  const max = 1024;
  it.each([
    ["SETRANGE", "k", "1024", "x"],
    ["setrange", "k", "1000", "x".repeat(25)],
    ["SETBIT", "k", String(1024 * 8), "1"],
    ["BITFIELD", "k", "GET", "u8", "0", "SET", "u8", "#1024", "1"],
    ["bitfield", "k", "INCRBY", "i16", "8185", "1"],
  ])("refuses %s ... before it runs", (...command) => {
    expect(() => assertWithinLimits(command, max)).toThrow(
      /^ERR max single record size exceeded: \w+ would make a value of \d+ bytes, more than this bridge's limit of 1024$/,
    );
  });

  it.each([
    ["SETRANGE", "k", "1023", "x"],
    ["SETBIT", "k", String(1024 * 8 - 1), "1"],
    ["BITFIELD", "k", "SET", "u8", "#1023", "1", "GET", "u8", "#999999"],
    ["SETRANGE", "k", "-1", "x"],
    ["APPEND", "k", "x"],
  ])("allows %s ...", (...command) => {
    expect(() => assertWithinLimits(command, max)).not.toThrow();
  });

  it("is applied by parseCommand with a 10 MiB default", () => {
    expect(() => parseCommand(["SETRANGE", "k", "134217727", "x"])).toThrow(/limit of 10485760$/);
    expect(() =>
      parseCommand(["SETRANGE", "k", "2000", "x"], "command", { maxValueBytes: 1000 }),
    ).toThrow(/limit of 1000$/);
  });
});

describe("encodeReply", () => {
  const reply = [
    Buffer.from("héllo 🚀"),
    1,
    null,
    [Buffer.from("nested"), 2, [Buffer.from("deeper")]],
    "OK",
    new ErrorReply("ERR inside"),
  ];

  it("returns plain JSON without base64", () => {
    expect(encodeReply(reply, { base64: false })).toEqual([
      "héllo 🚀",
      1,
      null,
      ["nested", 2, ["deeper"]],
      "OK",
      "ERR inside",
    ]);
    expect(encodeReply("OK", { base64: false })).toBe("OK");
  });

  it("base64-encodes every string at every depth except a top-level OK", () => {
    const b = (text: string) => Buffer.from(text).toString("base64");
    expect(encodeReply(reply, { base64: true })).toEqual([
      b("héllo 🚀"),
      1,
      null,
      [b("nested"), 2, [b("deeper")]],
      b("OK"),
      b("ERR inside"),
    ]);
    expect(encodeReply("OK", { base64: true })).toBe("OK");
    expect(encodeReply("QUEUED", { base64: true })).toBe(b("QUEUED"));
    expect(encodeReply(Buffer.from("OK"), { base64: true })).toBe(b("OK"));
    expect(encodeReply(7, { base64: true })).toBe(7);
    expect(encodeReply(null, { base64: true })).toBeNull();
  });

  it("encodes raw bytes exactly", () => {
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80]);
    expect(Buffer.from(encodeReply(bytes, { base64: true }) as string, "base64")).toEqual(bytes);
  });

  it("round-trips through @upstash/redis's decoder", () => {
    for (const value of ["", "OK", "string", "日本語", "a=b", "1234"]) {
      expect(upstashDecode(encodeReply(Buffer.from(value), { base64: true }))).toBe(value);
      expect(upstashDecode(encodeReply(value, { base64: true }))).toBe(value);
    }
    expect(
      upstashDecode(encodeReply([Buffer.from("x"), [Buffer.from("ü"), 3]], { base64: true })),
    ).toEqual(["x", ["ü", 3]]);
  });
});
