/**
 * A strict little XML parser for the tests (no XML package is installed): elements,
 * attributes, text, the five predefined entities and numeric references, an XML
 * declaration. It throws on anything not well-formed — unclosed or mismatched tags,
 * unquoted or duplicate attributes, a bare `&` or `<` in text — which is what we check.
 */
export interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string, where: number): string {
  if (/<|&(?!(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)/.test(s)) throw new Error(`bad character reference or '<' near offset ${where}`);
  return s.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_m, e: string) =>
    e.startsWith('#x') ? String.fromCodePoint(parseInt(e.slice(2), 16)) : e.startsWith('#') ? String.fromCodePoint(parseInt(e.slice(1), 10)) : ENTITIES[e],
  );
}

export function parseXml(xml: string): XmlElement {
  let i = 0;
  if (xml.startsWith('<?xml')) {
    const end = xml.indexOf('?>');
    if (end < 0) throw new Error('unterminated XML declaration');
    i = end + 2;
  }
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const NAME = /[A-Za-z_][\w.-]*/y;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const text = xml.slice(i, lt < 0 ? xml.length : lt);
    if (text.trim() !== '') {
      if (stack.length === 0) throw new Error(`text outside the root element at ${i}`);
      stack[stack.length - 1].text += decode(text, i);
    }
    if (lt < 0) break;
    i = lt;
    if (xml.startsWith('</', i)) {
      NAME.lastIndex = i + 2;
      const m = NAME.exec(xml);
      if (!m) throw new Error(`bad closing tag at ${i}`);
      const open = stack.pop();
      if (!open || open.name !== m[0]) throw new Error(`</${m[0]}> does not close <${open?.name}> at ${i}`);
      i = NAME.lastIndex;
      while (/\s/.test(xml[i])) i++;
      if (xml[i] !== '>') throw new Error(`bad closing tag at ${i}`);
      i++;
      continue;
    }
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end < 0) throw new Error('unterminated comment');
      i = end + 3;
      continue;
    }
    NAME.lastIndex = i + 1;
    const m = NAME.exec(xml);
    if (!m) throw new Error(`bad tag at ${i}`);
    const el: XmlElement = { name: m[0], attrs: {}, children: [], text: '' };
    i = NAME.lastIndex;
    for (;;) {
      const ws = /\s*/y;
      ws.lastIndex = i;
      ws.exec(xml);
      const hadSpace = ws.lastIndex > i;
      i = ws.lastIndex;
      if (xml.startsWith('/>', i) || xml[i] === '>') break;
      if (!hadSpace) throw new Error(`attributes must be separated by space at ${i}`);
      const a = /([A-Za-z_][\w.:-]*)="([^"]*)"/y;
      a.lastIndex = i;
      const am = a.exec(xml);
      if (!am) throw new Error(`bad attribute at ${i}: ${xml.slice(i, i + 30)}`);
      if (am[1] in el.attrs) throw new Error(`duplicate attribute ${am[1]}`);
      el.attrs[am[1]] = decode(am[2], i);
      i = a.lastIndex;
    }
    if (stack.length > 0) stack[stack.length - 1].children.push(el);
    else if (root) throw new Error('more than one root element');
    else root = el;
    if (xml.startsWith('/>', i)) {
      i += 2;
    } else {
      i += 1;
      stack.push(el);
    }
  }
  if (stack.length > 0) throw new Error(`unclosed <${stack[stack.length - 1].name}>`);
  if (!root) throw new Error('no root element');
  return root;
}

export function all(el: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const walk = (e: XmlElement) => {
    if (e.name === name) out.push(e);
    e.children.forEach(walk);
  };
  walk(el);
  return out;
}
