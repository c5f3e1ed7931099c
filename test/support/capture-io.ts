import type { CliIo } from "../../src/cli.js";

/** A CliIo that keeps every line, for asserting on what a command printed. */
export function captureIo(): CliIo & { outLines: string[]; errLines: string[] } {
  const outLines: string[] = [];
  const errLines: string[] = [];
  return {
    outLines,
    errLines,
    out: (line) => outLines.push(line),
    err: (line) => errLines.push(line),
  };
}
