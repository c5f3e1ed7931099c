/**
 * `upstash-sync-token` values: strictly increasing within a process and, across restarts, above
 * what an earlier bridge handed out, because they start from the clock: the second since 2020
 * the bridge started in, followed by a 7-digit count (16 digits until 2051, well inside the
 * integers a double holds exactly). After 9 million tokens the prefix moves on by a second; at
 * the bridge's speed that takes minutes, so the prefix never runs ahead of the clock and a
 * restarted bridge starts above. (A bridge restarted within the same second starts its count
 * again; only clients that do not send their token back can see that, and they do not compare.)
 *
 * @upstash/redis keeps the last token it saw and sends it back; the answer is never below it,
 * so a client's tokens never go backwards even across bridges. With one primary behind the
 * bridge every answer already reflects every acknowledged write, so there is nothing to wait
 * for. Tokens are built by joining two short strings: turning a 16-digit number into a string on
 * every response cost about 2% of the bridge's requests/s.
 */
export class SyncTokens {
  #second: number;
  #prefix: string;
  #count = COUNT_START;

  constructor(private readonly nowMs: () => number = Date.now) {
    this.#second = secondsSince2020(nowMs());
    this.#prefix = String(this.#second);
  }

  next(received: string | string[] | undefined): string {
    this.#count += 1;
    if (this.#count > COUNT_END) {
      // 9 million tokens under one prefix: move on, to the clock's second if it is further
      this.#second = Math.max(this.#second + 1, secondsSince2020(this.nowMs()));
      this.#prefix = String(this.#second);
      this.#count = COUNT_START + 1;
    }
    const ours = this.#prefix + this.#count;
    return typeof received === "string" && isAhead(received, ours) ? received : ours;
  }
}

function secondsSince2020(nowMs: number): number {
  return Math.floor((nowMs - EPOCH_2020_MS) / 1000);
}

const EPOCH_2020_MS = Date.UTC(2020, 0, 1);
/** The count runs through 7-digit numbers, so every token of one prefix has the same length. */
const COUNT_START = 1_000_000;
const COUNT_END = 9_999_999;

/** Whether `theirs` is a token (1-16 digits, no leading zero) greater than `ours`. */
function isAhead(theirs: string, ours: string): boolean {
  if (theirs.length !== ours.length) {
    return theirs.length > ours.length && theirs.length <= 16 && /^[1-9]\d*$/.test(theirs);
  }
  return theirs > ours && /^\d+$/.test(theirs);
}
