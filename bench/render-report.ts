/**
 * How long the outputs take for a large report, and how big they get.
 *
 *   npm run build && node dist/bench/render-report.js [findings=10000] [outDir]
 *
 * Prints one line per output: size in bytes and render time in ms (median of 3 runs,
 * after a warm-up that compiles the templates).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { syntheticReport } from '../test/outputs/fixtures';
import { renderHtmlReport } from '../src/outputs/html';
import { renderChecklist } from '../src/outputs/checklist';
import { formatJsonReport } from '../src/outputs/json';
import { formatJunit } from '../src/outputs/junit';
import { formatSarif } from '../src/outputs/sarif';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function main(): void {
  const n = Number(process.argv[2] ?? 10_000);
  const outDir = process.argv[3] ? resolve(process.argv[3]) : undefined;
  if (!Number.isInteger(n) || n < 0) throw new Error(`findings must be a non-negative integer, got ${process.argv[2]}`);
  const report = syntheticReport(n);
  const previous = syntheticReport(Math.floor(n * 0.9));
  const outputs: [string, () => string][] = [
    ['report.html', () => renderHtmlReport(report, { previous })],
    ['checklist.html', () => renderChecklist(report)],
    ['report.json', () => formatJsonReport(report)],
    ['report.junit.xml', () => formatJunit(report)],
    ['report.sarif', () => formatSarif(report)],
  ];
  console.log(`findings: ${n}`);
  for (const [name, render] of outputs) {
    let text = render(); // warm-up (template compilation, JIT)
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const t0 = process.hrtime.bigint();
      text = render();
      times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const bytes = Buffer.byteLength(text, 'utf8');
    console.log(`${name.padEnd(17)} ${String(bytes).padStart(11)} bytes  ${(bytes / 1048576).toFixed(2).padStart(7)} MiB  ${median(times).toFixed(0).padStart(6)} ms`);
    if (outDir) {
      mkdirSync(outDir, { recursive: true });
      writeFileSync(join(outDir, name), text);
    }
  }
}

main();
