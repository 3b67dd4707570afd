/**
 * What an external check (a plugin) may use: the same contract the built-in checks use.
 * A plugin module gets it with `require('aegis-audit/plugin')` — the loader provides it, so a
 * plugin folder needs no node_modules of its own:
 *
 * ```js
 * const { defineCheck, z, resource } = require('aegis-audit/plugin');
 * module.exports = defineCheck({ meta: { id: 'my-check', ... }, messages: { ... }, options: z.object({ ... }), async run(ctx) { ... } });
 * ```
 */
export { z } from 'zod';
export { defineCheck, formatMessage, type CheckContext, type CheckDefinition, type CheckMeta, type ReportDescriptor } from './core/define-check';
export { resource } from './core/finding';
export { duration, formatDuration, parseDuration } from './core/duration';
export { AuditError, ErrorCodes, badData, configError, sourceUnavailable } from './core/errors';
export { SEVERITIES, type Severity, type Evidence } from './core/types';
