// Shared by the browser tests: one Chromium, contexts that watch for console errors and for
// requests leaving the site, sign-in and registration through the pages, and the per-page checks
// (no horizontal scroll at phone width, no serious accessibility violation, a screenshot).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const base = process.env.CLUBPULSE_BASE_URL;
assert.ok(base, "CLUBPULSE_BASE_URL must name the server under test (scripts/browser sets it)");
const artifacts = process.env.CLUBPULSE_BROWSER_ARTIFACTS || "var/browser-artifacts";
const wsBase = base.replace(/^http/, "ws");

export const PHONE = { width: 390, height: 844 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CLUBPULSE_CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu"],
  });
}

/// A browser context (one person's browser) that records what must never happen.
export async function person(browser, { viewport = PHONE, locale = "en-GB" } = {}) {
  const context = await browser.newContext({ viewport, locale });
  const problems = [];
  context.on("request", (request) => {
    const url = request.url();
    if (!url.startsWith(base) && !url.startsWith("data:") && !url.startsWith(wsBase)) {
      problems.push(`a request left the site: ${url}`);
    }
  });
  const page = await context.newPage();
  // A page answered 401 or 404 on purpose (a wrong password, an unknown page) makes the browser
  // log "Failed to load resource" for the document itself; the tests check those statuses. Any
  // other error, and any failed sub-resource, is a problem.
  page.on("console", (message) => {
    if (message.type() !== "error") return;
    const documentStatus = message.text().startsWith("Failed to load resource") &&
      message.location().url === page.url();
    if (!documentStatus) problems.push(`console error on ${page.url()}: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400 && response.request().resourceType() !== "document") {
      problems.push(`${response.request().method()} ${response.url()} answered ${response.status()}`);
    }
  });
  page.on("pageerror", (error) => problems.push(`script error on ${page.url()}: ${error.message}`));
  page.on("websocket", (socket) => {
    if (!socket.url().startsWith(wsBase)) problems.push(`a WebSocket left the site: ${socket.url()}`);
  });
  return {
    context,
    page,
    problems,
    /// Fails with everything recorded so far.
    assertClean() {
      assert.deepEqual(problems, [], problems.join("\n"));
    },
  };
}

/// The checks every page gets: a screenshot, no horizontal scroll at its width, and no serious or
/// critical accessibility violation (axe-core).
export async function checkPage(page, name) {
  await page.screenshot({ path: join(artifacts, `${name}.png`), fullPage: true });
  const overflow = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    client: document.documentElement.clientWidth,
  }));
  assert.ok(overflow.scroll <= overflow.client, `${name} scrolls sideways: ${overflow.scroll} > ${overflow.client} px`);
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  });
  const serious = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(serious, [], `${name}: accessibility violations\n${JSON.stringify(serious, null, 2)}`);
}

let registered = 0;

/// Registers a new member through the sign-up page and leaves them signed in.
export async function registerMember(page, name) {
  registered += 1;
  const email = `browser-${Date.now()}-${registered}@example.com`;
  await page.goto(`${base}/register`);
  await page.fill("input[name=name]", name);
  await page.fill("input[name=email]", email);
  await page.fill("input[type=password]", "browser-pass-2026");
  await Promise.all([page.waitForURL(`${base}/`), page.click("form.stack button[type=submit]")]);
  return email;
}

/// Signs in through the sign-in page (the hooks: input[name=email], input[type=password], submit).
export async function signIn(page, email, password, next = "/") {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.fill("input[name=email]", email);
  await page.fill("input[type=password]", password);
  await Promise.all([page.waitForURL(`${base}${next}`), page.click("form.stack button[type=submit]")]);
}

/// Waits until the page's live socket is subscribed.
export async function waitLive(page) {
  await page.waitForFunction(() => document.body.dataset.liveReady === "true", null, { timeout: 15000 });
}

/// Opens a facility's next week (every slot in the future), and waits for its socket.
export async function openNextWeek(page, facilityId) {
  await page.goto(`${base}/facilities/${facilityId}`);
  await Promise.all([page.waitForURL(/week=/), page.click("a[rel=next]")]);
  await page.waitForSelector("li.slot[data-state]");
}

/// The start of the n-th free slot on the week page.
export async function freeSlot(page, n = 0) {
  const starts = await page.$$eval("li.slot[data-state=free]", (lis) => lis.map((li) => li.dataset.start));
  assert.ok(starts.length > n, `fewer than ${n + 1} free slots on ${page.url()}`);
  return starts[n];
}

export function slot(page, start) {
  return page.locator(`li.slot[data-start="${start}"]`);
}

/// Waits until the slot starting at `start` shows `state`.
export async function waitSlotState(page, start, state, timeout = 15000) {
  await page.waitForFunction(
    ([s, want]) => document.querySelector(`li.slot[data-start="${s}"]`)?.dataset.state === want,
    [start, state],
    { timeout },
  );
}

/// The API, as the signed-in person of a page (their session cookie).
export async function api(page, path, init = {}) {
  const response = await page.request.fetch(`${base}${path}`, init);
  assert.ok(response.ok(), `${init.method || "GET"} ${path}: ${response.status()} ${await response.text()}`);
  return response.json();
}
