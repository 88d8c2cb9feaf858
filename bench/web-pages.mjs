// Weight and time to first render of each web page, in headless Chromium on this machine, beside
// the floor measured in the same run: a one-line page served over loopback HTTP by a bare Node
// server (the browser's own cost of fetching and painting anything). Prints a Markdown table for
// docs/benchmarks.md. Run by `scripts/bench web`.
//
//   node bench/web-pages.mjs BASE_URL [ROUNDS]
import { createServer } from "node:http";
import { chromium } from "../tests/browser/node_modules/playwright-core/index.mjs";

const base = process.argv[2];
const rounds = Number(process.argv[3] || 15);
if (!base) {
  console.error("usage: node bench/web-pages.mjs BASE_URL [ROUNDS]");
  process.exit(2);
}

const floorServer = createServer((_, res) => {
  res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  res.end("<!doctype html><title>floor</title><p>Club Pulse</p>");
});
await new Promise((resolve) => floorServer.listen(0, "127.0.0.1", resolve));
const floorUrl = `http://127.0.0.1:${floorServer.address().port}/`;

const browser = await chromium.launch({
  executablePath: process.env.CLUBPULSE_CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
});

async function signedIn(email, password) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
  const page = await context.newPage();
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[type=password]", password);
  await Promise.all([page.waitForURL(`${base}/`), page.click("form.stack button[type=submit]")]);
  const state = await context.storageState();
  await context.close();
  return state;
}

const member = await signedIn("ana@clubpulse.test", "member-demo-2026");
const staff = await signedIn("staff@clubpulse.test", "staff-demo-2026");
const facilities = await (await fetch(`${base}/api/v1/facilities?sport=tennis`)).json();
const pages = [
  ["search", "/", member],
  ["search results", "/?q=tenis+noche", member],
  ["facility week", `/facilities/${facilities[0].id}`, member],
  ["my bookings", "/me/bookings", member],
  ["notifications", "/me/notifications", member],
  ["sign in", "/login", undefined],
  ["dashboard", "/admin", staff],
];

/// One cold load (a fresh context: nothing cached): bytes on the wire by kind, and the first
/// contentful paint.
async function load(url, storageState) {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, storageState });
  const page = await context.newPage();
  const responses = [];
  page.on("response", (r) => responses.push(r));
  await page.goto(url, { waitUntil: "load" });
  // The paint entry may land just after `load`: wait for it (buffered), for at most 2 s.
  const fcp = await page.evaluate(
    () => new Promise((resolve) => {
      new PerformanceObserver((list) => {
        const entry = list.getEntriesByName("first-contentful-paint")[0];
        if (entry) resolve(entry.startTime);
      }).observe({ type: "paint", buffered: true });
      setTimeout(() => resolve(NaN), 2000);
    }),
  );
  const bytes = { document: 0, script: 0, stylesheet: 0, other: 0, raw: 0 };
  for (const r of responses) {
    if (r.url().startsWith("data:")) continue;
    const sizes = await r.request().sizes();
    const kind = r.request().resourceType();
    const key = kind in bytes ? kind : "other";
    bytes[key] += sizes.responseBodySize + sizes.responseHeadersSize;
    bytes.raw += (await r.body().catch(() => Buffer.alloc(0))).length;
  }
  await context.close();
  return { fcp, bytes };
}

const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

const floor = [];
const results = new Map(pages.map(([name]) => [name, []]));
for (let i = 0; i < rounds; i += 1) {
  // Interleaved: every round measures the floor and every page once.
  floor.push((await load(floorUrl)).fcp);
  for (const [name, path, state] of pages) results.get(name).push(await load(`${base}${path}`, state));
}
await browser.close();
floorServer.close();

const floorP50 = quantile(floor, 0.5);
const kib = (n) => (n / 1024).toFixed(1);
console.log(`Floor (a one-line page from a bare Node server on loopback): first contentful paint p50 ${floorP50.toFixed(1)} ms over ${rounds} rounds.\n`);
console.log("| page | HTML KiB | script KiB | style KiB | other KiB | total on the wire KiB | uncompressed KiB | first paint p50 ms | p95 ms | p50 ÷ floor |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
for (const [name] of pages) {
  const runs = results.get(name);
  const b = runs[runs.length - 1].bytes;
  const fcps = runs.map((r) => r.fcp);
  const p50 = quantile(fcps, 0.5);
  const total = b.document + b.script + b.stylesheet + b.other;
  console.log(`| ${name} | ${kib(b.document)} | ${kib(b.script)} | ${kib(b.stylesheet)} | ${kib(b.other)} | ${kib(total)} | ${kib(b.raw)} | ${p50.toFixed(1)} | ${quantile(fcps, 0.95).toFixed(1)} | ${(p50 / floorP50).toFixed(2)} |`);
}
