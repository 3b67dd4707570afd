/** The report formats `outputs.formats` and `--format` accept (kept apart from the schema so the CLI starts without zod). */
export const FORMATS = ['json', 'html', 'checklist', 'junit', 'sarif'] as const;
export type OutputFormat = (typeof FORMATS)[number];
