// The manager's dashboard: a booking made in the test moves its occupancy cell, the page shows the
// same figures as the stats API, and the activity feed shows a hold as it happens.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import {
  base, launch, person, checkPage, registerMember, signIn, waitLive, openNextWeek, freeSlot, slot, api,
} from "./helpers.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

/// The ISO weekday, hour and local date of an instant in a time zone.
function local(instant, timeZone) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-GB", {
      timeZone, weekday: "short", hour: "2-digit", hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
    }).formatToParts(new Date(instant)).map((p) => [p.type, p.value]),
  );
  const weekday = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].indexOf(parts.weekday) + 1;
  return { weekday, hour: Number(parts.hour), date: `${parts.year}-${parts.month}-${parts.day}` };
}

const nextDay = (date) => new Date(Date.parse(`${date}T00:00:00Z`) + 86400000).toISOString().slice(0, 10);
const cell = (stats, weekday, hour) => stats.occupancy.find((c) => c.weekday === weekday && c.hour === hour);
const minutes = (stats) => stats.occupancy.reduce((sum, c) => sum + c.booked_minutes, 0);

test("a confirmed booking shows on the dashboard as on the stats API, and holds appear live", async () => {
  const admin = await person(browser, { viewport: { width: 1280, height: 900 } });
  await signIn(admin.page, "admin@clubpulse.test", "admin-demo-2026");
  const facilities = await api(admin.page, "/api/v1/facilities?sport=squash");
  const facility = facilities[0] ?? (await api(admin.page, "/api/v1/facilities"))[0];
  const club = await api(admin.page, `/api/v1/clubs/${facility.club_id}`);

  const member = await person(browser);
  await registerMember(member.page, "Elena Dashboard");
  await openNextWeek(member.page, facility.id);
  const start = await freeSlot(member.page, 4);
  const end = await slot(member.page, start).getAttribute("data-end");
  const at = local(start, club.timezone);
  const range = `club_id=${club.id}&from=${at.date}&to=${nextDay(at.date)}`;
  const before = await api(admin.page, `/api/v1/admin/stats?${range}`);

  // The dashboard is open while the member holds: the hold shows in the activity feed.
  await admin.page.goto(`${base}/admin?club_id=${club.id}&from=${at.date}&to=${at.date}`);
  await waitLive(admin.page);
  await Promise.all([member.page.waitForURL(/\/bookings\//), slot(member.page, start).locator("button").click()]);
  await admin.page.waitForSelector("[data-activity] li[data-event='slot.held']", { timeout: 15000 });
  const bookingId = member.page.url().split("/bookings/")[1];
  await Promise.all([member.page.waitForURL(/done=confirmed/), member.page.click("form[action$=confirm] button")]);

  const after = await api(admin.page, `/api/v1/admin/stats?${range}`);
  const length = (Date.parse(end) - Date.parse(start)) / 60000;
  assert.equal(after.bookings.confirmed, before.bookings.confirmed + 1);
  assert.equal(minutes(after) - minutes(before), length, "the booking's minutes, spread over its hours");
  assert.ok(cell(after, at.weekday, at.hour).booked_minutes > cell(before, at.weekday, at.hour).booked_minutes);

  // The page shows the API's figures: the heatmap cell, the confirmed count.
  await admin.page.goto(`${base}/admin?club_id=${club.id}&from=${at.date}&to=${at.date}`);
  await checkPage(admin.page, "dashboard");
  const shown = await admin.page.getAttribute(
    `svg.heatmap g[data-weekday="${at.weekday}"][data-hour="${at.hour}"]`, "data-rate");
  const rate = cell(after, at.weekday, at.hour).rate;
  assert.ok(Math.abs(Number(shown) - rate) < 1e-4, `the page shows ${shown}, the API ${rate}`);
  assert.ok(Number(shown) > 0);
  const confirmed = await admin.page.locator("[data-kpi=confirmed] strong").textContent();
  assert.equal(Number(confirmed), after.bookings.confirmed);
  const booking = await api(member.page, `/api/v1/bookings/${bookingId}`);
  assert.equal(booking.status, "confirmed");

  // At phone width too, and in Spanish.
  const phone = await person(browser, { locale: "es-ES" });
  await signIn(phone.page, "staff@clubpulse.test", "staff-demo-2026", "/admin");
  assert.match(await phone.page.title(), /Panel del club/);
  await checkPage(phone.page, "dashboard-phone-es");
  admin.assertClean();
  member.assertClean();
  phone.assertClean();
});
