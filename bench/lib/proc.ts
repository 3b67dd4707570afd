/**
 * CPU time of processes and threads as Linux's /proc tells it (user + system, clock ticks of
 * 10 ms), for the benches' figures.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** CPU seconds of a `/proc/…/stat` file (a process, or `/proc/<pid>/task/<tid>/stat` a thread); with `children`, its reaped children's too. NaN once it is gone. */
export function statCpuS(path: string, children = false): number {
  try {
    const f = readFileSync(path, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12]) + (children ? Number(f[13]) + Number(f[14]) : 0)) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system, every thread) of a process; with `children`, of its reaped children too. */
export function cpuOf(pid: number, children = false): number {
  return statCpuS(`/proc/${pid}/stat`, children);
}

/** CPU seconds of a process's main thread (the event loop: reading, the queue, the daemon's own work). */
export function mainThreadCpu(pid: number): number {
  return statCpuS(`/proc/${pid}/task/${pid}/stat`);
}

/** CPU seconds of Postgres: the postmaster, its live backends and those that ended. */
export function postgresCpu(postmaster: number): number {
  let total = cpuOf(postmaster, true);
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const f = readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1].split(' ');
      if (Number(f[1]) === postmaster) total += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      // gone meanwhile
    }
  }
  return total;
}
