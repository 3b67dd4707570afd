import { existsSync } from 'node:fs';

/**
 * The real Prometheus, Alertmanager and Chromium are part of the test suite, not optional:
 * a missing binary fails the test with what to install, never skips it silently.
 */
export function requireBinary(path: string, debianPackage: string): string {
  if (!existsSync(path)) throw new Error(`${path} not found: install the Debian package "${debianPackage}" (apt-get install -y ${debianPackage}; .ci/run does this)`);
  return path;
}
