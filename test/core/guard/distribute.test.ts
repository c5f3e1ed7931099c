/**
 * guard.distribute's own key space (issue 18, finding 12): the tasks of a workload are claimed
 * under `<prefix>:distribute:<workload>`, apart from every job and schedule (`<prefix>:{<name>}`)
 * and from every other workload, against a real redis-server through the bridge.
 */
import { describe, expect, it } from "vitest";
import { createGuard, InvalidKeyPartError } from "../../../src/core/index.js";
import { directRedis, upstash, useKeyPrefix } from "../../support/harness.js";

const SLOT = "2026-11-25T09:00:00Z";
const TASKS = ["alpha", "beta", "gamma"];

describe("guard.distribute: its own key space", () => {
  const prefix = useKeyPrefix("distribute-space");
  const guard = () => createGuard({ redis: upstash(), prefix: prefix() });

  async function keys(): Promise<string[]> {
    const redis = await directRedis();
    return (await redis.keys(`${prefix()}*`)).sort();
  }

  it("two workloads over the same task ids and slot both run all their tasks", async () => {
    const ran: string[] = [];
    const digest = await guard().distribute(
      SLOT,
      TASKS,
      (task) => {
        ran.push(`digest/${task}`);
      },
      { workload: "digest" },
    );
    const cleanup = await guard().distribute(
      SLOT,
      TASKS,
      (task) => {
        ran.push(`cleanup/${task}`);
      },
      { workload: "cleanup" },
    );
    expect(digest).toMatchObject({ ran: 3, skipped: 0, failed: 0, unfinished: 0, errors: 0 });
    expect(cleanup).toMatchObject({ ran: 3, skipped: 0, failed: 0, unfinished: 0, errors: 0 });
    expect(ran.sort()).toEqual([
      "cleanup/alpha",
      "cleanup/beta",
      "cleanup/gamma",
      "digest/alpha",
      "digest/beta",
      "digest/gamma",
    ]);
  });

  it("callers of one workload still share it: a second call skips what the first ran", async () => {
    const ran: string[] = [];
    const fn = (task: string) => {
      ran.push(task);
    };
    const first = await guard().distribute(SLOT, TASKS, fn, { workload: "digest" });
    const second = await guard().distribute(SLOT, TASKS, fn, { workload: "digest" });
    expect(first.ran).toBe(3);
    expect(second).toMatchObject({ ran: 0, skipped: 3 });
    expect(ran.sort()).toEqual(TASKS);
  });

  it("a job named like a task id is not affected, in either order", async () => {
    const g = guard();
    // The job ran first: distribute still runs its task of the same name.
    const job = await g.run("alpha", SLOT, () => "job");
    expect(job.status).toBe("ran");
    const ran: string[] = [];
    const result = await g.distribute(
      SLOT,
      TASKS,
      (task) => {
        ran.push(task);
      },
      { workload: "digest" },
    );
    expect(result.ran).toBe(3);
    expect(ran.sort()).toEqual(TASKS);
    // The tasks ran first: the job of the same name and slot still runs.
    const beta = await g.run("beta", SLOT, () => "job");
    expect(beta.status).toBe("ran");
  });

  it("without a workload, calls share the workload `default`, apart from jobs", async () => {
    const g = guard();
    const ran: string[] = [];
    const fn = (task: string) => {
      ran.push(task);
    };
    expect((await g.distribute(SLOT, TASKS, fn)).ran).toBe(3);
    expect((await g.distribute(SLOT, TASKS, fn)).skipped).toBe(3);
    expect((await g.distribute(SLOT, TASKS, fn, { workload: "default" })).skipped).toBe(3);
    expect((await g.run("gamma", SLOT, () => "job")).status).toBe("ran");
    expect(ran.sort()).toEqual(TASKS);
  });

  it("keeps every key of a task under <prefix>:distribute:<workload>:{<task>}", async () => {
    await guard().distribute(SLOT, ["alpha"], () => "ok", { workload: "digest" });
    const written = await keys();
    expect(written.length).toBeGreaterThan(0);
    for (const key of written) {
      expect(key.startsWith(`${prefix()}:distribute:digest:{alpha}:`)).toBe(true);
    }
  });

  it("the task's context names the task as its job", async () => {
    const seen: string[] = [];
    await guard().distribute(
      SLOT,
      [{ id: "alpha" }],
      (task, context) => {
        seen.push(`${task.id}=${context.job}@${context.slot}`);
      },
      { workload: "digest" },
    );
    expect(seen).toEqual([`alpha=alpha@${SLOT}`]);
  });

  it.each([
    ["", "empty"],
    ["has space", "a space"],
    ["a:b", "a colon (it would reach into the key structure)"],
    ["{tag}", "braces (a Redis hash tag)"],
    ["x".repeat(129), "129 characters"],
  ])("refuses the workload %j (%s) before writing anything", async (workload) => {
    let caught: unknown;
    let called = false;
    try {
      await guard().distribute(
        SLOT,
        TASKS,
        () => {
          called = true;
        },
        { workload },
      );
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(InvalidKeyPartError);
    expect((caught as Error).message).toContain("workload");
    expect(called).toBe(false);
    expect(await keys()).toEqual([]);
  });

  it("refuses a workload whose key prefix would be longer than a prefix may be (64), saying how long it may be", async () => {
    const g = createGuard({ redis: upstash(), prefix: `${prefix()}-${"p".repeat(5)}` });
    const room = 64 - `${g.options.prefix}:distribute:`.length;
    expect(room).toBeGreaterThan(0);
    const ran: string[] = [];
    await g.distribute(SLOT, ["alpha"], (task) => void ran.push(task), {
      workload: "w".repeat(room),
    });
    expect(ran).toEqual(["alpha"]);
    const error = await g
      .distribute(SLOT, ["alpha"], () => undefined, { workload: "w".repeat(room + 1) })
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidKeyPartError);
    expect((error as Error).message).toContain(`at most ${room}`);
    const redis = await directRedis();
    for (const key of await redis.keys(`${g.options.prefix}*`)) await redis.del(key);
  });
});
