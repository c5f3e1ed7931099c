/** Tally of one simulated multi-region delivery storm against a running app. */
export interface StormSummary {
  job: string;
  slot: string;
  deliveries: number;
  ran: number;
  skipped: number;
  /** Status codes other than 200 and 204, with counts: they mean something is wrong. */
  other: Record<string, number>;
  reasons: Record<string, number>;
}

export interface StormOptions {
  baseUrl: string;
  secret: string;
  job: string;
  cron: string;
  deliveries: number;
}

/**
 * Fires `deliveries` concurrent calls for the current slot of one job, the way a multi-region
 * platform does: half as Vercel Cron (GET with x-vercel-cron-schedule), half as manual POSTs.
 */
export async function fireStorm(options: StormOptions): Promise<StormSummary> {
  const url = `${options.baseUrl}/cron/${options.job}`;
  const authorization = `Bearer ${options.secret}`;
  const responses = await Promise.all(
    Array.from({ length: options.deliveries }, (_, i) =>
      i % 2 === 0
        ? fetch(url, {
            headers: {
              authorization,
              "user-agent": "vercel-cron/1.0",
              "x-vercel-cron-schedule": options.cron,
            },
          })
        : fetch(url, { method: "POST", headers: { authorization } }),
    ),
  );
  const summary: StormSummary = {
    job: options.job,
    slot: "",
    deliveries: options.deliveries,
    ran: 0,
    skipped: 0,
    other: {},
    reasons: {},
  };
  for (const response of responses) {
    summary.slot ||= response.headers.get("cron-guard-slot") ?? "";
    await response.arrayBuffer();
    if (response.status === 200) summary.ran += 1;
    else if (response.status === 204) {
      summary.skipped += 1;
      const reason = response.headers.get("cron-guard-reason") ?? "unknown";
      summary.reasons[reason] = (summary.reasons[reason] ?? 0) + 1;
    } else summary.other[response.status] = (summary.other[response.status] ?? 0) + 1;
  }
  return summary;
}

export function formatStorm(summary: StormSummary): string {
  const slot = summary.slot.replace(/:00Z$/, "Z");
  const reasons = Object.entries(summary.reasons)
    .map(([reason, count]) => `${count} ${reason}`)
    .join(", ");
  const other = Object.entries(summary.other)
    .map(([status, count]) => `${count}× HTTP ${status}`)
    .join(", ");
  return `${summary.job} ${slot}: ${summary.ran} ran, ${summary.skipped} skipped (204${reasons ? `: ${reasons}` : ""})${other ? `, ${other}` : ""}`;
}
