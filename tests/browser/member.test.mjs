// A member's whole visit: search in plain words, the week, a hold with its countdown, payment at
// the desk through staff, their bookings, a cancellation; and the pages in Spanish.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  base, launch, person, checkPage, registerMember, signIn, openNextWeek, freeSlot, slot, api,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("a member finds lit tennis courts, holds a slot, pays at the desk and cancels", async () => {
  const member = await person(browser);
  const { page } = member;
  await page.goto(`${base}/`);
  await checkPage(page, "search-signed-out");
  await registerMember(page, "Lucía Browser");

  // Search in Spanish words: the results are tennis courts with lights, and say what matched.
  await page.fill("input[type=search][name=q]", "tenis noche");
  await Promise.all([page.waitForURL(/q=tenis/), page.press("input[type=search][name=q]", "Enter")]);
  const results = await page.$$eval("[data-facility-result]", (cards) =>
    cards.map((c) => ({ id: c.dataset.facilityResult, why: c.querySelector(".why")?.textContent || "" })));
  assert.ok(results.length > 0, "no results for “tenis noche”");
  const top = await api(page, `/api/v1/facilities/${results[0].id}`);
  assert.equal(top.sport, "tennis");
  assert.equal(top.specifications.lighting, true, `${top.name} is not lit`);
  assert.match(results[0].why, /\S/, "the result does not say what matched");
  await checkPage(page, "search-results");

  // The week, in the club's time zone; every slot says its state.
  await page.click(`[data-facility-result="${results[0].id}"] h3 a`);
  await page.waitForSelector("li.slot[data-state]");
  await checkPage(page, "facility-week");
  const states = await page.$$eval("li.slot", (lis) => [...new Set(lis.map((li) => li.dataset.state))]);
  for (const s of states) assert.ok(["free", "held", "booked", "closed"].includes(s), s);
  await openNextWeek(page, results[0].id);
  const start = await freeSlot(page, 2);

  // Hold it: the hold page counts down.
  await Promise.all([page.waitForURL(/\/bookings\//), slot(page, start).locator("button").click()]);
  const bookingUrl = page.url();
  const bookingId = bookingUrl.split("/bookings/")[1];
  const countdown = page.locator("[data-countdown]");
  const first = await countdown.textContent();
  assert.match(first, /^\d\d:\d\d$/);
  await page.waitForFunction((t) => document.querySelector("[data-countdown]").textContent !== t, first, { timeout: 5000 });
  await checkPage(page, "hold");

  // Staff take the payment at the desk.
  const staff = await person(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(staff.page, "staff@clubpulse.test", "staff-demo-2026", `/bookings/${bookingId}`);
  await Promise.all([staff.page.waitForURL(/done=paid/), staff.page.click(`form[action="/bookings/${bookingId}/mark-paid"] button`)]);
  assert.equal(await staff.page.locator(".status").textContent(), "Confirmed");
  const payments = await api(staff.page, `/api/v1/bookings/${bookingId}/payments`);
  assert.equal(payments[0].status, "succeeded");

  // The member finds it under their bookings, confirmed, with a calendar link; and cancels.
  await page.goto(`${base}/me/bookings`);
  const card = page.locator(`[data-booking="${bookingId}"]`);
  assert.equal(await card.getAttribute("data-status"), "confirmed");
  await checkPage(page, "my-bookings");
  const ics = await page.request.get(`${base}/bookings/${bookingId}/calendar.ics`);
  assert.match(await ics.text(), /BEGIN:VEVENT[\s\S]*DTSTART:\d{8}T\d{6}Z/);
  await Promise.all([page.waitForURL(/done=cancelled/), card.locator("form button.danger").click()]);
  assert.equal(await page.locator(".status").textContent(), "Cancelled");
  const booking = await api(page, `/api/v1/bookings/${bookingId}`);
  assert.equal(booking.status, "cancelled");

  await page.goto(`${base}/me/notifications`);
  await checkPage(page, "notifications");
  member.assertClean();
  staff.assertClean();
});

test("pages speak Spanish from the browser's language, and the switch changes it", async () => {
  const visitor = await person(browser, { locale: "es-ES" });
  const { page } = visitor;
  await page.goto(`${base}/`);
  assert.equal(await page.getAttribute("html", "lang"), "es");
  assert.match(await page.title(), /Encuentra dónde jugar/);
  await page.goto(`${base}/login`);
  await checkPage(page, "login-es");
  await Promise.all([page.waitForURL(`${base}/login`), page.click("a[hreflang=en]")]);
  assert.equal(await page.getAttribute("html", "lang"), "en");
  // A wrong password says what to do, in words.
  await page.fill("input[name=email]", "ana@clubpulse.test");
  await page.fill("input[type=password]", "not-the-password");
  await page.click("form.stack button[type=submit]");
  await page.waitForSelector("[role=alert]");
  assert.match(await page.locator("[role=alert]").textContent(), /Wrong e-mail or password/);
  await checkPage(page, "login-error");
  await page.goto(`${base}/no-such-page`);
  assert.match(await page.locator("h1").textContent(), /no such page/i);
  visitor.assertClean();
});
