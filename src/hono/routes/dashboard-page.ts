import { html, raw } from "hono/html";
import { DASHBOARD_SCRIPT } from "./dashboard/script.generated.js";

export { DASHBOARD_POLL_MS } from "./dashboard/poll.js";

const STYLE = `
:root { color-scheme: light; --ran:#1a7f37; --skipped:#6e7781; --failed:#cf222e; --lost:#bc4c00;
  --dead:#82071e; --missed:#8250df; --late:#9a6700; --running:#0969da; --released:#bc4c00; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; background: #f6f8fa; color: #1f2328; }
header { display: flex; flex-wrap: wrap; gap: .2rem 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #24292f; color: #fff; }
header h1 { font-size: 1.15rem; margin: 0; }
header #meta { font-size: .85rem; opacity: .85; }
main, #unlock { padding: 1rem 1.2rem; max-width: 1200px; }
h2 { font-size: 1rem; margin: 1.2rem 0 .5rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 540px), 1fr)); gap: .8rem; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: .7rem .9rem; min-width: 0; }
.card[data-dispatch] { grid-column: 1 / -1; }
.card h3 { margin: 0 0 .3rem; font-size: 1rem; display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; overflow-wrap: anywhere; }
.card p { margin: .2rem 0; color: #57606a; font-size: .85rem; overflow-wrap: anywhere; }
.table-wrap { overflow-x: auto; max-width: 100%; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, monospace; background: #eff1f3; padding: 0 .3rem; border-radius: 4px; }
.actions { display: flex; gap: .4rem; margin: .5rem 0; flex-wrap: wrap; }
button { font: inherit; font-size: .85rem; padding: .2rem .6rem; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; cursor: pointer; }
button:hover { background: #eaeef2; }
input { font: 12px ui-monospace, monospace; padding: .2rem .4rem; border: 1px solid #d0d7de; border-radius: 6px; width: 14rem; max-width: 100%; min-width: 0; }
table { border-collapse: collapse; width: 100%; font-size: .82rem; }
th, td { text-align: left; padding: .15rem .4rem; border-top: 1px solid #eaeef2; white-space: nowrap; }
td.note { white-space: normal; color: #57606a; min-width: 10rem; max-width: 16rem; overflow: hidden; text-overflow: ellipsis; overflow-wrap: anywhere; }
td .zone { display: block; color: #57606a; }
.badge { display: inline-block; padding: 0 .45rem; border-radius: 2em; color: #fff; font-size: .75rem; font-weight: 600; }
.ran { background: var(--ran); } .skipped { background: var(--skipped); } .failed { background: var(--failed); }
.lost { background: var(--lost); } .dead { background: var(--dead); } .missed { background: var(--missed); }
.late { background: var(--late); } .running { background: var(--running); } .released { background: var(--released); }
.paused { background: #6e7781; } .ok { background: var(--ran); } .failing { background: var(--failed); }
.idle { background: var(--skipped); } .badge.health { font-size: .8rem; }
tr.local td { background: #f6f8fa; }
#unlock label { display: block; margin-bottom: .4rem; }
#unlock input { width: 22rem; }
#activity li { overflow-wrap: anywhere; }
@media (max-width: 600px) {
  header, main, #unlock, footer { padding-left: .6rem; padding-right: .6rem; }
  .card { padding: .6rem; }
  .actions input { flex: 1 1 100%; width: auto; }
  button { padding: .35rem .7rem; }
}
.error { color: var(--failed); }
#activity { font-size: .85rem; padding-left: 1.2rem; }
footer { padding: .5rem 1.2rem 1.5rem; font-size: .8rem; color: #57606a; }
`;

/**
 * The dashboard: one self-contained page (no CDN); all data comes from /dashboard/data. Its script
 * is dashboard/script.ts, bundled into the page by scripts/build-dashboard.mjs.
 */
export function dashboardPage(nonce: string) {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>cron-guard dashboard</title>
<style nonce="${nonce}">${raw(STYLE)}</style>
</head>
<body>
<header><h1>cron-guard</h1><span id="meta">locked</span></header>
<form id="unlock" autocomplete="off">
  <label for="secret">This page shows nothing without the app's <code>CRON_SECRET</code>. It is kept in this tab only (sessionStorage) and sent as a bearer header.</label>
  <input id="secret" type="password" placeholder="CRON_SECRET" autocomplete="off">
  <button type="submit">Show</button>
  <p id="lockmsg" class="error" role="alert"></p>
</form>
<main id="main" hidden>
  <h2>Jobs</h2>
  <div id="jobs" class="cards"></div>
  <h2>Schedules</h2>
  <div id="schedules" class="cards"></div>
  <h2>Activity in this tab</h2>
  <ol id="activity"></ol>
</main>
<footer><p>Health: <span class="badge ok">ok</span> the newest fire ran, <span class="badge failing">failing</span> it failed or lost its lease, <span class="badge dead">dead</span> it failed its last attempt, <span class="badge missed">missed</span> nobody claimed it, <span class="badge paused">paused</span>, <span class="badge idle">no runs yet</span>. Times are UTC (Z), then your browser's time zone, then a schedule's own.</p>Outcomes: <span class="badge ran">ran</span> <span class="badge skipped">skipped</span> <span class="badge failed">failed</span> <span class="badge lost">lost</span> <span class="badge dead">dead</span> <span class="badge missed">missed</span> <span class="badge late">late</span> <span class="badge running">running</span>. Skipped deliveries are not stored (a duplicate costs one round trip and writes nothing): they show for this tab's own actions.</footer>
<script nonce="${nonce}">${raw(DASHBOARD_SCRIPT)}</script>
</body>
</html>`;
}
