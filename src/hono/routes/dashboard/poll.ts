/** How often the dashboard page asks for fresh data, in ms. */
export const DASHBOARD_POLL_MS = 5_000;
