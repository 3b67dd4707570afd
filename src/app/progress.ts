/**
 * Showing a long check's progress (the runner's onProgress): on a terminal, a progress line on
 * stderr (cli-progress: rows, rows/s, ETA); otherwise — a log file, a cron job, a daemon — a
 * log line every few seconds. Never writes to stdout (the summary and JSON live there).
 */
import type { Logger } from '../core/logger';
import type { CheckProgress } from '../core/runner';

export interface ProgressReporter {
  onProgress(check: string, p: CheckProgress): void;
  /** Ends every line in progress (call when the run ends). */
  stop(): void;
}

interface Bar {
  update(value: number, payload?: Record<string, unknown>): void;
  setTotal(total: number): void;
  stop(): void;
}
interface MultiBar {
  create(total: number, start: number, payload?: Record<string, unknown>): Bar;
  stop(): void;
}

const count = (n: number) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ' ');

function eta(p: CheckProgress, rate: number): number | undefined {
  if (p.total === undefined || rate <= 0 || p.done >= p.total) return undefined;
  return (p.total - p.done) / rate;
}

function formatSeconds(s: number | undefined): string {
  if (s === undefined) return '–';
  if (s < 60) return `${Math.ceil(s)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/**
 * `tty`: the stream to draw on (stderr when it is a terminal), or undefined for log lines.
 * `intervalMs`: how often a log line is written per running check.
 */
export function progressReporter(opts: { tty?: NodeJS.WriteStream; logger: Logger; intervalMs?: number; now?: () => number }): ProgressReporter {
  const now = opts.now ?? Date.now;
  const interval = opts.intervalMs ?? 5_000;
  if (opts.tty) {
    const tty = opts.tty;
    let multi: MultiBar | undefined;
    const bars = new Map<string, Bar>();
    return {
      onProgress(check, p) {
        if (!multi) {
          // cli-progress only when a check reports progress on a terminal.
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const cp = require('cli-progress') as { MultiBar: new (o: Record<string, unknown>, preset?: unknown) => MultiBar; Presets: Record<string, unknown> };
          multi = new cp.MultiBar(
            {
              stream: tty,
              format: '{check} [{bar}] {done}/{totalText} rows | {rate} rows/s | ETA {left}',
              hideCursor: true,
              clearOnComplete: false,
              stopOnComplete: false,
              fps: 4,
            },
            cp.Presets.shades_classic,
          );
        }
        const elapsed = Math.max(0.001, (now() - p.startedMs) / 1000);
        const rate = p.done / elapsed;
        const payload = { check, done: count(p.done), totalText: p.total === undefined ? '?' : count(p.total), rate: count(rate), left: formatSeconds(eta(p, rate)) };
        let bar = bars.get(check);
        if (!bar) {
          bar = multi.create(p.total ?? 0, p.done, payload);
          bars.set(check, bar);
        }
        if (p.total !== undefined) bar.setTotal(p.total);
        bar.update(p.done, payload);
        if (p.finished) bars.delete(check);
      },
      stop() {
        multi?.stop();
        multi = undefined;
        bars.clear();
      },
    };
  }
  const last = new Map<string, number>();
  return {
    onProgress(check, p) {
      const t = now();
      if (p.finished) {
        last.delete(check);
        return;
      }
      const prev = last.get(check);
      if (prev === undefined) {
        // The first report starts the clock: a check that ends within the interval logs nothing.
        last.set(check, t);
        return;
      }
      if (t - prev < interval) return;
      last.set(check, t);
      const elapsed = Math.max(0.001, (t - p.startedMs) / 1000);
      const rate = p.done / elapsed;
      const left = eta(p, rate);
      opts.logger.info(
        { check, rows: p.done, totalRows: p.total ?? null, rowsPerSecond: Math.round(rate), etaSeconds: left === undefined ? null : Math.round(left) },
        `Progress: ${count(p.done)}${p.total === undefined ? '' : ` of ${count(p.total)}`} rows, ${count(rate)} rows/s${left === undefined ? '' : `, about ${formatSeconds(left)} left`}`,
      );
    },
    stop() {
      last.clear();
    },
  };
}
