/**
 * dotenv syntax as the services' env files use it: `NAME=value`, optional `export `,
 * `#` comments, double-quoted values with `\n` escapes (PEM keys), single-quoted literals.
 * Errors name the file and line but never echo the line: it may hold a secret.
 */
import { badData } from '../core/errors';

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_.]*$/;

function unescapeDouble(s: string): string {
  return s.replace(/\\([nrt"\\$])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c as 'n' | 'r' | 't'] ?? c);
}

export function parseDotenv(text: string, file: string, source = 'secrets'): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i].trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trimStart();
    const eq = line.indexOf('=');
    const where = `${file}:${i + 1}`;
    if (eq <= 0) throw badData(source, where, 'expected NAME=value');
    const name = line.slice(0, eq).trim();
    if (!NAME_RE.test(name)) throw badData(source, where, 'invalid variable name');
    let rest = line.slice(eq + 1).trimStart();
    let value: string;
    if (rest.startsWith('"')) {
      // A double-quoted value may span lines; find the closing quote that is not escaped.
      let body = rest.slice(1);
      let j = i;
      for (;;) {
        const m = /(^|[^\\])(\\\\)*"/.exec(body);
        if (m) {
          const end = m.index + m[0].length - 1;
          const after = body.slice(end + 1).trim();
          if (after !== '' && !after.startsWith('#')) throw badData(source, where, 'unexpected text after closing quote');
          value = unescapeDouble(body.slice(0, end));
          break;
        }
        j++;
        if (j >= lines.length) throw badData(source, where, 'unterminated double-quoted value');
        body += '\n' + lines[j];
      }
      i = j;
    } else if (rest.startsWith("'")) {
      const end = rest.indexOf("'", 1);
      if (end < 0) throw badData(source, where, 'unterminated single-quoted value');
      value = rest.slice(1, end);
    } else {
      const hash = rest.search(/\s#/);
      if (hash >= 0) rest = rest.slice(0, hash);
      value = rest.trim();
    }
    out.set(name, value);
  }
  return out;
}
