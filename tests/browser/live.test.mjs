// Two members side by side: one holds and frees a slot and the other's week follows without a
// reload; one waits for a taken slot and the offer reaches them live when it frees.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  base, launch, person, checkPage, registerMember, waitLive, openNextWeek, freeSlot, slot,
  waitSlotState, api,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

async function aFacility(page) {
  const list = await api(page, "/api/v1/facilities?sport=padel");
  assert.ok(list.length > 0, "the demo has no padel courts");
  return list[0].id;
}

test("a slot held and freed by one member changes on the other's week without a reload", async () => {
  const a = await person(browser);
  const b = await person(browser, { viewport: { width: 1280, height: 900 } });
  await registerMember(a.page, "Alba Live");
  await registerMember(b.page, "Bea Live");
  const facility = await aFacility(a.page);
  await openNextWeek(a.page, facility);
  await openNextWeek(b.page, facility);
  await waitLive(a.page);
  await waitLive(b.page);
  const start = await freeSlot(a.page, 1);

  await Promise.all([a.page.waitForURL(/\/bookings\//), slot(a.page, start).locator("button").click()]);
  await waitSlotState(b.page, start, "held");
  assert.equal(await slot(b.page, start).locator(".state").textContent(), "Held");
  await checkPage(b.page, "week-live-held");

  await Promise.all([a.page.waitForURL(/done=cancelled/), a.page.click("form[action$=cancel] button")]);
  await waitSlotState(b.page, start, "free");
  assert.equal(await slot(b.page, start).locator(".state").textContent(), "Free");
  a.assertClean();
  b.assertClean();
});

test("a waitlist offer appears live when the slot frees", async () => {
  const a = await person(browser);
  const b = await person(browser);
  await registerMember(a.page, "Carla Wait");
  await registerMember(b.page, "Dani Wait");
  const facility = await aFacility(a.page);
  await openNextWeek(a.page, facility);
  const start = await freeSlot(a.page, 3);
  await Promise.all([a.page.waitForURL(/\/bookings\//), slot(a.page, start).locator("button").click()]);

  // B finds it held and joins the waitlist from the same button.
  await openNextWeek(b.page, facility);
  assert.equal(await slot(b.page, start).getAttribute("data-state"), "held");
  await Promise.all([b.page.waitForURL(/notice=waitlist/), slot(b.page, start).locator("button").click()]);
  await b.page.waitForSelector(".notice");
  await waitLive(b.page);
  const unreadBefore = Number(await b.page.locator("[data-unread-count]").textContent());

  // A lets it go: B is offered it while looking at the page.
  await Promise.all([a.page.waitForURL(/done=cancelled/), a.page.click("form[action$=cancel] button")]);
  await b.page.waitForSelector("[data-toast='waitlist.offer']", { timeout: 15000 });
  assert.equal(Number(await b.page.locator("[data-unread-count]").textContent()), unreadBefore + 1);
  // The header's list has it on top, linking to the offered hold.
  const toastTitle = await b.page.locator("[data-toast='waitlist.offer'] strong").textContent();
  assert.equal(await b.page.locator("[data-inbox] li a").first().textContent(), toastTitle);
  assert.match(await b.page.locator("[data-inbox] li a").first().getAttribute("href"), /^\/bookings\//);
  await checkPage(b.page, "waitlist-offer");
  const mine = await api(b.page, "/api/v1/waitlist");
  const entry = mine.find((e) => e.start === start || Date.parse(e.start) === Date.parse(start));
  assert.equal(entry.status, "offered");
  await b.page.goto(`${base}/me/bookings`);
  await checkPage(b.page, "my-bookings-offer");
  a.assertClean();
  b.assertClean();
});
