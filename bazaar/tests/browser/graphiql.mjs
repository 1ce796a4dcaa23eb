// Drives GraphiQL in Debian's headless Chromium against a running bazaar, as a user would.
// Run by bazaar/tests/browser.rs, which starts bazaar and passes:
//   BAZAAR_URL     http://127.0.0.1:<port>
//   BAZAAR_TOKEN   a customer's access token
//   BAZAAR_EMAIL   that customer's email
//   BAZAAR_PRODUCT a product id the customer can order
//   SCREENSHOT     where to keep the screenshot (the test artefact)
//   CHROMIUM       the browser (default /usr/bin/chromium)
// Exits 0 when every step passed; prints what it saw either way.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.BAZAAR_URL;
const token = process.env.BAZAAR_TOKEN;
const email = process.env.BAZAAR_EMAIL;
const productId = process.env.BAZAAR_PRODUCT;
const screenshot = process.env.SCREENSHOT;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

const step = (name) => console.log(`step: ${name}`);
const userDataDir = mkdtempSync(join(tmpdir(), 'bazaar-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true, // Playwright adds --headless itself
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
  ],
  viewport: { width: 1400, height: 900 },
});

// Every request the page makes, and any that would leave loopback (refused and recorded).
const requests = [];
const escaped = [];
const problems = [];
await context.route('**/*', (route) => {
  const url = new URL(route.request().url());
  requests.push(url.href);
  if (LOOPBACK.has(url.hostname)) return route.continue();
  escaped.push(url.href);
  return route.abort('blockedbyclient');
});
const page = context.pages()[0] || (await context.newPage());
page.on('websocket', (ws) => {
  const url = new URL(ws.url());
  requests.push(url.href);
  if (!LOOPBACK.has(url.hostname)) escaped.push(url.href);
});
page.on('console', (msg) => {
  if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

const editorValue = (selector) =>
  page.evaluate((s) => document.querySelector(s)?.CodeMirror?.getValue() ?? null, selector);

/** Types `text` into the CodeMirror editor at `selector`, replacing what it held. */
async function typeInto(selector, text) {
  await page.click(`${selector} .CodeMirror-lines`);
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  // insertText types the text as one input, so the editor's bracket auto-closing leaves it as is.
  await page.keyboard.insertText(text);
  const value = await editorValue(`${selector} .CodeMirror`);
  if (value !== text) throw new Error(`editor ${selector} holds ${JSON.stringify(value)}`);
  // GraphiQL re-parses the editor's document after a debounce; running before it would send the
  // previous document (a subscription would go out over HTTP as the old query's type).
  await page.waitForTimeout(1000);
}

async function responseContains(needles, timeout) {
  await page.waitForFunction(
    (ns) => {
      const v = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror?.getValue() ?? '';
      return ns.every((n) => v.includes(n));
    },
    needles,
    { timeout, polling: 100 },
  );
}

let ok = false;
try {
  step('GraphiQL loads');
  await page.goto(`${base}/graphql`, { waitUntil: 'load' });
  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 30000 });

  step('the Docs explorer lists Query fields');
  await page.click('button[aria-label="Show Documentation Explorer"]');
  await page.click('.graphiql-doc-explorer a.graphiql-doc-explorer-type-name:text-is("Query")', { timeout: 30000 });
  await page.waitForSelector('.graphiql-doc-explorer-field-name:text-is("products")', { timeout: 10000 });
  const fields = await page.$$eval('.graphiql-doc-explorer-field-name', (as) => as.map((a) => a.textContent));
  for (const f of ['me', 'product', 'products', 'orders']) {
    if (!fields.includes(f)) throw new Error(`Docs explorer lacks Query.${f}: ${fields}`);
  }
  console.log(`Query fields in the Docs explorer: ${fields.join(', ')}`);

  step('a query typed with a bearer token in the headers editor returns data');
  await page.click('.graphiql-editor-tools button:text-is("Headers")');
  await typeInto('.graphiql-editor-tool .graphiql-editor:not(.hidden)', JSON.stringify({ Authorization: `Bearer ${token}` }));
  await typeInto('.graphiql-query-editor', '{ me { email } }');
  await page.click('.graphiql-execute-button');
  await responseContains([`"email": "${email}"`], 15000);

  step('the token typed into the headers editor is not kept in localStorage');
  const stored = await page.evaluate(() => JSON.stringify({ ...window.localStorage }));
  if (stored.includes(token)) throw new Error(`localStorage keeps the token: ${stored}`);

  step('a subscription started in GraphiQL shows the order moving to CONFIRMED');
  await typeInto('.graphiql-query-editor', 'subscription { orderUpdated { id status } }');
  const socket = page.waitForEvent('websocket', { timeout: 10000 });
  await page.click('.graphiql-execute-button');
  const ws = await socket;
  // Wait for the subscription to be acknowledged and started before placing the order.
  await new Promise((resolve) => {
    ws.on('framesent', (f) => String(f.payload).includes('"subscribe"') && resolve());
    setTimeout(resolve, 3000);
  });
  await new Promise((r) => setTimeout(r, 300));
  const placed = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { id status } }',
      variables: {
        input: {
          items: [{ productId, quantity: 1 }],
          shippingAddress: { line1: '1 Market St', city: 'York', postalCode: 'YO1 7HH', country: 'GB' },
        },
      },
    }),
  }).then((r) => r.json());
  const orderId = placed?.data?.placeOrder?.id;
  if (!orderId) throw new Error(`placeOrder failed: ${JSON.stringify(placed)}`);
  await responseContains([orderId, '"status": "CONFIRMED"'], 60000);
  console.log(`order ${orderId} shown CONFIRMED in GraphiQL`);

  if (escaped.length) throw new Error(`requests left loopback: ${escaped.join(', ')}`);
  const csp = problems.filter((p) => /Content Security Policy/i.test(p));
  if (csp.length) throw new Error(`the content security policy blocked the page: ${csp.join(' | ')}`);
  ok = true;
} catch (e) {
  console.error(`FAILED: ${e.stack || e}`);
} finally {
  await page.screenshot({ path: screenshot, fullPage: true }).catch((e) => console.error(`no screenshot: ${e}`));
  console.log(`screenshot: ${screenshot}`);
  console.log(`requests (${requests.length}): ${[...new Set(requests.map((u) => new URL(u).origin + new URL(u).pathname))].join(' ')}`);
  if (problems.length) console.log(`browser console errors: ${problems.join(' | ')}`);
  await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
