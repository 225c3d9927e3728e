// Starting and stopping the real `cityos demo` for the browser tests: a free
// port, a temporary data directory, its output in out/<log>, and readiness
// when /health answers 200. Shared by every *.test.mjs here.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
export const BIN = process.env.CITYOS_BIN || path.join(REPO, 'target', 'debug', 'cityos');
export const CHROMIUM = '/usr/bin/chromium';
export const OUT = path.join(HERE, 'out');
export const HEALTH_TIMEOUT_MS = 120_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Debian's Chromium, headless, with the flags a closed network needs; never downloaded. */
export async function launchChromium() {
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: install Debian's Chromium (apt-get install -y chromium); this test never downloads a browser`);
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  });
}

/** Collects `page`'s console errors and uncaught exceptions into `errors`. */
export function watchConsole(page, errors) {
  page.on('console', (msg) => { if (msg.type() === 'error') errors.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
}

/**
 * `it`, but failing straight away with the suite's setup error when there was one
 * (`setupError()` returns it), so a failed setup is reported by every test with its
 * own message instead of a bare hook error.
 */
export const stepWith = (setupError) => (name, fn) => it(name, async () => {
  const error = setupError();
  if (error) throw error;
  await fn();
});

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const running = new Set();
// Never leave a server behind, even if the runner is interrupted.
process.on('exit', () => {
  for (const proc of running) if (proc.exitCode === null) proc.kill('SIGKILL');
});

/** Starts `cityos demo`, logging to out/`logName`; resolves once /health answers 200. */
export async function startDemo(logName) {
  if (!fs.existsSync(BIN)) {
    throw new Error(`cityos binary not found at ${BIN}: build it first (cargo build) or set CITYOS_BIN`);
  }
  fs.mkdirSync(OUT, { recursive: true });
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cityos-browser-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const logPath = path.join(OUT, logName);
  const log = fs.openSync(logPath, 'w');
  const proc = spawn(BIN, ['demo', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`, '--no-open', '--mqtt-listen', '127.0.0.1:0'], {
    stdio: ['ignore', log, log],
    env: { ...process.env, CITYOS_LOG: process.env.CITYOS_LOG || 'info' },
  });
  fs.closeSync(log);
  running.add(proc);
  let exited = null;
  proc.on('exit', (code, signal) => { exited = { code, signal }; });
  const demo = {
    proc,
    dataDir,
    base,
    /** The last 40 lines the server printed. */
    log() {
      try {
        return fs.readFileSync(logPath, 'utf8').split('\n').slice(-40).join('\n');
      } catch (_) {
        return '(no server output)';
      }
    },
    /** Stops it (SIGTERM, then SIGKILL after 5 s) and removes its data. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await gone;
        clearTimeout(timer);
      }
      running.delete(proc);
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
    /** GET `p` as JSON, asserting 200. */
    async getJson(p) {
      const res = await fetch(base + p, { signal: AbortSignal.timeout(15_000) });
      const body = await res.json();
      assert.equal(res.status, 200, `GET ${p} → ${res.status}: ${JSON.stringify(body)}`);
      return body;
    },
  };
  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  for (;;) {
    if (exited) {
      throw new Error(`cityos demo exited early (${JSON.stringify(exited)}); its output:\n${demo.log()}`);
    }
    try {
      const res = await fetch(`${base}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return demo;
    } catch (_) { /* not listening yet */ }
    if (Date.now() > deadline) {
      throw new Error(`cityos demo did not answer 200 on /health within ${HEALTH_TIMEOUT_MS / 1000}s; its output:\n${demo.log()}`);
    }
    await sleep(250);
  }
}
