import { InvalidKeyPartError } from "../errors.js";

const JOB_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;
const SLOT_ID = /^[A-Za-z0-9._:+-]{1,256}$/;

export function isValidJobName(job: string): boolean {
  return JOB_NAME.test(job);
}

export function assertJobName(job: unknown): asserts job is string {
  if (typeof job !== "string" || !JOB_NAME.test(job)) {
    throw new InvalidKeyPartError(
      "job",
      `invalid job name ${JSON.stringify(job)}: use 1-128 characters of A-Z a-z 0-9 . _ -`,
    );
  }
}

export function assertPrefix(prefix: unknown): asserts prefix is string {
  if (typeof prefix !== "string" || !PREFIX.test(prefix)) {
    throw new InvalidKeyPartError(
      "prefix",
      `invalid prefix ${JSON.stringify(prefix)}: use 1-64 characters of A-Z a-z 0-9 . _ : -`,
    );
  }
}

export function assertSlotId(slotId: unknown): asserts slotId is string {
  if (typeof slotId !== "string" || !SLOT_ID.test(slotId)) {
    throw new InvalidKeyPartError(
      "slot",
      `invalid slot id ${JSON.stringify(slotId)}: use 1-256 characters of A-Z a-z 0-9 . _ : + -`,
    );
  }
}

/**
 * The keys of one job. The job name is a Redis hash tag (`{job}`), so every key a script touches
 * lives in one cluster slot.
 */
export interface JobKeys {
  slot(slotId: string): string;
  /** Prefix of every slot key, `slot(id) === slotPrefix + id`. */
  readonly slotPrefix: string;
  readonly fence: string;
  readonly runs: string;
  readonly running: string;
  readonly slotIndex: string;
  /** Hash of the job's finished slots (the slot ledger), kept far longer than the slot keys. */
  readonly ledger: string;
  /** Hash of which trigger sources delivered each recent slot, and when (see sources.ts). */
  readonly sources: string;
  /** Marker left when the claim with this token was withdrawn: a late copy of it must not claim. */
  withdrawn(token: string): string;
}

export function jobKeys(prefix: string, job: string): JobKeys {
  assertJobName(job);
  const base = `${prefix}:{${job}}`;
  const slotPrefix = `${base}:slot:`;
  return {
    slot: (slotId) => slotPrefix + slotId,
    slotPrefix,
    fence: `${base}:fence`,
    runs: `${base}:runs`,
    running: `${base}:running`,
    slotIndex: `${base}:slots`,
    ledger: `${base}:ledger`,
    sources: `${base}:sources`,
    withdrawn: (token) => `${base}:withdrawn:${token}`,
  };
}
