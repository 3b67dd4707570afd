/**
 * The registry: every built-in check, explicitly, alphabetised. A meta-test asserts that
 * the files in this folder, this list, the runbooks and the alert rules agree.
 */
import type { AnyCheck } from '../src/core/define-check';
import { buildRegistry } from '../src/core/registry';

export const builtinChecks: readonly AnyCheck[] = [];

export const registry = buildRegistry(builtinChecks);
