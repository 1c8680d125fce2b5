// server_web.mjs: drives Debian's headless chromium (playwright-core) through
// the page of a running `cutout s`.  Run by test_server_web.sh:
//   node server_web.mjs PLAYWRIGHT_DIR BASE_URL INDEX_HTML PHOTO WIDTH HEIGHT REF_PNG OUTDIR
// Prints one line per check and "N passed, N failed"; exits 1 on a failure.
import { createRequire } from "node:module";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [pwDir, base, indexHtml, photo, wStr, hStr, refPng, outDir] = process.argv.slice(2);
const W = +wStr, H = +hStr;
const { chromium } = createRequire(import.meta.url)(pwDir);
const TIMEOUT = 120_000; // inference under ASan on a busy 2-core machine

let pass = 0, fail = 0;
function check(ok, what, detail = "") {
  if (ok) pass++; else fail++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${!ok && detail ? ": " + detail : ""}`);
}

// The server must answer before the browser starts.
async function waitUp() {
  for (let i = 0; i < 600; i++) {
    try { const r = await fetch(base + "/"); if (r.ok) return r; } catch (e) { /* not yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`no answer from ${base}/ in 60 s`);
}

// In the page: the result <img>'s bytes and pixels.  PNG header fields are
// read from the bytes; pixels are decoded by the browser into a canvas.
async function inspectResult(page) {
  return page.evaluate(async () => {
    const img = document.getElementById("result");
    const buf = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    const sig = [137, 80, 78, 71, 13, 10, 26, 10].every((b, i) => buf[i] === b);
    const dv = new DataView(buf.buffer);
    const bmp = await createImageBitmap(new Blob([buf]));
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext("2d");
    g.drawImage(bmp, 0, 0);
    const px = g.getImageData(0, 0, bmp.width, bmp.height).data;
    let clear = 0, solid = 0, opaque = 0, gray = 0;
    const alpha = [], red = [];
    for (let i = 0; i < px.length; i += 4) {
      if (px[i + 3] === 0) clear++;
      if (px[i + 3] >= 250) solid++;
      if (px[i + 3] === 255) opaque++;
      if (px[i] === px[i + 1] && px[i + 1] === px[i + 2]) gray++;
      alpha.push(px[i + 3]); red.push(px[i]);
    }
    let bin = "";
    for (let i = 0; i < buf.length; i += 0x8000) bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
    return { sig, width: dv.getUint32(16), height: dv.getUint32(20), colorType: buf[25],
      decoded: [bmp.width, bmp.height], n: px.length / 4, clear, solid, opaque, gray, alpha, red,
      b64: btoa(bin), href: document.getElementById("download").href, src: img.src,
      name: document.getElementById("download").getAttribute("download") };
  });
}

// Waits for the result panel to leave "busy"; returns its final state.
async function settle(page) {
  await page.waitForFunction(() => {
    const s = document.getElementById("out").dataset.state;
    return s === "done" || s === "error";
  }, null, { timeout: TIMEOUT });
  return page.$eval("#out", (e) => e.dataset.state);
}

const profile = mkdtempSync(join(tmpdir(), "cutout-chromium-"));
let ctx;
try {
  const first = await waitUp();
  const served = Buffer.from(await first.arrayBuffer());
  check(served.equals(readFileSync(indexHtml)), "GET / serves index.html byte for byte",
    `${served.length} bytes served, ${readFileSync(indexHtml).length} in the file`);
  check((first.headers.get("content-type") || "").startsWith("text/html"), "GET / is text/html",
    first.headers.get("content-type"));

  // playwright-core refuses --user-data-dir in args: a persistent context
  // on a fresh folder is the same thing.
  ctx = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium", headless: true, acceptDownloads: true,
    viewport: { width: 1280, height: 860 }, timeout: 60_000,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const errors = [], foreign = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("request", (r) => {
    const u = r.url();
    if (!u.startsWith(base + "/") && !u.startsWith("blob:") && !u.startsWith("data:")) foreign.push(u);
  });

  await page.goto(base + "/");
  await page.waitForFunction(() => document.getElementById("model").options.length > 1);
  const models = await page.$$eval("#model option", (o) => o.map((x) => x.value));
  // The page starts on the server's default model, as GET /api gives it.
  const api = await (await fetch(base + "/api")).json();
  const dflt = (function find(n) {
    if (!n || typeof n !== "object") return undefined;
    if (n.name === "model" && n.schema) return n.schema.default;
    if (n.properties && n.properties.model) return n.properties.model.default;
    for (const k of Object.keys(n)) { const d = find(n[k]); if (d !== undefined) return d; }
    return undefined;
  })(api);
  const chosen = await page.inputValue("#model");
  check(dflt !== undefined && chosen === dflt, "the page starts on the server's default model",
    `page ${chosen}, /api ${dflt}`);
  check(models.includes("isnet-general-use"), "the model list comes from the server", models.join(","));
  await page.selectOption("#model", "isnet-general-use");

  // Keyboard: Tab reaches the file input; Space toggles a checkbox.
  let reached = false;
  for (let i = 0; i < 6 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement && document.activeElement.id === "file");
  }
  check(reached, "Tab reaches the file input");
  await page.focus("#ppm");
  await page.keyboard.press("Space");
  const ppmOn = await page.isChecked("#ppm");
  await page.keyboard.press("Space");
  check(ppmOn && !(await page.isChecked("#ppm")), "Space toggles an option");

  // 1. The cutout: choosing a file sends it at once.
  await page.setInputFiles("#file", photo);
  let state = await settle(page);
  check(state === "done", "the photo comes back as a cutout",
    state + " " + await page.textContent("#error"));
  if (state === "done") {
    const r = await inspectResult(page);
    check(r.sig && r.colorType === 6, "the result is an RGBA PNG", `sig ${r.sig} colour type ${r.colorType}`);
    check(r.width === W && r.height === H && r.decoded[0] === W && r.decoded[1] === H,
      `the result is ${W}x${H}`, `${r.width}x${r.height}, decoded ${r.decoded}`);
    // ISNet's min-max scaling leaves few alphas at exactly 255.
    check(r.clear > r.n / 50 && r.solid > r.n / 50, "some pixels are transparent and some opaque",
      `${r.clear} clear, ${r.solid} with alpha >= 250 of ${r.n}`);
    const ref = readFileSync(refPng);
    check(Buffer.from(r.b64, "base64").equals(ref), "the result equals `cutout i` byte for byte",
      `${Buffer.from(r.b64, "base64").length} bytes vs ${ref.length}`);
    check(r.href === r.src && r.name === "car-1.out.png", "the download link is the result", `${r.href} ${r.name}`);
    const [dl] = await Promise.all([page.waitForEvent("download"), page.click("#download")]);
    check(readFileSync(await dl.path()).equals(ref), "downloading saves the result",
      dl.suggestedFilename());
    await page.screenshot({ path: join(outDir, "server_web.png"), fullPage: true });

    // 2. Only the mask: the same model's mask, i.e. the cutout's alpha.
    await page.check("#om");
    await page.click("#go");
    state = await settle(page);
    check(state === "done", "the mask comes back", state + " " + await page.textContent("#error"));
    if (state === "done") {
      const m = await inspectResult(page);
      check(m.colorType === 0 && m.gray === m.n && m.opaque === m.n, "the mask is an opaque grey PNG",
        `colour type ${m.colorType}, ${m.gray} grey, ${m.opaque} opaque of ${m.n}`);
      let diff = 0;
      for (let i = 0; i < m.n; i++) if (m.red[i] !== r.alpha[i]) diff++;
      check(m.width === W && m.height === H && diff === 0, "the mask equals the cutout's alpha",
        `${diff} of ${m.n} pixels differ`);
      check(m.name === "car-1.out.png", "the mask's download name", m.name);
      await page.screenshot({ path: join(outDir, "server_web_mask.png"), fullPage: true });
    }
    await page.uncheck("#om");
  }

  // 3. An error from the server is shown to the user: its JSON detail.
  const want = await page.evaluate(async () => {
    const f = new FormData();
    f.append("file", new Blob(["this is not an image"], { type: "image/png" }), "bad.png");
    const r = await fetch("api/remove", { method: "POST", body: f });
    return { status: r.status, body: await r.text() };
  });
  let detail = null;
  try { detail = JSON.parse(want.body).detail; } catch (e) { /* checked below */ }
  check(want.status >= 400 && want.status < 500 && typeof detail === "string" && detail.length > 0,
    "garbage bytes get a 4xx with a JSON detail", `${want.status} ${want.body}`);
  // ... and this file comes in by drag and drop.
  await page.evaluate(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["this is not an image"], "bad.png", { type: "image/png" }));
    const zone = document.getElementById("drop");
    for (const t of ["dragenter", "dragover", "drop"])
      zone.dispatchEvent(new DragEvent(t, { dataTransfer: dt, bubbles: true, cancelable: true }));
  });
  state = await settle(page);
  const shown = (await page.textContent("#error")).trim();
  check(state === "error" && shown === detail, "the page shows the server's detail", `${state}: '${shown}'`);
  await page.screenshot({ path: join(outDir, "server_web_error.png") });

  check(errors.length === 0, "no script errors", errors.join(" | "));
  check(foreign.length === 0, "no request leaves the server (no CDN)", foreign.join(" "));
} catch (e) {
  check(false, "the browser run", e.stack || String(e));
} finally {
  if (ctx) await ctx.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
console.log(`${pass} passed, ${fail} failed`);
process.exit(fail ? 1 : 0);
