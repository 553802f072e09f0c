// Drives Debian's headless Chromium through the admin pages of a running
// lstp world, step by step with the Python test that built it
// (tests/integration/test_admin_page.py): it prints a line when a step is
// done and reads the next order from stdin.
//
//   node admin_page.mjs CLIENT_URL SERVER_URL MIDDLE_URL TOKEN SCREENSHOT_DIR
//
// Steps: READY (the client end's page shows the tunnel and its hop map, no
// channel), GREW <counts> (the channel list grew to two while curl
// downloads), then on "CLOSE <id>": clicks that channel's Close button
// (giving the token when the page asks for it) and prints CLOSED once the
// row is gone; then the server end's and the middle's pages, DONE.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const [clientUrl, serverUrl, middleUrl, token, shots] = process.argv.slice(2);
const lines = createInterface({ input: process.stdin });
const orders = lines[Symbol.asyncIterator]();
const say = (text) => process.stdout.write(text + "\n");
const fail = (text) => { process.stderr.write("FAIL " + text + "\n"); process.exit(1); };

async function poll(what, check, timeoutMs = 15000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > end) fail(what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  // Nothing outside the process may be asked for: the page works offline.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(new URL(clientUrl).origin)) foreign.push(r.url()); });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));

  await page.goto(clientUrl);
  await poll("the client page shows tunnel it up", async () =>
    (await page.locator('section.tunnel[data-tunnel="it"] .badge.up').count()) === 1);
  const hops = await page.locator('section.tunnel[data-tunnel="it"] .hop').allTextContents();
  if (hops.length !== 3 || !hops[0].includes('client-end "cli"') || !hops[1].includes('middle "m1"') ||
      !hops[2].includes('server-end "srv"'))
    fail("hop map: " + JSON.stringify(hops));
  const rows = page.locator("tr.channel");
  if ((await rows.count()) !== 0) fail("channels before any download");
  await page.screenshot({ path: `${shots}/client-idle.png`, fullPage: true });
  say("READY " + JSON.stringify(hops));

  // The Python side starts the downloads now.
  const seen = [];
  await poll("two channels listed while curl downloads", async () => {
    const n = await rows.count();
    if (seen[seen.length - 1] !== n) seen.push(n);
    return n === 2;
  }, 20000);
  await page.screenshot({ path: `${shots}/client-channels.png`, fullPage: true });
  say("GREW " + JSON.stringify(seen));

  const order = (await orders.next()).value || "";
  const id = order.split(" ")[1];
  if (!order.startsWith("CLOSE ") || !id) fail("expected CLOSE <id>, got " + order);
  const close = page.locator(`tr.channel[data-id="${id}"] button.close`);
  await close.click();
  // No token known yet: the page asks for it.
  await poll("the page asks for the admin token", async () => page.locator("#tokenbar").isVisible());
  await page.fill("#token", token);
  await page.click("#usetoken");
  await close.click();
  await poll("the closed channel's row is gone", async () =>
    (await page.locator(`tr.channel[data-id="${id}"]`).count()) === 0 && (await rows.count()) === 1);
  await poll("the event list shows the close", async () =>
    (await page.locator("#events").textContent()).includes("closed by the operator"));
  await page.screenshot({ path: `${shots}/client-after-close.png`, fullPage: true });
  say("CLOSED");

  const server = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  server.on("pageerror", (e) => errors.push(String(e)));
  await server.goto(serverUrl);
  await poll("the server page shows tunnel it up with a channel", async () =>
    (await server.locator('section.tunnel[data-tunnel="it"] .badge.up').count()) === 1 &&
    (await server.locator("tr.channel").count()) >= 1);
  await server.screenshot({ path: `${shots}/server.png`, fullPage: true });

  const middle = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  middle.on("pageerror", (e) => errors.push(String(e)));
  await middle.goto(middleUrl);
  await poll("the middle page lists the pair", async () => (await middle.locator("tr.pair").count()) === 1);
  const pair = await middle.locator("tr.pair").textContent();
  if (!pair.includes('client-end "cli"') || !pair.includes('server-end "srv"')) fail("pair row: " + pair);
  await middle.screenshot({ path: `${shots}/middle.png`, fullPage: true });

  if (errors.length) fail("script errors: " + errors.join("; "));
  if (foreign.length) fail("requests outside the process: " + foreign.join(", "));
  say("DONE");
} finally {
  await browser.close();
  lines.close();
}
