/*
 * Every error of the platform-free core. The rule: a setup mistake (options, job declarations)
 * throws ConfigError when the guard or app is created; bad input to one call throws
 * InvalidKeyPartError, SlotError or UnkeyableArgumentError; the store's trouble is
 * StoreUnavailableError; a lost lease is LockLostError. Contention is a result, never an error.
 */

/** An option given to cron-guard is invalid. Thrown once, when the options are validated. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  /** The name of the offending option, e.g. `leaseMs`. */
  readonly option: string;

  constructor(option: string, message: string, options?: { cause?: unknown }) {
    super(`${option}: ${message}`, options);
    this.option = option;
  }
}

/**
 * Why the store failed: `unreachable` (no answer: network, timeout, 5xx), `rejected` (it answered
 * with an error: OOM, WRONGTYPE, quota, bad credentials) or `slow` (it answered a claim only after
 * the claim's lease had already run out).
 */
export type StoreFailureKind = "unreachable" | "rejected" | "slow";

/** The store (Redis over HTTP) could not be reached, refused the call, or answered too late. */
export class StoreUnavailableError extends Error {
  override readonly name = "StoreUnavailableError";
  readonly kind: StoreFailureKind;
  /**
   * Set when a claim failed this way. The claim may have reached the store even though its answer
   * did not come back; the guard withdraws it in the background (through `waitUntil` when given).
   * Resolves to true once the store confirmed that no claim of this call holds the slot, false when
   * that could not be confirmed (the slot then frees itself at `slotFreeByMs` at the latest).
   */
  readonly withdrawal?: Promise<boolean>;
  /** Local time (ms) by which the slot is free again even if the withdrawal never reaches the store. */
  readonly slotFreeByMs?: number;

  constructor(
    message: string,
    options: {
      cause?: unknown;
      kind?: StoreFailureKind;
      withdrawal?: Promise<boolean>;
      slotFreeByMs?: number;
    } = {},
  ) {
    super(message, { cause: options.cause });
    this.kind = options.kind ?? "unreachable";
    if (options.withdrawal) this.withdrawal = options.withdrawal;
    if (options.slotFreeByMs !== undefined) this.slotFreeByMs = options.slotFreeByMs;
  }
}

/**
 * The run's lease was lost while the job ran: the slot key expired or another owner holds it.
 * The job's `AbortSignal` is aborted with this error as its reason.
 */
export class LockLostError extends Error {
  override readonly name = "LockLostError";
  readonly key: string;

  constructor(key: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.key = key;
  }
}

/** The caller gave a slot that is not valid: not a timestamp, or not a fire time of the schedule. */
export class SlotError extends Error {
  override readonly name = "SlotError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A job name or slot id that cannot become part of a Redis key. The HTTP layer answers 400. */
export class InvalidKeyPartError extends Error {
  override readonly name = "InvalidKeyPartError";
  readonly part: "job" | "slot" | "prefix";

  constructor(part: "job" | "slot" | "prefix", message: string) {
    super(message);
    this.part = part;
  }
}

/** An argument `guarded()` cannot turn into a key faithfully; pass a `key()` function instead. */
export class UnkeyableArgumentError extends TypeError {
  override readonly name = "UnkeyableArgumentError";
}

const MAX_MESSAGE_CHARS = 300;

/**
 * An error's message for logs and answers: without the command @upstash/redis appends to it
 * (", command was: [...]": a script's source or arguments such as lease tokens), cut to 300
 * characters.
 */
export function messageOf(error: unknown): string {
  const full = error instanceof Error ? error.message : String(error);
  const commandAt = full.indexOf(", command was:");
  const message = commandAt >= 0 ? full.slice(0, commandAt) : full;
  return message.length > MAX_MESSAGE_CHARS
    ? `${message.slice(0, MAX_MESSAGE_CHARS - 1)}…`
    : message;
}
