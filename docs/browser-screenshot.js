// Screenshot of the Neo4j Browser showing the demo's incident with rootgraph's style.
// Needs Debian's chromium and `npm install playwright-core`; run after `make demo`:
//   PW=$(cat ~/.cache/rootgraph/instances/default/password) node docs/browser-screenshot.js "<cypher>"
const { chromium } = require('playwright-core');
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto('http://127.0.0.1:7474/browser/?dbms=bolt://127.0.0.1:7687', { waitUntil: 'networkidle' });
  const user = page.locator('[data-testid="username"]');
  if (await user.count()) {
    await user.fill('neo4j');
    await page.locator('[data-testid="password"]').fill(process.env.PW);
    await page.locator('[data-testid="connect"]').click();
  }
  await page.waitForTimeout(4000);
  // The server's browser.post_connect_cmd has applied graph/browser.grass on connect.
  const q = process.argv[2];
  await page.locator('[data-testid="activeEditor"]').click();
  await page.keyboard.insertText(q);
  await page.keyboard.press('Control+Enter');
  await page.waitForTimeout(6000);
  await page.screenshot({ path: require('path').join(__dirname, 'browser-incident.png') });
  await browser.close();
})();
